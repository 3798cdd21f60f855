"""Fusion with BM25, the candidate pool, the choice on held-out synthetic queries and the split that makes them."""

from __future__ import annotations

import pytest

from inpars.config import SelectConfig, load_pipeline_config
from inpars.data import SyntheticQuery, ranked
from inpars.errors import InparsError
from inpars.evaluate import evaluate
from inpars.negatives import hold_out
from inpars.rerank.fusion import candidate_pool, choose, fuse, restricted


def ranking(scores: dict[str, float]) -> list[str]:
    return [d for d, _ in ranked(scores)]


MODEL = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
BM25 = {"q": {"c": 9.0, "d": 5.0, "a": 1.0}}


def test_weight_zero_is_the_model_and_one_is_bm25():
    assert fuse(MODEL, BM25, 0.0) is MODEL
    assert ranking(fuse(MODEL, BM25, 1.0)["q"])[:3] == ["c", "d", "b"]  # a and b tie at 0: the greater id first


def test_fusion_normalises_per_query_over_both_rankings():
    fused = fuse(MODEL, BM25, 0.5)["q"]
    assert set(fused) == {"a", "b", "c", "d"}
    # model: a 1, b .5, c 0, d 0 (absent: the lowest); BM25: c 1, d .5, a 0, b 0 (absent: the lowest)
    assert fused == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.5, "d": 0.25})


def test_a_query_bm25_did_not_rank_keeps_the_model_order():
    fused = fuse({"q": {"a": 2.0, "b": 1.0}}, {}, 0.3)
    assert ranking(fused["q"]) == ["a", "b"]


def test_candidate_pool_puts_bm25_only_documents_below_the_first_stage():
    pool = candidate_pool(MODEL, BM25, depth=2)["q"]
    assert ranking(pool) == ["a", "b", "c", "d"]
    assert restricted({"q": {"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.7}}, MODEL, 2) == {"q": {"a": 0.1, "b": 0.9}}


def test_choose_takes_the_best_and_the_earlier_of_equals():
    qrels = {"q": {"d": 1}}

    def score(run, q, measure):
        return evaluate(run, q, [measure])[measure]

    good = {"q": {"d": 2.0, "a": 1.0}}
    sources = {"reranker": (MODEL, MODEL), "first-stage": (good, good)}
    choice = choose(sources, good, BM25, (0.0, 0.5, 1.0), qrels, "nDCG@10", score)
    assert (choice["source"], choice["bm25_weight"]) == ("first-stage", 0.0)
    assert len(choice["candidates"]) == 6 and choice["queries"] == 1
    tie = choose({"reranker": (good, good), "first-stage": (good, good)}, good, BM25, (0.0, 0.1), qrels, "nDCG@10", score)
    assert (tie["source"], tie["bm25_weight"]) == ("reranker", 0.0)


def test_the_gate_fuses_bm25_only_where_it_alone_beats_the_first_stage_alone():
    def score(run, q, measure):
        return evaluate(run, q, [measure])[measure]

    # The relevant document c is BM25's first and the model's third: fusion wins whatever the gate...
    qrels = {"q": {"c": 1}}
    open_gate = choose({"reranker": (MODEL, MODEL)}, MODEL, BM25, (0.0, 0.5), qrels, "nDCG@10", score)
    assert open_gate["bm25_weight"] == 0.5 and open_gate["gate"]["fusion"]
    # ...but where BM25 alone is worse than the first stage alone, only weight 0 is chosen, however fusion scores.
    first = {"q": {"c": 3.0, "a": 1.0}}
    closed = choose({"reranker": (MODEL, MODEL)}, first, BM25, (0.0, 0.5), {"q": {"c": 1, "a": 1}}, "nDCG@10", score)
    assert closed["gate"]["bm25"] < closed["gate"]["first_stage"] and not closed["gate"]["fusion"]
    assert closed["bm25_weight"] == 0.0
    ungated = choose({"reranker": (MODEL, MODEL)}, first, BM25, (0.0, 0.5), {"q": {"c": 1, "a": 1}}, "nDCG@10", score, gate=False)
    assert ungated["gate"] is None and ungated["bm25_weight"] == 0.5


def queries(n: int, per_doc: int = 1) -> list[SyntheticQuery]:
    return [SyntheticQuery(f"q{d}-{k}", f"d{d}", f"query {d} {k}") for d in range(n) for k in range(per_doc)]


def test_hold_out_splits_by_document_and_never_by_order():
    training, validation = hold_out(queries(50, per_doc=2), 0.2, 100)
    assert len(validation) == 20 and len(training) == 80
    assert not {q.doc_id for q in training} & {q.doc_id for q in validation}
    again = hold_out(list(reversed(queries(50, per_doc=2))), 0.2, 100)[1]
    assert {q.query_id for q in again} == {q.query_id for q in validation}
    assert len(hold_out(queries(50), 0.2, 3)[1]) == 3
    assert hold_out(queries(50), 0.0, 3) == (queries(50), [])


@pytest.mark.parametrize(("fields", "message"), [
    ({"validation": 0.9}, "'validation' is 0.9; it must be at least 0 and at most 0.5"),
    ({"bm25_weights": ("0.2", "x")}, "'bm25_weights' is .*give numbers between 0 and 1"),
    ({"bm25_weights": (1.5,)}, "'bm25_weights' is .*between 0 and 1"),
    ({"sources": ("dense",)}, "'sources' is .*use one or both of reranker, first-stage"),
])
def test_select_config_refuses(fields, message):
    with pytest.raises(InparsError, match=message):
        SelectConfig(**fields)


def test_select_weights_from_yaml_are_numbers(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("select:\n  validation: 0.2\n  bm25_weights: [0, 0.25, 1]\n")
    config = load_pipeline_config(recipe)
    assert config.select.bm25_weights == (0.0, 0.25, 1.0) and config.select.enabled
    bad = tmp_path / "bad.yaml"
    bad.write_text("select:\n  validation: 0.2\n  bm25_weights: [0, high]\n")
    with pytest.raises(InparsError, match=r"bad.yaml:3: 'select.bm25_weights' is \['0', 'high'\]"):
        load_pipeline_config(bad)
