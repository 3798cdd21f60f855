"""What every first-stage retriever provides."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from inpars.checks import InvalidValue
from inpars.data import Doc, Query, Run
from inpars.errors import InparsError
from inpars.registry import Registry
from inpars.threads import usable_cpus


class Retriever(Protocol):
    def index(self, docs: Iterable[Doc]) -> None: ...

    def search(self, queries: Mapping[str, Query], top_k: int) -> Run: ...


def thread_count(threads: int) -> int:
    """``retrieve.threads`` as a number of threads: 0 means every core this process may use (:func:`usable_cpus`)."""
    if threads < 0:
        raise InparsError(f"retrieve.threads must be 0 (every usable core) or a positive number, got {threads}")
    return threads or usable_cpus()


def check_top_k(top_k: int | None) -> None:
    """The check of every top-k, a retriever's search or a filter step's option (None: no cut); raised as
    :class:`InvalidValue`, so config loading names the file and line."""
    if top_k is not None and top_k < 1:
        raise InvalidValue("top_k", f"is {top_k}", "it must be at least 1")


SEARCH_CHUNK = 1000
"""Queries searched at once where a stage searches many (the test queries, the negatives' synthetic ones): only one
chunk's run is held, never a depth-1000 run of every query (100,000 queries would be 100 million scores in dicts)."""


def search_in_chunks(retriever: Retriever, queries: Mapping[str, Query], top_k: int, chunk: int = SEARCH_CHUNK) -> Iterator[Run]:
    """The run of ``queries``, :data:`SEARCH_CHUNK` queries at a time (a query's hits never depend on the others)."""
    ids = list(queries)
    for start in range(0, len(ids), chunk):
        yield retriever.search({qid: queries[qid] for qid in ids[start : start + chunk]}, top_k)


def without_query_ids(run: Run) -> Run:
    """The run without hits whose document id is their query's id (``retrieve.remove_query``)."""
    return {qid: {doc_id: score for doc_id, score in hits.items() if doc_id != qid} for qid, hits in run.items()}


retrievers = Registry("retriever")
retrievers.register("bm25s", "inpars.retrieve.bm25s:BM25sRetriever")
retrievers.register("pyserini", "inpars.retrieve.pyserini:PyseriniRetriever")
retrievers.register("dense", "inpars.retrieve.dense:DenseRetriever")
