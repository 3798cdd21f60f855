"""The bad-input corpus (tests/bad_inputs/) driven through every command that reads a file.

Each case must end with exit code 2 and one line on the terminal that names the bad file (or the model): no
traceback, no table, no output written. A few inputs are made here rather than stored: a 5 MB single line, a
symbolic link as the output, a folder as the output.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inpars.cli import app

BAD = Path(__file__).parent / "bad_inputs"
GOOD = BAD / "datasets" / "good"
runner = CliRunner()

DATASET_DEFECTS = {
    "corpus-latin1": "corpus.jsonl:7: not UTF-8: byte 0xe9 at byte offset",
    "corpus-empty": "corpus.jsonl: holds no documents",
    "corpus-bad-json": "corpus.jsonl:3: invalid JSON",
    "corpus-tab-in-id": "corpus.jsonl:4: _id 'd\\t7' contains whitespace",
    "corpus-duplicate-id": "corpus.jsonl:7: duplicate document id 'd1'",
    "corpus-missing-text": "corpus.jsonl:7: missing field(s) text",
    "corpus-id-is-object": "corpus.jsonl:7: _id {'a': 1} is not a string or a number",
    "queries-empty": "queries.jsonl: holds no queries",
    "queries-latin1": "queries.jsonl:7: not UTF-8: byte 0xe9",
    "qrels-latin1": "test.tsv:8: not UTF-8: byte 0xe9 at byte offset",
    "qrels-conflicting": "test.tsv:8: query 'q1' judges document 'd1' 0 here and 1 on line 3",
    "qrels-bad-grade": "test.tsv:8: relevance 'high' is not an integer",
    "qrels-empty": "test.tsv: holds no judgements",
    "qrels-unknown-docs": "test.tsv: 6 of 12 judgements name documents that are not in the corpus (6 ids: 'missing0'",
    "queries-text-null": "queries.jsonl:7: text is null, not a string (None)",
    "corpus-text-number": "corpus.jsonl:7: text is a number, not a string (42)",
    "corpus-title-list": "corpus.jsonl:7: title is a list, not a string (['a'])",
}

RUN_DEFECTS = {
    "latin1": "latin1.trec:19: not UTF-8: byte 0xe9 at byte offset",
    "duplicate-pair": "duplicate-pair.trec:19: query 'q0' lists document 'd0' again (first on line 1)",
    "empty": "empty.trec: holds no results",
    "five-fields": "five-fields.trec:19: expected 6 fields",
    "nan-score": "nan-score.trec:19: score 'nan' is not a finite number",
}

SYNTHETIC_DEFECTS = {
    "latin1": "latin1.jsonl:7: not UTF-8",
    "empty": "empty.jsonl: holds no synthetic queries",
    "duplicate-id": "duplicate-id.jsonl:7: duplicate query_id 'd0-q' (first on line 1)",
    "log-probs-text": "log-probs-text.jsonl:7: log_probs must be a list of numbers",
    "not-an-object": "not-an-object.jsonl:7: expected a JSON object",
    "log-probs-nan": "log-probs-nan.jsonl:7: log_probs[1] nan is not a finite number",
    "log-probs-infinity": "log-probs-infinity.jsonl:7: log_probs[0] -inf is not a finite number",
    "log-probs-bool": "log-probs-bool.jsonl:7: log_probs must be a list of numbers",
    "text-null": "text-null.jsonl:7: text is null, not a string (None)",
    "text-list": "text-list.jsonl:7: text is a list, not a string (['what', 'is'])",
}

RECIPE_DEFECTS = {
    "python-object": (
        "python-object.yaml:2: invalid YAML (could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system')"
    ),
    "num-docs-negative": "num-docs-negative.yaml:3: 'generate.num_docs' is -5; it must be at least 1",
    "top-p-zero": "top-p-zero.yaml:3: 'generate.top_p' is 0.0; it must be above 0 and at most 1",
    "unknown-key": "unknown-key.yaml:3: unknown key 'retrieve.topk'; did you mean 'top_k'?",
    "invalid-yaml": "invalid-yaml.yaml:3: invalid YAML",
    "latin1": "latin1.yaml:1: not UTF-8: byte 0xe9 at byte offset 9 (column 10)",
    "alias-bomb": "alias-bomb.yaml:3: 'evaluate.measures' should be tuple[str, ...]",
    "model-offline": "model 'no-such-org/no-such-model' is no folder here and not in the Hugging Face cache",
    "negatives-zero": "negatives-zero.yaml:2: 'negatives.num_negatives' (BM25) plus 'dense_negatives' is 0",
    "duplicate-section": "duplicate-section.yaml:6: 'generate' is given twice (first on line 2)",
    "duplicate-key": "duplicate-key.yaml:5: 'retrieve.top_k' is given twice (first on line 3)",
    "empty": "empty.yaml: the recipe is empty",
    "name-boolean": "name-boolean.yaml:1: 'name' should be text, got False (a boolean",
    "name-path": "name-path.yaml:1: 'name' is '../elsewhere', not a folder name",
    "k1-nan": "k1-nan.yaml:3: 'retrieve.k1' is nan; it must be a finite number",
    "epochs-infinite": "epochs-infinite.yaml:3: 'train.epochs' is inf; it must be a finite number",
    "seed-negative": "seed-negative.yaml:3: 'train.seed' is -1; it must be at least 0",
}


def _cases() -> list[tuple[str, list[str], str]]:
    """(id, arguments with {tmp} for the test's folder, what the one line must contain)."""
    cases = []
    good_run = str(BAD / "runs" / "good.trec")
    good_syn = str(BAD / "synthetic" / "good.jsonl")
    for name, wanted in DATASET_DEFECTS.items():
        folder = str(BAD / "datasets" / name)
        cases += [
            (f"generate-{name}", ["generate", "--dataset", folder, "--output", "{tmp}/q.jsonl"], wanted),
            (f"retrieve-{name}", ["retrieve", "--dataset", folder, "--output", "{tmp}/run.trec"], wanted),
            (f"negatives-{name}", ["negatives", good_syn, "--dataset", folder, "--output", "{tmp}/train.jsonl"], wanted),
            (
                f"rerank-{name}",
                ["rerank", good_run, "--model", "{tmp}", "--dataset", folder, "--output", "{tmp}/rr.trec"],
                wanted,
            ),
            (f"evaluate-{name}", ["evaluate", good_run, "--dataset", folder], wanted),
        ]
    for name, wanted in RUN_DEFECTS.items():
        path = str(BAD / "runs" / f"{name}.trec")
        cases += [
            (f"evaluate-run-{name}", ["evaluate", good_run, path, "--dataset", str(GOOD)], wanted),
            (
                f"rerank-run-{name}",
                ["rerank", path, "--model", "{tmp}", "--dataset", str(GOOD), "--output", "{tmp}/rr.trec"],
                wanted,
            ),
        ]
    cases += [
        (
            "evaluate-run-other-dataset",
            ["evaluate", str(BAD / "runs" / "other-dataset.trec"), "--dataset", str(GOOD)],
            "other-dataset.trec: none of its 1 queries has judgements",
        ),
        (
            "rerank-run-other-dataset",
            ["rerank", str(BAD / "runs" / "other-dataset.trec"), "--model", "{tmp}", "--dataset", str(GOOD)],
            "other-dataset.trec: none of its 1 queries is a query of the dataset",
        ),
        (
            "rerank-run-unknown-doc",
            ["rerank", str(BAD / "runs" / "unknown-doc.trec"), "--model", "{tmp}", "--dataset", str(GOOD)],
            "unknown-doc.trec: query 'q0' ranks document 'nowhere'",
        ),
        (
            "rerank-model-offline",
            ["rerank", good_run, "--model", "no-such-org/no-such-model", "--dataset", str(GOOD), "--output", "{tmp}/rr.trec"],
            "model 'no-such-org/no-such-model' is no folder here",
        ),
        (
            "evaluate-qrels-latin1",
            ["evaluate", good_run, "--qrels", str(BAD / "qrels" / "latin1.qrels")],
            "latin1.qrels:2: not UTF-8: byte 0xe9 at byte offset 16 (column 7)",
        ),
        (
            "evaluate-qrels-conflicting",
            ["evaluate", good_run, "--qrels", str(BAD / "qrels" / "conflicting.qrels")],
            "conflicting.qrels:3: query 'q0' judges document 'd0' 2 here and 1 on line 1",
        ),
        (
            "evaluate-qrels-empty",
            ["evaluate", good_run, "--qrels", str(BAD / "qrels" / "empty.qrels")],
            "empty.qrels: holds no judgements",
        ),
    ]
    for name, wanted in SYNTHETIC_DEFECTS.items():
        path = str(BAD / "synthetic" / f"{name}.jsonl")
        cases += [
            (f"filter-{name}", ["filter", path, "--output", "{tmp}/kept.jsonl"], wanted),
            (f"negatives-queries-{name}", ["negatives", path, "--dataset", str(GOOD), "--output", "{tmp}/train.jsonl"], wanted),
        ]
    cases.append(
        (
            "merge-without-meta",
            ["merge", good_syn, "--output", "{tmp}/merged.jsonl"],
            "good.jsonl.meta.json: missing: cannot tell which shard this is",
        )
    )
    for name, wanted in {
        "latin1": "latin1.jsonl:1: not UTF-8",
        "empty": "empty.jsonl: holds no training examples",
        "bad-label": "bad-label.jsonl:1: label 2 is not 0 or 1",
    }.items():
        cases.append((f"train-{name}", ["train", str(BAD / "training" / f"{name}.jsonl"), "--output", "{tmp}/model"], wanted))
    for name, wanted in RECIPE_DEFECTS.items():
        path = str(BAD / "recipes" / f"{name}.yaml")
        cases.append((f"run-{name}", ["run", path, "--set", "output_dir={tmp}", "--set", f"dataset={GOOD}"], wanted))
    for command in (
        ["generate", "--dataset", str(GOOD)],
        ["filter", good_syn],
        ["negatives", good_syn, "--dataset", str(GOOD)],
        ["retrieve", "--dataset", str(GOOD)],
    ):
        cases.append(
            (
                f"{command[0]}-config-python-object",
                [*command, "--output", "{tmp}/out", "--config", str(BAD / "recipes" / "python-object.yaml")],
                RECIPE_DEFECTS["python-object"],
            )
        )
    cases.append(
        (
            "train-config-python-object",
            ["train", str(BAD / "training" / "bad-label.jsonl"), "--config", str(BAD / "recipes" / "python-object.yaml")],
            RECIPE_DEFECTS["python-object"],
        )
    )
    cases.append(
        (
            "generate-config-num-docs-negative",
            [
                "generate",
                "--dataset",
                str(GOOD),
                "--output",
                "{tmp}/q.jsonl",
                "--config",
                str(BAD / "recipes" / "num-docs-negative.yaml"),
            ],
            RECIPE_DEFECTS["num-docs-negative"],
        )
    )
    cases.append(
        (
            "generate-flag-num-docs-negative",
            ["generate", "--dataset", str(GOOD), "--output", "{tmp}/q.jsonl", "--num-docs", "-5"],
            "'generate.num_docs' is -5; it must be at least 1",
        )
    )
    cases.append(
        (
            "generate-model-offline",
            ["generate", "--dataset", str(GOOD), "--output", "{tmp}/q.jsonl", "--model", "no-such-org/no-such-model"],
            "model 'no-such-org/no-such-model' is no folder here",
        )
    )
    for name, wanted in {
        "python-object": "python-object.yaml:1: invalid YAML",
        "no-document": "no-document.yaml:1: 'template' has no {document} placeholder",
        "latin1": "latin1.yaml:1: not UTF-8: byte 0xe9 at byte offset 43 (column 44)",
    }.items():
        cases.append(
            (
                f"generate-prompt-{name}",
                [
                    "generate", "--dataset", str(GOOD), "--output", "{tmp}/q.jsonl", "--prompt",
                    str(BAD / "prompts" / f"{name}.yaml"),
                ],
                wanted,
            )
        )
    for name, wanted in {"python-object": "python-object.yaml:1: invalid YAML", "latin1": "latin1.yaml:2: not UTF-8"}.items():
        cases.append(
            (
                f"reproduce-tables-{name}",
                ["reproduce", "faq", "--tables", str(BAD / "tables" / f"{name}.yaml"), "--output-dir", "{tmp}"], wanted,
            )
        )
    return cases


CASES = _cases()


def _one_line_error(args: list[str], wanted: str, tmp_path: Path) -> str:
    result = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and wanted in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("args", "wanted"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_code_2(args, wanted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _one_line_error(args, wanted, tmp_path)
    # Nothing was written, and no tag of a YAML file ran code.
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_5mb_single_line_is_reported_without_quoting_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "big"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "' + "water " * 900_000)  # 5.4 MB, no end
    (folder / "queries.jsonl").write_text((GOOD / "queries.jsonl").read_text())
    (folder / "qrels" / "test.tsv").write_text((GOOD / "qrels" / "test.tsv").read_text())
    line = _one_line_error(
        ["retrieve", "--dataset", str(folder), "--output", str(tmp_path / "run.trec")], "corpus.jsonl:1: invalid JSON", tmp_path
    )
    assert len(line) < 400
    run = tmp_path / "big.trec"
    run.write_text("q0 Q0 " + "d1 " * 1_800_000)
    line = _one_line_error(["evaluate", str(run), "--dataset", str(GOOD)], "big.trec:1: expected 6 fields", tmp_path)
    assert len(line) < 400


def test_outputs_that_cannot_be_replaced_atomically_are_refused_before_any_work(tmp_path):
    target = tmp_path / "elsewhere.trec"
    target.write_text("precious\n")
    link = tmp_path / "link.trec"
    link.symlink_to(target)
    for command in (
        ["retrieve", "--dataset", str(GOOD)], ["generate", "--dataset", str(GOOD)],
        ["filter", str(BAD / "synthetic" / "good.jsonl")],
    ):
        _one_line_error([*command, "--output", str(link)], "link.trec: is a symbolic link (to ", tmp_path)
    _one_line_error(
        ["rerank", str(BAD / "runs" / "good.trec"), "--model", str(tmp_path), "--dataset", str(GOOD), "--output", str(link)],
        "link.trec: is a symbolic link", tmp_path,
    )
    _one_line_error(
        ["retrieve", "--dataset", str(GOOD), "--output", str(tmp_path)], f"{tmp_path}: is a folder, not a file", tmp_path
    )
    _one_line_error(
        ["train", str(BAD / "training" / "bad-label.jsonl"), "--output", str(target)], "elsewhere.trec: is a file, not a folder",
        tmp_path,
    )
    assert target.read_text() == "precious\n" and link.is_symlink()


def test_python_tags_never_run(tmp_path, monkeypatch):
    """Recipes, prompt files and tables are data: a planted !!python/object tag is refused, never executed."""
    monkeypatch.chdir(tmp_path)
    for args in (
        ["run", str(BAD / "recipes" / "python-object.yaml")],
        [
            "generate", "--dataset", str(GOOD), "--prompt", str(BAD / "prompts" / "python-object.yaml"), "--output",
            str(tmp_path / "q.jsonl"),
        ],
        ["reproduce", "faq", "--tables", str(BAD / "tables" / "python-object.yaml")],
    ):
        _one_line_error(args, "invalid YAML (could not determine a constructor for the tag", tmp_path)
    assert not (tmp_path / "PLANTED").exists()
    source = "\n".join(p.read_text() for p in (Path(__file__).parent.parent / "inpars").rglob("*.py"))
    for unsafe in ("yaml.load(", "yaml.unsafe_load", "yaml.full_load", "Loader=yaml.Loader", "import pickle", "pickle.load"):
        assert unsafe not in source, unsafe


def test_a_bom_and_crlf_line_ends_read_as_the_clean_file(tmp_path):
    """A UTF-8 byte-order mark and Windows line ends are valid UTF-8 text: read exactly as without them."""
    from inpars import io
    from inpars.datasets import load_dataset

    folder = tmp_path / "windows"
    for path in GOOD.rglob("*"):
        if path.is_file():
            target = folder / path.relative_to(GOOD)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    clean, windows = load_dataset(str(GOOD)), load_dataset(str(folder))
    assert (windows.docs, windows.queries, windows.qrels) == (clean.docs, clean.queries, clean.qrels)
    run = tmp_path / "windows.trec"
    run.write_bytes(b"\xef\xbb\xbf" + (BAD / "runs" / "good.trec").read_bytes().replace(b"\n", b"\r\n"))
    assert io.read_trec_run(run) == io.read_trec_run(BAD / "runs" / "good.trec")


def test_the_corpus_count_in_the_readme_is_current():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    count = len(CASES) + 2 + 6 + 3 + 3  # + the 5 MB lines, the 6 unreplaceable outputs, the planted tags, the BOM/CRLF files
    assert f"{count} bad inputs" in readme, f"README should say '{count} bad inputs'"
    assert os.path.isdir(BAD)
