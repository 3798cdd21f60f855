"""A recipe run once per seed: shared stages, mean ± std over seeds, intervals and p-values in metrics.json."""

from __future__ import annotations

import pytest

from inpars import io
from inpars.config import load_pipeline_config
from inpars.data import SyntheticQuery
from inpars.errors import InparsError
from inpars.pipeline import run_pipeline, run_seeds, seeded

RECIPE = (
    "name: seeds\ntrain: {reranker: bi-encoder}\nretrieve: {top_k: 10}\nrerank: {top_k: 3, batch_size: 32}\n"
    "evaluate: {measures: [nDCG@10, RR@10], resamples: 500}\n"
)


def test_seeded_recipe_changes_only_what_a_seed_drives():
    config = load_pipeline_config(text=RECIPE)
    one = seeded(config, 7)
    assert (one.negatives.seed, one.train.seed, one.generate.seed) == (7, 7, 0)  # greedy generation keeps its seed
    sampled = seeded(load_pipeline_config(text=RECIPE, overrides=["generate.temperature=0.7", "generate.queries_per_doc=2"]), 7)
    assert sampled.generate.seed == 7
    assert one.retrieve == config.retrieve and one.filter == config.filter


def test_single_run_metrics_carry_interval_and_p_value(tmp_path, faq_slice):
    config = load_pipeline_config(text=RECIPE, overrides=[f"output_dir={tmp_path}"])
    result = run_pipeline(config, dataset=faq_slice, model="embedded:minilm-l6")
    metrics = io.read_json(tmp_path / "seeds" / "metrics.json")
    assert metrics["baseline"] == "bm25" and metrics["seeds"] == [0] and metrics["queries"] == 40
    bm25, reranked = metrics["systems"]["bm25"]["nDCG@10"], metrics["systems"]["bi-encoder"]["nDCG@10"]
    assert bm25["p_t"] is None and bm25["std"] is None and bm25["ci"][0] <= bm25["mean"] <= bm25["ci"][1]
    assert 0.0 <= reranked["p_randomization"] <= 1.0 and reranked["diff"] == pytest.approx(reranked["mean"] - bm25["mean"])
    assert result.metrics["bi-encoder"]["nDCG@10"] == reranked["mean"]
    per_query = io.read_json(tmp_path / "seeds" / "evaluate" / "per_query.json")
    assert len(per_query["bm25"]["RR@10"]) == 40


def test_seeds_share_the_stages_a_seed_does_not_change(tmp_path, faq_slice):
    config = load_pipeline_config(text=RECIPE, overrides=[f"output_dir={tmp_path}"])
    result = run_seeds(config, [3, 5], dataset=faq_slice, model="embedded:minilm-l6")
    skipped = {stage.name: stage.skipped for stage in result.stages}
    assert skipped == {"retrieve (seed 3)": False, "rerank (seed 3)": False, "evaluate (seed 3)": False,
                       "retrieve (seed 5)": True, "rerank (seed 5)": False, "evaluate (seed 5)": False}
    metrics = io.read_json(tmp_path / "seeds" / "metrics.json")
    assert metrics["seeds"] == [3, 5] and set(metrics["systems"]) == {"bm25", "bi-encoder"}
    row = metrics["systems"]["bi-encoder"]["RR@10"]
    # A given model reranks the same way whatever the seed: the spread over seeds is zero.
    assert len(row["per_seed"]) == 2 and row["per_seed"][0] == row["per_seed"][1] and row["std"] == 0.0
    assert (tmp_path / "seeds" / "seed-5" / "metrics.json").is_file()
    with pytest.raises(InparsError, match="seeds must be distinct and at least one, got \\[1, 1\\]"):
        run_seeds(config, [1, 1], dataset=faq_slice)


def test_an_unknown_baseline_is_refused(tmp_path, faq_slice):
    config = load_pipeline_config(text=RECIPE, overrides=[f"output_dir={tmp_path}", "evaluate.baseline=dense"])
    with pytest.raises(
        InparsError, match="evaluate.baseline is 'dense', which this run does not score; use one of bm25, bi-encoder"
    ):
        run_pipeline(config, dataset=faq_slice, model="embedded:minilm-l6")


@pytest.mark.slow
def test_seeds_train_once_per_seed_and_test_against_the_zero_shot_model(tmp_path, faq_slice):
    queries = tmp_path / "queries.jsonl"
    io.write_synthetic(
        queries,
        [SyntheticQuery(f"s{doc_id}", doc_id, " ".join(doc.text.split()[:8]), (-1.0,)) for doc_id, doc in faq_slice.docs.items()],
    )
    recipe = (
        "name: trained\nnegatives: {depth: 10, num_negatives: 2}\ntrain: {reranker: bi-encoder, batch_size: 8, max_length: 64, "
        "learning_rate: 1.0e-4}\n"
        "retrieve: {backend: dense, top_k: 10}\nrerank: {top_k: 10, max_length: 64}\nevaluate: {resamples: 500}\n"
    )
    config = load_pipeline_config(text=recipe, overrides=[f"output_dir={tmp_path}"])
    result = run_seeds(config, [0, 1], dataset=faq_slice, queries=queries)
    skipped = {stage.name: stage.skipped for stage in result.stages if stage.name.endswith("(seed 1)")}
    assert skipped["generate (seed 1)"] and skipped["filter (seed 1)"] and skipped["retrieve (seed 1)"]
    assert not skipped["negatives (seed 1)"] and not skipped["train (seed 1)"]
    metrics = io.read_json(tmp_path / "trained" / "metrics.json")
    assert metrics["baseline"] == "dense"
    trained = metrics["systems"]["bi-encoder"]["nDCG@10"]
    assert trained["per_seed"][0] != trained["per_seed"][1] and trained["std"] > 0
    assert trained["p_randomization_holm"] is not None and metrics["systems"]["bm25"]["nDCG@10"]["p_t_holm"] is not None
