"""InPars-v2: score each (synthetic query, source document) pair with a reranker and keep the best."""

from __future__ import annotations

from dataclasses import dataclass, field

from inpars.checks import check_float_fields, check_name
from inpars.data import SyntheticQuery
from inpars.filter.base import Filter, FilterContext, StepOutcome, select
from inpars.retrieve.base import check_top_k


@dataclass(frozen=True)
class RerankerFilterConfig:
    name: str = field(default="reranker", init=False)
    reranker: str = "cross-encoder"
    """A registered reranker (see ``inpars.rerank.rerankers``); InPars-v2 used monoT5-3B."""
    model: str = "cross-encoder/ms-marco-MiniLM-L6-v2"
    """The reranker's checkpoint: a Hugging Face id or a local folder (a trained reranker's ``model``)."""
    top_k: int | None = None
    """Keep the best k pairs (InPars-v2: 10,000 of 100,000); None keeps every query that passes ``threshold``."""
    threshold: float | None = None
    max_length: int = 512
    batch_size: int = 32
    device: str = "auto"

    def __post_init__(self) -> None:
        check_float_fields(self)
        from inpars.models import check_device

        check_device(self.device)
        from inpars.rerank import rerankers

        check_name(rerankers, "reranker", self.reranker)
        check_top_k(self.top_k)


class RerankerFilter(Filter):
    """Keeps the queries whose source document a reranker finds most relevant to them."""

    Config = RerankerFilterConfig
    needs_docs = True
    chunk_size = 1024
    """Pairs scored between two writes of the score cache."""

    def apply(self, queries: list[SyntheticQuery], context: FilterContext) -> StepOutcome:
        c = self.config
        docs = {q.query_id: context.doc("reranker", q).full_text for q in queries}

        def compute(chunk: list[SyntheticQuery]) -> list[float | None]:
            scorer = context.reranker(c.reranker, c.model, max_length=c.max_length, batch_size=c.batch_size, device=c.device)
            return [float(s) for s in scorer.score([(q.text, docs[q.query_id]) for q in chunk])]

        scoring = {"reranker": c.reranker, "model": c.model, "max_length": c.max_length}
        scores = context.cached_scores("reranker", scoring, queries, compute, self.chunk_size)
        kept, dropped, cutoff = select(queries, scores, c.top_k, c.threshold, f"{c.reranker} score")
        return StepOutcome(kept, dropped, scores, f"{c.reranker} score ({c.model})", cutoff)
