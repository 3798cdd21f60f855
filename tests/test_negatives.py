"""Negative mining on a six-document corpus whose BM25 and bi-encoder rankings are known.

BM25 (bm25s) ranks, for s1, d1 (its positive) > d2 > d3 and nothing else; for s2 only d4 (its positive).
all-MiniLM-L6-v2 ranks, for s1, d1 > d2 > d3 > d6 > d5 > d4; for s2, d4 > d5 > the rest.
"""

from __future__ import annotations

import logging

import pytest

from inpars.config import NegativesConfig, RetrieveConfig
from inpars.data import Doc, Query, SyntheticQuery, TrainingExample
from inpars.errors import InparsError
from inpars.negatives import dense_retriever, mine_negatives, pick_negatives
from inpars.retrieve import retrievers

DOCS = {
    d.doc_id: d
    for d in [
        Doc("d1", "Insulin is a hormone made by the pancreas."),
        Doc("d2", "The pancreas also makes digestive enzymes besides insulin."),
        Doc("d3", "Diabetes is treated with insulin injections."),
        Doc("d4", "The Eiffel Tower is a landmark in Paris."),
        Doc("d5", "Paris is the capital of France."),
        Doc("d6", "Photosynthesis turns sunlight into sugar."),
    ]
}
S1 = SyntheticQuery("s1", "d1", "which hormone does the pancreas make, insulin?")
S2 = SyntheticQuery("s2", "d4", "where is the eiffel tower")
QUERIES = [S1, S2]


@pytest.fixture(scope="module")
def bm25(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INPARS_CACHE", str(tmp_path_factory.mktemp("cache")))
        retriever = retrievers.get("bm25s")(RetrieveConfig())
        retriever.index(DOCS.values())
    return retriever


def negatives(examples: list[TrainingExample]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for example in examples:
        out.setdefault(example.query_id, [])
        if example.label == 0:
            out[example.query_id].append(example.doc_id)
    return out


def as_queries(queries: list[SyntheticQuery]) -> dict[str, Query]:
    return {q.query_id: Query(q.query_id, q.text) for q in queries}


def test_bm25_ranking_is_as_documented(bm25):
    run = bm25.search(as_queries(QUERIES), 10)
    assert sorted(run["s1"], key=run["s1"].get, reverse=True) == ["d1", "d2", "d3"]
    assert list(run["s2"]) == ["d4"]


def test_hardest_takes_the_best_ranked_non_positive(bm25, caplog):
    with caplog.at_level(logging.WARNING, logger="inpars.negatives"):
        examples = mine_negatives(QUERIES, DOCS, bm25, NegativesConfig(strategy="hardest", num_negatives=1))
    assert examples == [
        TrainingExample("s1", S1.text, "d1", DOCS["d1"].text, 1),
        TrainingExample("s1", S1.text, "d2", DOCS["d2"].text, 0),
        TrainingExample("s2", S2.text, "d4", DOCS["d4"].text, 1),
    ]
    assert "1 queries had fewer than 1 candidate negatives in their top 1000" in caplog.text
    assert negatives(mine_negatives(QUERIES, DOCS, bm25, NegativesConfig(strategy="hardest", num_negatives=5))) == {
        "s1": ["d2", "d3"],
        "s2": [],
    }


def test_random_draws_from_the_pool_and_never_the_positive(bm25):
    drawn = {
        negatives(mine_negatives([S1], DOCS, bm25, NegativesConfig(num_negatives=1, seed=seed)))["s1"][0]
        for seed in range(40)
    }
    assert drawn == {"d2", "d3"}
    assert sorted(negatives(mine_negatives([S1], DOCS, bm25, NegativesConfig(num_negatives=2)))["s1"]) == ["d2", "d3"]
    # depth 2 leaves d1 (the positive) and d2: d2 is the only candidate.
    assert {negatives(mine_negatives([S1], DOCS, bm25, NegativesConfig(depth=2, seed=seed)))["s1"][0] for seed in range(10)} == {
        "d2"
    }


def test_random_draws_are_seeded_per_query():
    run = {"s1": {f"x{i}": float(100 - i) for i in range(50)}, "s2": {f"x{i}": 1.0 for i in range(50)}}
    config = NegativesConfig(num_negatives=3, seed=7)
    both = pick_negatives(run, [S1, S2], config)
    assert both == pick_negatives(run, [S1, S2], config)
    assert both["s1"] == pick_negatives(run, [S1], config)["s1"]
    assert both["s2"] == pick_negatives(run, [S2, S1], config)["s2"]
    assert len(set(both["s1"])) == 3
    assert any(pick_negatives(run, [S1], NegativesConfig(num_negatives=3, seed=seed))["s1"] != both["s1"] for seed in range(3))


def test_dense_negatives_rank_by_cosine_similarity():
    run = dense_retriever(DOCS, "embedded:minilm-l6").search(as_queries(QUERIES), 3)
    assert [sorted(run[q], key=run[q].get, reverse=True) for q in ("s1", "s2")] == [["d1", "d2", "d3"], ["d4", "d5", "d1"]]
    assert all(-1.0 <= score <= 1.0 for hits in run.values() for score in hits.values())


def test_dense_negatives_add_to_bm25_ones_without_repeats(bm25):
    config = NegativesConfig(strategy="hardest", num_negatives=1, dense_negatives=1)
    # s1: BM25's hardest is d2, so the bi-encoder's hardest other than d1 and d2 is d3; s2: BM25 has none, dense gives d5.
    assert negatives(mine_negatives(QUERIES, DOCS, bm25, config)) == {"s1": ["d2", "d3"], "s2": ["d5"]}


def test_dense_negatives_alone_need_no_retriever():
    config = NegativesConfig(strategy="hardest", num_negatives=0, dense_negatives=2)
    assert negatives(mine_negatives(QUERIES, DOCS, None, config)) == {"s1": ["d2", "d3"], "s2": ["d5", "d1"]}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "hard"}, "'strategy' is 'hard'; use one of random, hardest"),
        ({"num_negatives": 0}, r"'num_negatives' \(BM25\) plus 'dense_negatives' is 0; mine at least one negative per query"),
        ({"num_negatives": -1, "dense_negatives": 2}, "'num_negatives' is -1; it must be at least 0"),
        ({"depth": 0}, "'depth' is 0; it must be at least 1"),
    ],
)
def test_bad_settings_are_refused_by_the_config(fields, message):
    with pytest.raises(InparsError, match=message):
        NegativesConfig(**fields)


def test_bm25_negatives_need_a_retriever():
    with pytest.raises(InparsError, match="BM25 negatives need an indexed retriever; set negatives.num_negatives=0"):
        mine_negatives(QUERIES, DOCS, None, NegativesConfig())


def test_a_query_whose_document_is_not_in_the_corpus(bm25):
    stray = SyntheticQuery("s9", "d99", "insulin")
    with pytest.raises(InparsError, match="synthetic query 's9' names document 'd99', which is not in the corpus"):
        mine_negatives([stray], DOCS, bm25, NegativesConfig())
