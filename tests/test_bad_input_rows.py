"""Bad input that costs nothing: unknown models fail at once offline, failed stages say so, unreachable judgements warn."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from inpars.config import load_pipeline_config
from inpars.datasets import load_dataset
from inpars.errors import InparsError, InputError
from inpars.models import check, resolve
from inpars.pipeline import run_pipeline

BAD = Path(__file__).parent / "bad_inputs"
GOOD = BAD / "datasets" / "good"


def test_an_unknown_model_fails_at_once_with_no_network(monkeypatch):
    """Without HF_HUB_OFFLINE, an unreachable hub is found in one short attempt, not a minute of retries."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens there
    started = time.monotonic()
    with pytest.raises(InparsError) as err:
        resolve("no-such-org/no-such-model")
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert (
        "'no-such-org/no-such-model' is no folder here and not in the Hugging Face cache, and the hub is offline (127.0.0.1 "
        "cannot be reached"
        in message
    )
    assert (
        "embedded:smollm2-135m, embedded:gemma3-270m, embedded:minilm-l6, embedded:t5-tiny-random), a local folder, or a Hugging "
        "Face hub id" in message
    )


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("./no-such-folder", "model './no-such-folder': no such folder"),
        ("a model with spaces", "model 'a model with spaces': no such folder"),
        (
            "embedded:gpt-9",
            "unknown embedded model 'embedded:gpt-9'; available: embedded:smollm2-135m, embedded:gemma3-270m, embedded:minilm-l6",
        ),
    ],
)
def test_model_names_that_cannot_exist_fail_whatever_the_network(name, wanted):
    with pytest.raises(InparsError, match=wanted):
        check(name)


def test_the_pipeline_checks_its_models_before_any_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = load_pipeline_config(
        text="name: x\ntrain: {model: no-such-org/reranker}\n", overrides=[f"output_dir={tmp_path}", f"dataset={GOOD}"]
    )
    with pytest.raises(InparsError, match="model 'no-such-org/reranker' is no folder here"):
        run_pipeline(config)
    assert not (tmp_path / "x").exists()


def test_a_stage_that_fails_is_marked_failed(tmp_path):
    prompt = tmp_path / "prompt.yaml"
    prompt.write_text("template: 'Question about {topic}:'\n")
    config = load_pipeline_config(
        text=f"name: x\ngenerate: {{prompt: {prompt}}}\n", overrides=[f"output_dir={tmp_path}", f"dataset={GOOD}"]
    )
    with pytest.raises(InputError, match="prompt.yaml:1: 'template' has no {document} placeholder"):
        run_pipeline(config)
    manifest = json.loads((tmp_path / "x" / "generate" / "stage.json").read_text())
    assert manifest["status"] == "failed" and "has no {document} placeholder" in manifest["error"]


def test_judgements_of_documents_missing_from_the_corpus_warn_then_fail(tmp_path, caplog):
    folder = tmp_path / "ds"
    (folder / "qrels").mkdir(parents=True)
    for name in ("corpus.jsonl", "queries.jsonl"):
        (folder / name).write_bytes((GOOD / name).read_bytes())
    qrels = (GOOD / "qrels" / "test.tsv").read_text() + "".join(f"q0\td{i}\t0\n" for i in range(1, 6))
    (folder / "qrels" / "test.tsv").write_text(qrels + "q0\tgone-1\t1\n")
    with caplog.at_level(logging.WARNING):
        data = load_dataset(str(folder))
    assert data.qrels["q0"]["gone-1"] == 1 and len(data.qrels["q0"]) == 7
    assert (
        "1 of 12 judgements name documents that are not in the corpus (1 ids: 'gone-1'); no run can retrieve them" in caplog.text
    )
    (folder / "qrels" / "test.tsv").write_text(qrels + "q0\tgone-1\t1\nq1\tgone-2\t1\n")
    with pytest.raises(
        InputError,
        match=(
            r"test.tsv: 2 of 13 judgements name documents that are not in the corpus \(2 ids: 'gone-1', 'gone-2'\); more than "
            r"10% unreachable"
        ),
    ):
        load_dataset(str(folder))
