"""The one data model used by every stage."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

Qrels = dict[str, dict[str, int]]
"""query_id -> doc_id -> relevance grade."""

Run = dict[str, dict[str, float]]
"""query_id -> doc_id -> score (what ir_measures takes)."""


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """A query's ``(doc_id, score)`` pairs in the one order every part of inpars uses, trec_eval's: by score, highest
    first, and equal scores by document id, the greater id first (string order: ``d9`` before ``d10``). Written ranks,
    reranking and fusion cuts, mined negatives and every measure see the same ranking."""
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def in_shard(item_id: str, shard: int, num_shards: int) -> bool:
    """Whether a document or query belongs to a shard: by a hash of its id, so shards never depend on order or count."""
    return num_shards == 1 or int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big") % num_shards == shard


@dataclass(frozen=True, slots=True)
class Doc:
    doc_id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """Title and text in one field, as in BEIR's "flat" indexes."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass(frozen=True, slots=True)
class Query:
    query_id: str
    text: str


@dataclass(frozen=True, slots=True)
class SyntheticQuery:
    """A query written by a language model for one source document."""

    query_id: str
    doc_id: str
    text: str
    log_probs: tuple[float, ...] = ()
    prompt: str = ""
    model: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def sum_log_probs(self) -> float:
        return float(sum(self.log_probs))

    @property
    def mean_log_probs(self) -> float:
        return float(sum(self.log_probs) / len(self.log_probs)) if self.log_probs else float("-inf")

    @property
    def mean_probs(self) -> float:
        import math

        return float(sum(math.exp(lp) for lp in self.log_probs) / len(self.log_probs)) if self.log_probs else 0.0


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One (query, document, label) pair for reranker training."""

    query_id: str
    query: str
    doc_id: str
    doc: str
    label: int


@dataclass(frozen=True)
class FewShotPool:
    """The judged queries that few-shot examples are drawn from."""

    dataset: str
    split: str
    queries: dict[str, Query]
    qrels: Qrels


@dataclass
class Dataset:
    """A test collection: documents, queries and relevance judgements of one split."""

    name: str
    docs: dict[str, Doc]
    queries: dict[str, Query]
    qrels: Qrels
    origin: dict[str, Any] = field(default_factory=dict)
    """What the records were read from, for the collection's fingerprint: role -> a file (``corpus``, ``queries``,
    ``qrels``; hashed) or a value that names the content (``ir_datasets`` -> its version). Empty: the records are
    hashed themselves."""

    def with_fixed_text(self) -> Dataset:
        """The same collection with mojibake and broken Unicode repaired by ``ftfy.fix_text`` in every title,
        document and query: what the InPars reference code does to whatever it loads."""
        import ftfy

        def fixed_doc(doc: Doc) -> Doc:
            text, title = ftfy.fix_text(doc.text), ftfy.fix_text(doc.title)
            # A text ftfy leaves as it was keeps its record: no second copy of the corpus for what needed no repair.
            return doc if (text, title) == (doc.text, doc.title) else Doc(doc.doc_id, text, title)

        def fixed_query(query: Query) -> Query:
            text = ftfy.fix_text(query.text)
            return query if text == query.text else Query(query.query_id, text)

        docs = {doc_id: fixed_doc(d) for doc_id, d in self.docs.items()}
        queries = {query_id: fixed_query(q) for query_id, q in self.queries.items()}
        return Dataset(self.name, docs, queries, self.qrels, dict(self.origin))

    def counts(self) -> dict[str, int]:
        return {
            "docs": len(self.docs),
            "queries": len(self.queries),
            "qrels": sum(len(v) for v in self.qrels.values()),
        }

    def parts(self) -> tuple[str, ...]:
        """The parts the collection has, named as in :meth:`counts`: ``("docs", "queries", "qrels")`` for a test
        collection, ``("docs",)`` for documents alone, ``("docs", "queries")`` for queries without judgements."""
        return tuple(part for part, count in self.counts().items() if count)
