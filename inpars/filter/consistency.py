"""Round-trip consistency (Promptagator, InPars-light): keep a query only if retrieval finds its source document.

Each synthetic query is searched over the whole corpus with a registered retriever (BM25, or a dense
bi-encoder), optionally reranked over the retriever's top ``depth``; the query is kept when its source
document ranks within the top ``k`` (Promptagator: k = 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inpars.checks import check_float_fields, check_name
from inpars.config import to_dict
from inpars.data import Query, Run, SyntheticQuery
from inpars.filter.base import Filter, FilterContext, StepOutcome


@dataclass(frozen=True)
class ConsistencyConfig:
    name: str = field(default="consistency", init=False)
    retriever: str = "bm25s"
    """A registered retriever (see ``inpars.retrieve.retrievers``); BM25 takes the recipe's ``retrieve`` settings."""
    model: str | None = None
    """The retriever's model, for retrievers that take one (a dense bi-encoder)."""
    k: int = 1
    """Keep a query when its source document ranks within the top k."""
    depth: int = 100
    """How deep to search (and rerank); a source document below it counts as not retrieved."""
    reranker: str | None = None
    """Rerank the retriever's top ``depth`` with this registered reranker before ranking."""
    reranker_model: str | None = None
    max_length: int = 512
    batch_size: int = 32
    device: str = "auto"

    def __post_init__(self) -> None:
        check_float_fields(self)
        from inpars.models import check_device

        check_device(self.device)
        from inpars.rerank import rerankers
        from inpars.retrieve import retrievers

        check_name(retrievers, "retriever", self.retriever)
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if self.depth < self.k:
            raise ValueError(f"depth ({self.depth}) must be at least k ({self.k})")
        if self.reranker is not None:
            check_name(rerankers, "reranker", self.reranker)
            if not self.reranker_model:
                raise ValueError(
                    "a consistency step with a reranker needs reranker_model (a trained reranker folder or a Hugging Face id)"
                )
        elif self.reranker_model is not None:
            raise ValueError(
                "reranker_model is set but reranker is not; name the reranker kind too (e.g. reranker: cross-encoder)"
            )


def source_rank(scores: dict[str, float], doc_id: str) -> int | None:
    """1-based rank of ``doc_id`` in a ranking (ties by doc id, as in written runs), None if absent."""
    if doc_id not in scores:
        return None
    mine = scores[doc_id]
    return 1 + sum(1 for other, s in scores.items() if s > mine or (s == mine and other < doc_id))


class ConsistencyFilter(Filter):
    """Keeps the queries whose source document a retriever (and reranker) ranks within the top ``k``."""

    Config = ConsistencyConfig
    needs_docs = True
    chunk_size = 256
    """Queries searched between two writes of the score cache."""

    def _ranks(self, chunk: list[SyntheticQuery], context: FilterContext) -> list[float | None]:
        from inpars.rerank import rerank_run

        c = self.config
        options = {"model": c.model} if c.model else {}
        retriever = context.retriever(c.retriever, **options)
        for q in chunk:
            context.doc("consistency", q)  # a source missing from the corpus is an error, not a miss
        queries = {q.query_id: Query(q.query_id, q.text) for q in chunk}
        run: Run = retriever.search(queries, c.depth)
        if c.reranker:
            scorer = context.reranker(
                c.reranker, c.reranker_model, max_length=c.max_length, batch_size=c.batch_size, device=c.device
            )
            run = rerank_run(scorer, run, queries, context.docs("consistency"), c.depth)
        ranks = [source_rank(run.get(q.query_id, {}), q.doc_id) for q in chunk]
        return [None if r is None else float(r) for r in ranks]

    def apply(self, queries: list[SyntheticQuery], context: FilterContext) -> StepOutcome:
        c = self.config
        scoring = {
            "retriever": c.retriever,
            "model": c.model,
            "depth": c.depth,
            "reranker": c.reranker,
            "reranker_model": c.reranker_model,
            "max_length": c.max_length,
            "retrieve": to_dict(context.retrieve),
        }
        ranks = context.cached_scores("consistency", scoring, queries, lambda chunk: self._ranks(chunk, context), self.chunk_size)
        kept, dropped = [], []
        for q in queries:
            rank = ranks[q.query_id]
            if rank is None:
                dropped.append((q, "source not retrieved", f"not in the top {c.depth}"))
            elif rank > c.k:
                dropped.append((q, "source not in top k", f"rank {int(rank)} > {c.k}"))
            else:
                kept.append(q)
        what = c.retriever + (f" + {c.reranker}" if c.reranker else "")
        return StepOutcome(kept, dropped, ranks, f"rank of the source document ({what})", float(c.k))
