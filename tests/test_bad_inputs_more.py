"""More of the bad-input corpus: exports over folders that hold files or into splits that would be empty, dataset
names that name nothing, corpora with no text, outputs the operating system refuses, and devices that do not exist.

As in test_bad_inputs.py, each case ends with exit code 2 and one line that says what, where and what to do.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_bad_inputs import BAD, GOOD, _one_line_error, runner

from inpars.checks import InvalidValue
from inpars.cli import app, os_error_line
from inpars.datasets import load_beir_folder
from inpars.models import check_device, device_of

DATASETS = BAD / "datasets"
THREE = DATASETS / "three-docs"


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- export


def test_export_into_a_folder_that_holds_files_is_refused_and_the_folder_kept(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "stale.txt").write_text("old\n")
    _one_line_error(
        ["export", str(GOOD), str(target)],
        "out: is not empty (it holds 1 entry, e.g. 'stale.txt'); give a new or empty folder, or --force to replace it",
        tmp_path,
    )
    assert _tree(target) == {"stale.txt": b"old\n"}
    # An earlier export is no exception: a second export with other splits must not mix its files with the first's.
    earlier = tmp_path / "earlier"
    assert runner.invoke(app, ["export", str(GOOD), str(earlier)]).exit_code == 0
    before = _tree(earlier)
    _one_line_error(
        ["export", str(GOOD), str(earlier), "--split", "train=0.5", "--split", "test=0.5"], "earlier: is not empty (it holds 3",
        tmp_path,
    )
    assert _tree(earlier) == before and sorted(p.name for p in tmp_path.iterdir()) == ["earlier", "out"]


def test_export_force_replaces_the_whole_folder(tmp_path):
    target = tmp_path / "out"
    result = runner.invoke(app, ["export", str(GOOD), str(target), "--split", "dev=0.5", "--split", "test=0.5"])
    assert result.exit_code == 0, result.output
    (target / "stale.txt").write_text("old\n")
    result = runner.invoke(app, ["export", str(THREE), str(target), "--force"])
    assert result.exit_code == 0, result.output
    assert "3 docs, 3 queries, 3 qrels/test" in result.output
    assert sorted(_tree(target)) == ["corpus.jsonl", "qrels/test.tsv", "queries.jsonl"]  # no stale.txt, no qrels/dev.tsv
    assert load_beir_folder(target).counts() == {"docs": 3, "queries": 3, "qrels": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old folder left beside it
    for fresh in (tmp_path / "new", tmp_path / "empty"):  # --force over nothing, or over an empty folder
        if fresh.name == "empty":
            fresh.mkdir()
        assert runner.invoke(app, ["export", str(THREE), str(fresh), "--force"]).exit_code == 0
        assert _tree(fresh) == _tree(target)


def test_export_force_never_deletes_the_working_folder_or_the_dataset_it_reads(tmp_path, monkeypatch):
    source = tmp_path / "data" / "collection"
    assert runner.invoke(app, ["export", str(GOOD), str(source)]).exit_code == 0
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(tmp_path / "work")
    _one_line_error(
        ["export", str(GOOD), str(tmp_path / "work"), "--force"],
        "work: holds the current working folder, which --force would delete; export to another folder", tmp_path,
    )
    _one_line_error(
        ["export", str(source), str(tmp_path / "data"), "--force"], "data: holds the dataset being exported", tmp_path
    )
    assert (tmp_path / "work" / "notes.txt").read_text() == "mine\n" and (source / "corpus.jsonl").is_file()


def test_export_refuses_splits_that_would_be_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # 3 judged queries over train 0.5, dev 0.25, test 0.25: test used to be written empty, and nothing could load it.
    _one_line_error(
        ["export", str(THREE), "out", "--split", "train=0.5", "--split", "dev=0.25", "--split", "test=0.25"],
        "3 judged queries have a relevant document in the corpus; the 3 splits need at least 4, so that 'dev' (share 0.25) "
        "gets one: use fewer splits or give 'dev' a larger share",
        tmp_path,
    )
    _one_line_error(
        ["export", str(GOOD), "out", "--split", "train=0.9", "--split", "test=0.1"],
        "6 judged queries have a relevant document in the corpus; the 2 splits need at least 10", tmp_path,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    split = ["--split", "a=1", "--split", "b=1", "--split", "c=1", "--split", "d=1"]
    line = _one_line_error(["export", "faq-construction", "out", "--max-docs", "3", *split], "raise max_docs", tmp_path)
    assert "3 judged queries fit in max_docs=3 documents; the 4 splits need at least 4" in line
    enough = line.rsplit("to ", 1)[1].split()[0]
    result = runner.invoke(app, ["export", "faq-construction", "out", "--max-docs", enough, *split])
    assert result.exit_code == 0, result.output
    assert all(load_beir_folder(tmp_path / "out", name).queries for name in "abcd")  # every split loads


@pytest.mark.parametrize(
    ("splits", "wanted"),
    [
        (["x"], "--split x: write NAME=SHARE, e.g. --split train=0.5"),
        (["x="], "--split x=: write NAME=SHARE"),
        (["x=half"], "--split x=half: write NAME=SHARE"),
        (["=0.5"], "split name '' cannot name the file qrels/<name>.tsv"),
        (["../escape=1"], "split name '../escape' cannot name the file qrels/<name>.tsv"),
        (["a/b=1"], "split name 'a/b' cannot name"),
        (["x=nan"], "split 'x' has the share nan; give each split a positive share"),
        (["x=inf"], "split 'x' has the share inf; give each split a positive share"),
        (["x=-1"], "split 'x' has the share -1.0; give each split a positive share"),
        (["test=0.5", "test=0.5"], "--split test=0.5: the split 'test' is given twice; give each split once"),
    ],
)
def test_export_refuses_malformed_splits_before_loading_anything(splits, wanted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [arg for item in splits for arg in ("--split", item)]
    _one_line_error(["export", "beir/scifact", "out", *args], wanted, tmp_path)  # refused before any download
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_export_refuses_outputs_that_cannot_be_a_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    _one_line_error(["export", str(GOOD), str(blocker)], "file: is a file, not a folder", tmp_path)
    _one_line_error(["export", str(GOOD), str(blocker / "out")], f"cannot be created: {blocker} is a file", tmp_path)
    assert blocker.read_text() == "x\n"


# ---------------------------------------------------------------------------------------------- dataset names

NAMES = {
    "beir/scifact/bogus": "unknown dataset 'beir/scifact/bogus': beir/scifact has no split 'bogus'; its splits are test, "
    "train: write beir/scifact/<split>, or beir/scifact for test",
    "beir/scifact/test/extra": "beir/scifact has no split 'test/extra'; its splits are test, train",
    "beir/scifact/": "beir/scifact has no split '' (the name ends with '/')",
    "beir/arguana/dev": "beir/arguana has no split 'dev'; its only split is test: write beir/arguana",
    "beir/cqadupstack/android/train": "beir/cqadupstack/android has no split 'train'; its only split is test",
    "beir/webis-touche2020/v3": "beir/webis-touche2020 has no split 'v3'; its splits are test, v2",
    "beir/scifakt": "unknown dataset 'beir/scifakt'; did you mean 'beir/scifact'? available: beir/arguana",
    "beir/cqadupstack": "unknown dataset 'beir/cqadupstack'; did you mean 'beir/cqadupstack/",
    "BEIR/scifact": "unknown dataset 'BEIR/scifact'; did you mean 'beir/scifact'?",
    "beir": "unknown dataset 'beir'; ",
    "msmarco": "unknown dataset 'msmarco'; available: beir/arguana",
    "data/no-such-collection": "available: beir/arguana, ",
    "./no/such/folder": "no/such/folder: dataset folder not found",
    "": "the dataset name is empty; give faq-construction, beir/<name>[/<split>] or the path of a BEIR folder",
    "  ": "the dataset name is blank",
}


@pytest.mark.parametrize("command", ["generate", "retrieve", "export", "evaluate"])
@pytest.mark.parametrize("name", list(NAMES), ids=[n or "empty" for n in NAMES])
def test_a_dataset_name_that_names_nothing_says_what_exists(command, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = {
        "generate": ["generate", "--dataset", name, "--output", "q.jsonl"],
        "retrieve": ["retrieve", "--dataset", name, "--output", "run.trec"],
        "export": ["export", name, "out"],
        "evaluate": ["evaluate", str(BAD / "runs" / "good.trec"), "--dataset", name],
    }[command]
    line = _one_line_error(args, NAMES[name], tmp_path)
    if name == "data/no-such-collection":
        assert line.endswith("and there is no folder 'data/no-such-collection' here")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_pyproject_or_other_file_named_as_the_dataset_is_no_folder(tmp_path):
    (tmp_path / "corpus.jsonl").write_text((GOOD / "corpus.jsonl").read_text())
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    # A file of documents is a collection (documents only): retrieve, which needs queries, says what it has.
    _one_line_error(
        ["retrieve", "--dataset", str(tmp_path / "corpus.jsonl"), "--output", str(tmp_path / "run.trec")],
        "corpus.jsonl' has documents only (6 documents)", tmp_path,
    )
    _one_line_error(
        ["retrieve", "--dataset", str(tmp_path / "pyproject.toml"), "--output", str(tmp_path / "run.trec")],
        "pyproject.toml: is not a dataset; give a BEIR folder", tmp_path,
    )


# ---------------------------------------------------------------------------------------------- corpora without text

TEXTLESS = {
    "corpus-all-empty": "none of the 6 documents has a letter or digit in its title or text (all are empty or whitespace)",
    "corpus-all-whitespace": "none of the 6 documents has a letter or digit in its title or text (all are empty or whitespace)",
    "corpus-all-punctuation": "none of the 6 documents has a letter or digit in its title or text (all are punctuation",
}


def _textless_commands(folder: str, tmp: str) -> dict[str, list[str]]:
    recipe = Path(tmp) / "recipe.yaml"
    recipe.write_text("name: textless\nretrieve: {backend: bm25s}\nevaluate: {measures: [nDCG@10]}\n")
    return {
        "generate": ["generate", "--dataset", folder, "--output", f"{tmp}/q.jsonl"],
        "retrieve-bm25s": ["retrieve", "--dataset", folder, "--output", f"{tmp}/run.trec"],
        "retrieve-pyserini": ["retrieve", "--dataset", folder, "--backend", "pyserini", "--output", f"{tmp}/run.trec"],
        "retrieve-dense": ["retrieve", "--dataset", folder, "--backend", "dense", "--output", f"{tmp}/run.trec"],
        "negatives": ["negatives", str(BAD / "synthetic" / "good.jsonl"), "--dataset", folder, "--output", f"{tmp}/t.jsonl"],
        "run": ["run", str(recipe), "--set", f"dataset={folder}", "--set", f"output_dir={tmp}/runs"],
    }


@pytest.mark.parametrize("command", ["generate", "retrieve-bm25s", "retrieve-pyserini", "retrieve-dense", "negatives", "run"])
@pytest.mark.parametrize("corpus", list(TEXTLESS))
def test_a_corpus_without_text_is_refused_when_loaded(corpus, command, tmp_path):
    folder = DATASETS / corpus
    _one_line_error(_textless_commands(str(folder), str(tmp_path))[command], f"corpus.jsonl: {TEXTLESS[corpus]}", tmp_path)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["recipe.yaml"] + (["runs/textless/config.json"] if command == "run" else [])  # no stage output


def test_a_corpus_where_only_some_documents_are_empty_still_loads_and_indexes(tmp_path):
    folder = DATASETS / "corpus-some-empty"
    assert load_beir_folder(folder).counts() == {"docs": 6, "queries": 6, "qrels": 6}
    result = runner.invoke(app, ["retrieve", "--dataset", str(folder), "--output", str(tmp_path / "run.trec")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run.trec").read_text().strip()


# ---------------------------------------------------------------------------------------------- outputs the system refuses


def _recipe(tmp_path: Path, output_dir: Path) -> list[str]:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: refused\nretrieve: {backend: bm25s}\nevaluate: {measures: [nDCG@10]}\n")
    return ["run", str(recipe), "--set", f"dataset={GOOD}", "--set", f"output_dir={output_dir}"]


def test_a_run_whose_output_dir_lies_under_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n")
    _one_line_error(
        _recipe(tmp_path, blocker / "runs"),
        f"{blocker / 'runs' / 'refused'}: Not a directory (ENOTDIR); a part of the path is a file where a folder is needed",
        tmp_path,
    )
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "refused").write_text("a file where the run folder goes\n")
    _one_line_error(_recipe(tmp_path, tmp_path / "runs"), "refused: File exists (EEXIST)", tmp_path)
    assert blocker.read_text() == "x\n"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_run_whose_output_dir_is_read_only_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        line = _one_line_error(_recipe(tmp_path, locked), "locked", tmp_path)
        assert "ermission" in line
    finally:
        locked.chmod(0o755)


def test_a_full_disk_while_writing_is_one_line(tmp_path):
    """A file-size limit makes every write past it fail as a full disk does: an OSError with no file name."""
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from inpars.cli import main\n"
        "sys.argv = ['inpars', 'export', 'faq-construction', sys.argv[1]]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "out")], capture_output=True, text=True, timeout=300, check=False
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    wanted = (
        "error: cannot write the output: File too large (EFBIG); the file is larger than this system allows: free space, "
        "raise the limit (ulimit -f) or use another disk"
    )
    assert lines == [wanted], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the half-written folder is gone


def test_only_os_errors_from_files_or_disks_become_one_line():
    assert os_error_line(PermissionError(errno.EACCES, "Permission denied", "/srv/runs")) == (
        "/srv/runs: Permission denied (EACCES); check the permissions of the path and its folders, or choose another path"
    )
    assert os_error_line(OSError(errno.EROFS, "Read-only file system", "runs/x")).startswith(
        "runs/x: Read-only file system (EROFS); the file system is read-only"
    )
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device")) == (
        "cannot write the output: No space left on device (ENOSPC); the disk is full: free some space, or choose a path on "
        "another disk"
    )
    assert os_error_line(OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b")).startswith("a -> b: ")
    # Without a file name, an OSError that no disk causes is a bug: its traceback stays.
    for bug in (OSError(errno.EBADF, "Bad file descriptor"), ConnectionResetError(), OSError("no errno at all")):
        assert os_error_line(bug) is None


# ---------------------------------------------------------------------------------------------- devices


@pytest.mark.parametrize(
    ("device", "wanted"),
    [
        ("tpu9", "is 'tpu9', not a device inpars can use; use auto, cpu, cuda, cuda:N"),
        ("gpu", "is 'gpu', not a device inpars can use; did you mean 'cuda'?"),
        ("CPU", "did you mean 'cpu'?"),
        ("cuda:x", "is 'cuda:x'; after 'cuda:' comes the index of one GPU, e.g. cuda:0 or cuda:1"),
        ("cuda:-1", "after 'cuda:' comes the index of one GPU"),
    ],
)
def test_generate_refuses_a_device_that_does_not_exist_before_loading_the_model(device, wanted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["--device", device], ["--set", f"generate.device={device}"]):
        _one_line_error(["generate", "--dataset", str(GOOD), "--output", "q.jsonl", *args], wanted, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_check_device_takes_the_devices_torch_knows(device):
    assert check_device(device) is None


@pytest.mark.parametrize(
    ("device", "wanted"),
    [
        ("tpu9", "is 'tpu9', not a device inpars can use; use auto, cpu, cuda, cuda:N (the GPU with index N) or mps"),
        ("", "is '', not a device inpars can use; use auto"),
        ("cuda ", "did you mean 'cuda'?"),
        ("Cuda", "did you mean 'cuda'?"),
        ("cdua", "did you mean 'cuda'?"),
        ("metal", "did you mean 'mps'?"),
        ("cuda:", "is 'cuda:'; after 'cuda:' comes the index of one GPU"),
        ("cuda:0,1", "is 'cuda:0,1'; after 'cuda:' comes the index of one GPU"),
        ("cuda:1.5", "after 'cuda:' comes the index of one GPU"),
        (0, "is 0, not a device name; use auto"),
        (None, "is None, not a device name"),
    ],
)
def test_check_device_refuses_the_rest_naming_the_key(device, wanted):
    with pytest.raises(InvalidValue) as refused:
        check_device(device)
    assert refused.value.key == "device" and wanted in str(refused.value)


def test_a_gpu_that_is_not_there_is_refused_before_any_model_loads():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    for device in ("cuda", "cuda:0"):
        with pytest.raises(InvalidValue, match=rf"'device' is '{device}', but torch .* sees no CUDA GPU here; use cpu or auto"):
            device_of(device)
    assert device_of("cpu") == "cpu" and device_of("auto") == "cpu"


@pytest.mark.gpu
def test_a_gpu_that_is_there_is_taken():
    assert device_of("cuda") == "cuda" and device_of("cuda:0") == "cuda:0" and device_of("auto") == "cuda"
