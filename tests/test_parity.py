"""Each stage run by its CLI command equals the same stage run by 'inpars run': one implementation, two shells."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.config import load_pipeline_config
from inpars.datasets import export_beir
from inpars.pipeline import run_pipeline

pytestmark = pytest.mark.slow

# A dense first stage, so that the BM25 settings the filter and the negatives use (the recipe's BM25, never the
# first stage) and the BM25 baseline written beside the first stage's run are part of what must agree.
RECIPE = """
name: parity
dataset: {dataset}
output_dir: {output}
generate: {{max_new_tokens: 24, batch_size: 8, num_docs: 20}}
filter:
  steps:
    - {{name: lm_score, method: mean_log_probs, top_k: 16}}
    - {{name: consistency, retriever: bm25s, k: 1}}
negatives: {{depth: 10, num_negatives: 2}}
train: {{reranker: bi-encoder, model: "embedded:minilm-l6", epochs: 1, batch_size: 8}}
retrieve: {{backend: dense, model: "embedded:minilm-l6", top_k: 20}}
rerank: {{top_k: 5, batch_size: 32}}
"""


def _same_run(left, right) -> None:
    assert set(left) == set(right)
    for qid, scores in left.items():
        assert set(scores) == set(right[qid]), qid
        assert all(abs(scores[d] - right[qid][d]) <= 1e-6 for d in scores), qid


def test_every_stage_gives_the_same_output_from_its_command_and_from_a_run(tmp_path, faq_slice):
    collection = tmp_path / "collection"
    export_beir(faq_slice, collection, {"test": 1.0})
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.format(dataset=collection, output=tmp_path / "runs"))
    run_pipeline(load_pipeline_config(recipe))
    stages = tmp_path / "runs" / "parity"
    cli = tmp_path / "cli"
    cli.mkdir()

    def invoke(*args: object) -> None:
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output

    invoke("generate", "-c", recipe, "-o", cli / "queries.jsonl")
    assert (cli / "queries.jsonl").read_bytes() == (stages / "generate" / "queries.jsonl").read_bytes()
    invoke("filter", cli / "queries.jsonl", "-c", recipe, "-o", cli / "kept.jsonl")
    kept = (stages / "filter" / "kept.jsonl").read_bytes()
    assert (cli / "kept.jsonl").read_bytes() == kept
    assert 0 < len(io.read_synthetic(cli / "kept.jsonl")) < 16  # the consistency step dropped some
    invoke("negatives", cli / "kept.jsonl", "-c", recipe, "-o", cli / "train.jsonl")
    assert (cli / "train.jsonl").read_bytes() == (stages / "negatives" / "train.jsonl").read_bytes()
    invoke("train", cli / "train.jsonl", "-c", recipe, "-o", cli / "reranker")
    invoke("retrieve", "-c", recipe, "-o", cli / "run.trec")
    assert (cli / "run.trec").read_bytes() == (stages / "retrieve" / "run.trec").read_bytes()
    assert (cli / "run-bm25.trec").read_bytes() == (stages / "retrieve" / "bm25.trec").read_bytes()
    invoke("rerank", cli / "run.trec", "-c", recipe, "--model", cli / "reranker" / "model", "-o", cli / "reranked.trec")
    _same_run(io.read_trec_run(cli / "reranked.trec"), io.read_trec_run(stages / "rerank" / "run.trec"))
    invoke("evaluate", cli / "reranked.trec", "--dataset", collection, "-o", cli / "metrics.json")
    (scores,) = io.read_json(cli / "metrics.json").values()
    expected = io.read_json(stages / "evaluate" / "metrics.json")["bi-encoder"]
    assert scores == pytest.approx(expected, abs=1e-6)
