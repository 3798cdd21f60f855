"""BM25 in pure Python with bm25s (Lucene's scoring variant), for machines without Java."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from inpars.config import RetrieveConfig
from inpars.data import Doc, Query, Run
from inpars.errors import InparsError, require

logger = logging.getLogger(__name__)


class BM25sRetriever:
    """BM25 over title and text in one field (BEIR's "flat" convention)."""

    name = "bm25s"

    def __init__(self, config: RetrieveConfig | None = None) -> None:
        self.config = config or RetrieveConfig()
        self._bm25s = require("bm25s", "demo")
        self._stemmer = None
        if self.config.stemmer:
            stemmer_module = require("Stemmer", "demo")
            self._stemmer = stemmer_module.Stemmer(self.config.stemmer)
        self._retriever = None
        self._doc_ids: list[str] = []

    def _tokenize(self, texts: list[str]):
        return self._bm25s.tokenize(texts, stopwords=self.config.stopwords or None, stemmer=self._stemmer, show_progress=False)

    def index(self, docs: Iterable[Doc]) -> None:
        docs = list(docs)
        if not docs:
            raise InparsError("cannot index an empty corpus")
        self._doc_ids = [d.doc_id for d in docs]
        self._retriever = self._bm25s.BM25(k1=self.config.k1, b=self.config.b, method="lucene")
        self._retriever.index(self._tokenize([d.full_text for d in docs]), show_progress=False)

    def search(self, queries: Mapping[str, Query], top_k: int) -> Run:
        if self._retriever is None:
            raise InparsError("index documents before searching")
        ids = list(queries)
        if not ids:
            return {}
        k = min(top_k, len(self._doc_ids))
        tokens = self._tokenize([queries[q].text for q in ids])
        results, scores = self._retriever.retrieve(tokens, k=k, show_progress=False, n_threads=0)
        run: Run = {}
        for qid, row, row_scores in zip(ids, results, scores):
            # Documents sharing no term with the query score 0; they are not retrieved.
            run[qid] = {self._doc_ids[int(i)]: float(s) for i, s in zip(row, row_scores) if s > 0}
        return run
