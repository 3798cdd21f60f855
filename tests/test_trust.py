"""Every number a run reports is current and finite: content fingerprints, output hashes, torn stage records, locks,
finite values and no silent coercion of config or input values."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inpars import config as config_module
from inpars import io
from inpars.checks import finite
from inpars.config import load_pipeline_config
from inpars.datasets import content_fingerprint, load_beir_folder
from inpars.errors import InparsError, InputError
from inpars.pipeline import run_pipeline, run_stage

DOCS = [f"document {i} about {word} and stone" for i, word in enumerate(["water", "fire", "earth", "air", "wood", "metal"])]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INPARS_CACHE", str(tmp_path / "cache"))


def _collection(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n" for i, text in enumerate(DOCS))
    )
    words = ["water", "fire", "earth", "air", "wood", "metal"]
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": w}) + "\n" for i, w in enumerate(words)))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(6)))
    return folder


def _retrieval_run(data: Path, out: Path):
    cfg = load_pipeline_config(overrides=[f"dataset={data}", f"output_dir={out}", "name=r", "retrieve.top_k=6"])
    return run_pipeline(cfg, rerank=False)


# ---------------------------------------------------------------------------------------------- fingerprints of content


@pytest.mark.parametrize("edit", ["qrels", "corpus", "queries"])
def test_an_edited_collection_recomputes_every_stage_that_reads_it(tmp_path, edit):
    data = _collection(tmp_path / "data")
    first = _retrieval_run(data, tmp_path / "runs")
    assert not any(s.skipped for s in first.stages)
    assert first.metrics["bm25"]["nDCG@10"] == pytest.approx(1.0)
    assert all(s.skipped for s in _retrieval_run(data, tmp_path / "runs").stages)

    # The same number of lines, other content: counts alone would call the run current.
    if edit == "qrels":
        (data / "qrels" / "test.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{(i + 1) % 6}\t1\n" for i in range(6))
        )
    elif edit == "corpus":
        lines = (data / "corpus.jsonl").read_text().splitlines()
        lines[0] = json.dumps({"_id": "d0", "title": "", "text": "document 0 about nothing at all"})
        (data / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    else:
        lines = (data / "queries.jsonl").read_text().splitlines()
        lines[0] = json.dumps({"_id": "q0", "text": "metal"})
        (data / "queries.jsonl").write_text("\n".join(lines) + "\n")
    second = _retrieval_run(data, tmp_path / "runs")
    assert not any(s.skipped for s in second.stages)
    assert second.metrics["bm25"]["nDCG@10"] < 1.0
    metrics = json.loads((tmp_path / "runs" / "r" / "metrics.json").read_text())
    assert metrics["systems"]["bm25"]["nDCG@10"]["mean"] == pytest.approx(second.metrics["bm25"]["nDCG@10"])


def test_the_collection_is_hashed_once_until_a_file_changes(tmp_path, monkeypatch):
    data = _collection(tmp_path / "data")
    reads = []
    real = io.file_sha256
    monkeypatch.setattr(io, "file_sha256", lambda path: reads.append(Path(path).name) or real(path))
    first = content_fingerprint(load_beir_folder(data))
    assert sorted(reads) == ["corpus.jsonl", "queries.jsonl", "test.tsv"]
    assert content_fingerprint(load_beir_folder(data)) == first and len(reads) == 3  # from the cache: no second read
    time.sleep(0.01)
    (data / "queries.jsonl").write_text((data / "queries.jsonl").read_text().replace("water", "Water"))
    assert content_fingerprint(load_beir_folder(data)) != first and reads[3:] == ["queries.jsonl"]


def test_records_without_files_are_fingerprinted_by_their_content(tmp_path):
    data = load_beir_folder(_collection(tmp_path / "data"))
    loose = dataclasses.replace(data, origin={})
    other = dataclasses.replace(loose, qrels={**loose.qrels, "q0": {"d1": 1}})
    assert content_fingerprint(loose) != content_fingerprint(other)
    assert content_fingerprint(loose) == content_fingerprint(dataclasses.replace(data, origin={}))
    assert data.with_fixed_text().origin == data.origin  # the repair keeps what the records were read from


# ---------------------------------------------------------------------------------------------- recorded outputs


def _model_stage(run_dir: Path, calls: list[int]):
    def body(folder: Path) -> dict:
        calls.append(1)
        (folder / "model").mkdir(exist_ok=True)
        (folder / "model" / "weights.bin").write_bytes(b"w" * 4096)
        (folder / "model" / "config.json").write_text("{}")
        return {"ok": True}

    return run_stage(run_dir, "train", {"lr": 1}, [], ["model"], body)


def test_a_changed_or_truncated_output_is_recomputed_with_one_line(tmp_path, caplog):
    calls: list[int] = []
    _model_stage(tmp_path, calls)
    manifest = json.loads((tmp_path / "train" / "stage.json").read_text())
    assert set(manifest["outputs"]) == {"model"} and len(manifest["outputs"]["model"]) == 64
    assert _model_stage(tmp_path, calls).skipped and len(calls) == 1
    with open(tmp_path / "train" / "model" / "weights.bin", "r+b") as handle:
        handle.truncate(100)  # a copy cut short
    with caplog.at_level(logging.WARNING, logger="inpars.pipeline"):
        record = _model_stage(tmp_path, calls)
    assert not record.skipped and len(calls) == 2
    assert any("model changed since the stage wrote it" in r.getMessage() for r in caplog.records)
    (tmp_path / "train" / "model" / "config.json").unlink()
    assert not _model_stage(tmp_path, calls).skipped and len(calls) == 3


@pytest.mark.parametrize(
    "manifest",
    ["{\"stage\": \"train\", \"status\": \"do", "[]", "\"done\"", "null", "{\"fingerprint\": 3, \"status\": \"done\"}", "{}", ""],
    ids=["torn", "list", "string", "null", "wrong-types", "empty-object", "empty-file"],
)
@pytest.mark.parametrize("force", [False, True])
def test_a_broken_stage_record_never_blocks_a_rerun(tmp_path, manifest, force):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "stage.json").write_text(manifest)
    calls: list[int] = []
    record = run_stage(tmp_path, "train", {"lr": 1}, [], ["model"], lambda f: calls.append(1) or {}, force=force)
    assert not record.skipped and calls == [1]
    assert json.loads((tmp_path / "train" / "stage.json").read_text())["status"] == "done"


# ---------------------------------------------------------------------------------------------- locks

HOLDER = """
import sys, time
from inpars import io
with io.exclusive(sys.argv[1], "x"):
    print("held", flush=True)
    time.sleep(120)
"""


def _hold(target: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_is_refused_at_once_naming_the_holder_and_a_killed_holder_leaves_no_lock(tmp_path):
    target = tmp_path / "queries.jsonl"
    holder = _hold(target)
    try:
        started = time.monotonic()
        wanted = rf"queries.jsonl: this output is in use by another inpars process \(pid {holder.pid}\)"
        with pytest.raises(InparsError, match=wanted), io.exclusive(target, "this output"):
            pass
        assert time.monotonic() - started < 5
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    # The system released the dead holder's lock, and the same process may take it twice (a stage inside its run).
    with io.exclusive(target, "this output"), io.exclusive(target, "this output"):
        pass
    assert not io.lock_path(target).exists()


def test_two_runs_of_one_folder_and_two_generations_of_one_output_are_refused(tmp_path, faq_slice):
    from inpars.config import GenerateConfig
    from inpars.generate.stage import generate_queries

    data = _collection(tmp_path / "data")
    (tmp_path / "runs" / "r").mkdir(parents=True)
    holder = _hold(tmp_path / "runs" / "r")
    try:
        with pytest.raises(InparsError, match=rf"this run folder is in use by another inpars process \(pid {holder.pid}\)"):
            _retrieval_run(data, tmp_path / "runs")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    output = tmp_path / "q.jsonl"
    holder = _hold(output)
    try:
        # Refused before any model is loaded: the backend named here does not exist.
        with pytest.raises(InparsError, match=rf"q.jsonl: this output is in use .*pid {holder.pid}"):
            generate_queries(list(faq_slice.docs.values())[:2], GenerateConfig(), output, generator=object())
        assert not (tmp_path / "q.jsonl.partial").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


# ---------------------------------------------------------------------------------------------- finite or refused


def _float_fields() -> list[tuple[str, str]]:
    """Every float field of every config section, as ``section.key`` (``""`` for the pipeline's own)."""
    found = []
    for section in dataclasses.fields(config_module.PipelineConfig):
        nested = config_module._nested_class(section)
        if nested is None:
            continue
        for item in dataclasses.fields(nested):
            if item.type in ("float", "float | None"):
                found.append((section.name, item.name))
    return found


@pytest.mark.parametrize("value", ["nan", ".nan", "inf", "-.inf", "1e999"])
@pytest.mark.parametrize(("section", "key"), _float_fields())
def test_every_float_of_the_config_refuses_what_is_not_finite(section, key, value):
    with pytest.raises(InputError, match=rf"'{section}.{key}' is (nan|inf|-inf); it must be a finite number"):
        load_pipeline_config(overrides=[f"{section}.{key}={value}"])


def test_the_float_fields_found_are_the_ones_known():
    assert {("retrieve", "k1"), ("train", "learning_rate"), ("evaluate", "confidence"), ("generate", "temperature")} <= set(
        _float_fields()
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nan", "Infinity", True, None, [1], "x"])
def test_finite_refuses_every_kind_of_non_number(value):
    with pytest.raises(InputError, match=r"f.jsonl:3: score .* is not a finite number"):
        finite(value, "score", "f.jsonl", 3)
    assert finite("-1.5e3", "score", "f.jsonl", 3) == -1500.0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_released_data_with_non_finite_log_probs_is_refused_with_its_line(tmp_path, literal):
    path = tmp_path / "released.jsonl"
    path.write_text('{"doc_id": "d0", "question": "what", "log_probs": [-0.1]}\n'
                    f'{{"doc_id": "d1", "question": "why", "log_probs": [-0.2, {literal}]}}\n')
    with pytest.raises(InputError, match=r"released.jsonl:2: log_probs\[1\] .* is not a finite number"):
        io.read_released_synthetic(path)


# ---------------------------------------------------------------------------------------------- no silent coercion


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        (["name=no"], "name", "no"),
        (["name=2024"], "name", "2024"),
        (["name=1_000"], "name", "1_000"),
        (["generate.prompt=inpars-gbq"], "prompt", "inpars-gbq"),
        (["generate.prompt=''"], "prompt", ""),  # quoted: YAML's reading, as the cluster's job scripts write it
        (["name='no'"], "name", "no"),
    ],
)
def test_a_set_value_for_a_text_field_is_the_text_typed(overrides, field, expected):
    cfg = load_pipeline_config(overrides=overrides)
    assert (cfg.name if field == "name" else cfg.generate.prompt) == expected


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("name: off\n", "'name' should be text, got False"),
        ("name: 12\n", "'name' should be text, got 12"),
        ("name: x\ngenerate:\n  model: 1.5\n", "'generate.model' should be text, got 1.5"),
        ("name: x\nretrieve: {top_k: 5, top_k: 6}\n", "'retrieve.top_k' is given twice"),
        ("name: x\nname: y\n", "'name' is given twice (first on line 1)"),
        ("{}\n", "the recipe is empty"),
        ("\n", "the recipe is empty"),
        ("name: ''\n", "'name' is empty"),
        ("name: a/b\n", "not a folder name"),
        ("name: x\nevaluate:\n  seed: -3\n", "'evaluate.seed' is -3; it must be at least 0"),
        ("name: x\nnegatives:\n  seed: 4294967296\n", "'negatives.seed' is 4294967296; it must be at least 0 and at most"),
    ],
)
def test_recipes_that_would_be_coerced_are_refused(tmp_path, text, wanted):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=r"recipe.yaml(:\d+)?: ") as caught:
        load_pipeline_config(path)
    assert wanted in str(caught.value)


def test_a_yaml_merge_key_is_no_duplicate(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("name: x\nretrieve: &r {top_k: 7}\nrerank:\n  <<: *r\n  batch_size: 8\n")
    assert load_pipeline_config(path).rerank.top_k == 7


def test_unknown_stopwords_are_one_line_before_any_index():
    from inpars.config import RetrieveConfig
    from inpars.retrieve.bm25s import BM25sRetriever

    with pytest.raises(InparsError, match=r"retrieve.stopwords is 'klingon', a list bm25s does not have"):
        BM25sRetriever(RetrieveConfig(stopwords="klingon"))


def test_a_run_or_synthetic_query_with_a_non_finite_score_is_not_written(tmp_path):
    from inpars.data import SyntheticQuery

    with pytest.raises(InparsError, match=r"run.trec: query 'q1' has 1 document\(s\) scored nan \(e.g. 'd2'\)"):
        io.write_trec_run(tmp_path / "run.trec", {"q0": {"d1": 1.0}, "q1": {"d1": 0.5, "d2": float("nan")}})
    assert not (tmp_path / "run.trec").exists()
    with pytest.raises(InparsError, match=r"the generator gave query 'q' a log-probability that is not finite"):
        io.write_synthetic(tmp_path / "q.jsonl", [SyntheticQuery("q", "d", "what", (-0.1, float("-inf")))])
    assert not (tmp_path / "q.jsonl").exists()


def test_written_ranks_follow_the_order_every_measure_uses(tmp_path):
    io.write_trec_run(tmp_path / "run.trec", {"q": {"d10": 1.0, "d9": 1.0, "d100": 1.0, "a": 2.0}})
    lines = [line.split() for line in (tmp_path / "run.trec").read_text().splitlines()]
    assert [(p[2], p[3]) for p in lines] == [("a", "1"), ("d9", "2"), ("d100", "3"), ("d10", "4")]


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["evaluate", "x", "--confidence", "abc"], "error: Invalid value for '--confidence'"),
        (["evaluate", "x", "--resamples", "1e9"], "error: Invalid value for '--resamples'"),
        (["evaluat"], "error: No such command 'evaluat'. Did you mean 'evaluate'?"),
        (["run", "--no-such-flag"], "error: No such option: --no-such-flag"),
    ],
)
def test_a_bad_option_is_one_line_from_the_installed_command(args, wanted):
    done = subprocess.run(
        [sys.executable, "-c", "from inpars.cli import main; main()", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith(wanted), done.stderr
