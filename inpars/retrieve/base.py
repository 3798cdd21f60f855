"""What every first-stage retriever provides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from inpars.data import Doc, Query, Run
from inpars.registry import Registry


class Retriever(Protocol):
    def index(self, docs: Iterable[Doc]) -> None: ...

    def search(self, queries: Mapping[str, Query], top_k: int) -> Run: ...


retrievers = Registry("retriever")
retrievers.register("bm25s", "inpars.retrieve.bm25s:BM25sRetriever")
retrievers.register("dense", "inpars.retrieve.dense:DenseRetriever")
