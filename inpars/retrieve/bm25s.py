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
        if self.config.stopwords:
            try:  # bm25s names its lists by language and code (en, english, de, german, ...), and refuses the rest
                self._bm25s.tokenization._infer_stopwords(self.config.stopwords)
            except (ValueError, TypeError, AttributeError) as exc:
                raise InparsError(
                    f"retrieve.stopwords is '{self.config.stopwords}', a list bm25s does not have ({exc}); use a language "
                    "such as en, de, fr, es (or its name), or '' for none"
                ) from None
        self._retriever = None
        self._doc_ids: list[str] = []
        self._rank = None
        """Each indexed document's place in the tie order of written runs (greater ids first, as trec_eval)."""
        self.index_dir: Path | None = None

    def _tokenize(self, texts: Iterable[str], ids: bool = True):
        """bm25s's tokens of ``texts``: ids and their vocabulary, or (``ids=False``) each text's stemmed words."""
        return self._bm25s.tokenize(
            texts, stopwords=self.config.stopwords or None, stemmer=self._stemmer, return_ids=ids, show_progress=False
        )

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
        # The texts one at a time (bm25s tokenizes them so): a list of every title joined to its text would hold a
        # second copy of most of the corpus while indexing.
        tokens = self._tokenize(d.full_text for d in docs)
        if not tokens.vocab:
            raise InparsError(
                f"none of the {len(docs)} documents has a word bm25s can index (two or more letters or digits, less the "
                "stopwords); check the corpus, or set retrieve.stopwords=''"
            )
        retriever.index(tokens, show_progress=False)
        retriever.save(str(folder), show_progress=False)
        io.write_json(folder / "doc_ids.json", [d.doc_id for d in docs])

    def index(self, docs: Iterable[Doc]) -> None:
        docs = list(docs)
        if not docs:
            raise InparsError("cannot index an empty corpus")
        self.index_dir = cached_index(self.name, docs, self._params(), lambda folder: self._build(docs, folder))
        self._retriever = self._bm25s.BM25.load(str(self.index_dir), show_progress=False)
        self._doc_ids = io.read_json(self.index_dir / "doc_ids.json")
        import numpy as np

        # Rank 0 is the greatest id: equal scores go greater id first, trec_eval's order (inpars.data.ranked).
        order = sorted(range(len(self._doc_ids)), key=self._doc_ids.__getitem__, reverse=True)
        self._rank = np.empty(len(order), dtype=np.int64)
        self._rank[order] = np.arange(len(order))

    def search(self, queries: Mapping[str, Query], top_k: int) -> Run:
        if self._retriever is None:
            raise InparsError("index documents before searching")
        check_top_k(top_k)
        ids = list(queries)
        if not ids:
            return {}
        k = min(top_k, len(self._doc_ids))
        # Each query's words as ids of the index's vocabulary; words the corpus lacks are left out.
        words = self._tokenize([queries[q].text for q in ids], ids=False)
        query_ids = [self._retriever.get_tokens_ids(row) for row in words]
        if self._threads > 1 and len(ids) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self._threads) as pool:
                found = list(pool.map(lambda token_ids: self._top(token_ids, k), query_ids, chunksize=16))
        else:
            found = [self._top(token_ids, k) for token_ids in query_ids]
        doc_ids = self._doc_ids
        run: Run = {qid: {doc_ids[i]: s for i, s in zip(rows, values)} for qid, (rows, values) in zip(ids, found)}
        return without_query_ids(run) if self.config.remove_query else run

    def _top(self, token_ids: list[int], k: int) -> tuple[list[int], list[float]]:
        """The ``k`` best documents with a positive score (documents sharing no term with the query score 0 and are not
        retrieved), best first, ties greater document id first (trec_eval's order), at the cut too.

        bm25s's own top-k runs ``numpy.argpartition`` over every score, which slows down 15 to 20 times on the
        corpus's zeros (most documents share no term with a query): 167 ms a query at a million documents. Selecting
        among the positive scores only takes what the corpus's matches take.
        """
        import numpy as np

        if not token_ids:
            return [], []
        rank = self._rank
        scores = self._retriever.get_scores_from_ids(token_ids)
        hits = np.flatnonzero(scores > 0)
        values = scores[hits]
        if hits.size > k:
            kth = np.partition(values, hits.size - k)[hits.size - k]
            above = np.flatnonzero(values > kth)
            tied = np.flatnonzero(values == kth)
            tied = tied[np.argsort(rank[hits[tied]], kind="stable")[: k - above.size]]
            keep = np.concatenate([above, tied])
            hits, values = hits[keep], values[keep]
        order = np.lexsort((rank[hits], -values))
        return hits[order].tolist(), values[order].astype(float).tolist()
