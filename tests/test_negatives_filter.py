from __future__ import annotations

import pytest

from inpars.config import FilterConfig, InvalidValue, NegativesConfig
from inpars.data import Doc, SyntheticQuery
from inpars.errors import InparsError
from inpars.filter import filter_queries
from inpars.negatives import mine_negatives, pick_negatives
from inpars.retrieve.bm25s import BM25sRetriever

DOCS = {
    "d1": Doc("d1", "the roof needs a building permit"),
    "d2": Doc("d2", "a deck under one metre needs no permit"),
    "d3": Doc("d3", "fences higher than one metre need a permit"),
    "d4": Doc("d4", "the municipality answers within ten weeks"),
}


def test_negative_is_never_the_positive():
    queries = [SyntheticQuery(f"q{i}", "d1", "permit") for i in range(50)]
    run = {q.query_id: {"d1": 9.0, "d2": 5.0, "d3": 4.0} for q in queries}
    picked = pick_negatives(run, queries, NegativesConfig(depth=3, num_negatives=1, seed=0))
    assert all(len(v) == 1 and v[0] in {"d2", "d3"} for v in picked.values())
    assert {v[0] for v in picked.values()} == {"d2", "d3"}  # random, not always the same
    hardest = pick_negatives(run, queries, NegativesConfig(depth=3, num_negatives=2, strategy="hardest"))
    assert hardest["q0"] == ["d2", "d3"]
    # Seeded per query: the same query gets the same negatives whatever else is in the batch.
    alone = pick_negatives(run, queries[7:8], NegativesConfig(depth=3, num_negatives=1, seed=0))
    assert alone["q7"] == picked["q7"]


def test_mine_negatives_with_bm25():
    retriever = BM25sRetriever()
    retriever.index(DOCS.values())
    queries = [SyntheticQuery("q1", "d1", "does a roof need a permit")]
    examples = mine_negatives(queries, DOCS, retriever, NegativesConfig(depth=10, num_negatives=2))
    assert [e.label for e in examples] == [1, 0, 0]
    assert examples[0].doc == DOCS["d1"].text and "d1" not in {e.doc_id for e in examples[1:]}


def test_negatives_errors():
    with pytest.raises(InparsError, match="'strategy' is 'hard'; use one of random, hardest"):
        NegativesConfig(strategy="hard")
    retriever = BM25sRetriever()
    retriever.index(DOCS.values())
    with pytest.raises(InparsError, match="names document 'zz', which is not in the corpus"):
        mine_negatives([SyntheticQuery("q", "zz", "permit")], DOCS, retriever, NegativesConfig())


def test_filter_by_lm_scores():
    rows = [
        SyntheticQuery("a", "d1", "short", (-0.1,)),
        SyntheticQuery("b", "d2", "longer query", (-0.2, -0.2, -0.2)),
        SyntheticQuery("c", "d3", "", ()),
        SyntheticQuery("d", "d4", "bad", (-3.0, -1.0)),
    ]
    result = filter_queries(rows, FilterConfig(method="mean_log_probs", top_k=2))
    assert [q.query_id for q in result.kept] == ["a", "b"]
    assert result.reasons() == {"empty": 1, "lm_score": 1}
    by_sum = filter_queries(rows, FilterConfig(method="sum_log_probs", top_k=1))
    assert [q.query_id for q in by_sum.kept] == ["a"]
    with pytest.raises(
        InvalidValue, match="^'method' is 'mean', an unknown LM score; available: sum_log_probs, mean_log_probs, mean_probs$"
    ):
        FilterConfig(method="mean")  # refused as the config is made, before any query is read


class _Counting:
    """A real BM25 retriever that records how many queries each search gets."""

    def __init__(self, inner) -> None:
        self.inner, self.sizes = inner, []

    def search(self, queries, top_k):
        self.sizes.append(len(queries))
        return self.inner.search(queries, top_k)


def test_mining_in_chunks_changes_nothing():
    retriever = BM25sRetriever()
    retriever.index(DOCS.values())
    texts = ["permit", "roof permit", "deck metre", "fences", "municipality weeks", "one metre permit", "building"]
    queries = [SyntheticQuery(f"q{i}", f"d{i % 4 + 1}", texts[i % len(texts)]) for i in range(23)]
    config = NegativesConfig(depth=10, num_negatives=2, seed=3)
    whole = mine_negatives(queries, DOCS, retriever, config)
    counting = _Counting(retriever)
    chunked = mine_negatives(queries, DOCS, counting, config, chunk=5)
    assert chunked == whole
    # Never more than a chunk of queries searched (and so held as a run) at once.
    assert counting.sizes == [5, 5, 5, 5, 3]


def test_search_in_chunks_writes_the_same_run(tmp_path):
    from inpars import io
    from inpars.data import Query
    from inpars.retrieve.base import search_in_chunks

    retriever = BM25sRetriever()
    retriever.index(DOCS.values())
    queries = {f"q{i}": Query(f"q{i}", text) for i, text in enumerate(["permit", "roof", "metre", "weeks", "fences need"])}
    io.write_trec_run(tmp_path / "whole.trec", retriever.search(queries, 3))
    assert io.write_trec_run(tmp_path / "chunks.trec", search_in_chunks(retriever, queries, 3, chunk=2)) == 5
    assert (tmp_path / "chunks.trec").read_text() == (tmp_path / "whole.trec").read_text()
