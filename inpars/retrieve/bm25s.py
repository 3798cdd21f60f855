"""BM25 in pure Python with bm25s (Lucene's scoring variant), for machines without Java."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from inpars import io
from inpars.config import RetrieveConfig
from inpars.data import Doc, Query, Run
from inpars.errors import InparsError, require
from inpars.retrieve.base import check_top_k, thread_count, without_query_ids
from inpars.retrieve.cache import cached_index

logger = logging.getLogger(__name__)


class BM25sRetriever:
    """BM25 over title and text in one field (BEIR's "flat" convention); the index is cached per corpus."""

    name = "bm25s"

    def __init__(self, config: RetrieveConfig | None = None) -> None:
        self.config = config or RetrieveConfig()
        if self.config.prebuilt_index:
            raise InparsError(
                f"retrieve.prebuilt_index ('{self.config.prebuilt_index}') names a Lucene index; it needs "
                "retrieve.backend=pyserini"
            )
        self._threads = thread_count(self.config.threads)
        self._bm25s = require("bm25s", "demo")
        self._stemmer = None
        if self.config.stemmer:
            stemmer_module = require("Stemmer", "demo")
            if self.config.stemmer not in stemmer_module.algorithms():
                raise InparsError(
                    f"unknown stemmer '{self.config.stemmer}' for bm25s; available: {', '.join(stemmer_module.algorithms())}, "
                    "or '' for none"
                )
            self._stemmer = stemmer_module.Stemmer(self.config.stemmer)
        self._retriever = None
        self._doc_ids: list[str] = []
        self.index_dir: Path | None = None

    def _tokenize(self, texts: list[str]):
        return self._bm25s.tokenize(texts, stopwords=self.config.stopwords or None, stemmer=self._stemmer, show_progress=False)

    def _params(self) -> dict:
        # bm25s stores scores already weighted by k1 and b, so both belong to the index.
        return {
            "bm25s": importlib.metadata.version("bm25s"),
            "method": "lucene",
            "k1": self.config.k1,
            "b": self.config.b,
            "stemmer": self.config.stemmer,
            "stopwords": self.config.stopwords,
        }

    def _build(self, docs: list[Doc], folder: Path) -> None:
        retriever = self._bm25s.BM25(k1=self.config.k1, b=self.config.b, method="lucene")
        retriever.index(self._tokenize([d.full_text for d in docs]), show_progress=False)
        retriever.save(str(folder), show_progress=False)
        io.write_json(folder / "doc_ids.json", [d.doc_id for d in docs])

    def index(self, docs: Iterable[Doc]) -> None:
        docs = list(docs)
        if not docs:
            raise InparsError("cannot index an empty corpus")
        self.index_dir = cached_index(self.name, docs, self._params(), lambda folder: self._build(docs, folder))
        self._retriever = self._bm25s.BM25.load(str(self.index_dir), show_progress=False)
        self._doc_ids = io.read_json(self.index_dir / "doc_ids.json")

    def search(self, queries: Mapping[str, Query], top_k: int) -> Run:
        if self._retriever is None:
            raise InparsError("index documents before searching")
        check_top_k(top_k)
        ids = list(queries)
        if not ids:
            return {}
        k = min(top_k, len(self._doc_ids))
        tokens = self._tokenize([queries[q].text for q in ids])
        # bm25s runs queries one by one when n_threads is 0, in a thread pool otherwise.
        n_threads = self._threads if self._threads > 1 else 0
        results, scores = self._retriever.retrieve(tokens, k=k, show_progress=False, n_threads=n_threads)
        run: Run = {}
        for qid, row, row_scores in zip(ids, results, scores):
            # Documents sharing no term with the query score 0; they are not retrieved.
            run[qid] = {self._doc_ids[int(i)]: float(s) for i, s in zip(row, row_scores) if s > 0}
        return without_query_ids(run) if self.config.remove_query else run
