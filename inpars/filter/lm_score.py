"""InPars-v1: keep the queries the generator itself was most confident about."""

from __future__ import annotations

from dataclasses import dataclass, field

from inpars.checks import InvalidValue, check_float_fields
from inpars.data import SyntheticQuery
from inpars.filter.base import Filter, FilterContext, StepOutcome, select
from inpars.registry import suggest
from inpars.retrieve.base import check_top_k

SCORES = {
    "sum_log_probs": lambda q: q.sum_log_probs,
    "mean_log_probs": lambda q: q.mean_log_probs,
    "mean_probs": lambda q: q.mean_probs,
}


@dataclass(frozen=True)
class LMScoreConfig:
    name: str = field(default="lm_score", init=False)
    method: str = "mean_log_probs"
    """sum_log_probs, mean_log_probs (the papers' choice) or mean_probs of the query's generated tokens."""
    top_k: int | None = None
    """Keep the best k; None keeps every query that passes ``threshold``."""
    threshold: float | None = None
    """Keep only queries scoring at least this."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        if self.method not in SCORES:
            raise InvalidValue("method", f"is '{self.method}', an unknown LM score", suggest(self.method, SCORES))
        check_top_k(self.top_k)


class LMScoreFilter(Filter):
    """Top-k and/or threshold on a query's log-probabilities under the generator."""

    Config = LMScoreConfig

    def apply(self, queries: list[SyntheticQuery], context: FilterContext) -> StepOutcome:
        score = SCORES[self.config.method]
        scores = {q.query_id: score(q) for q in queries}
        kept, dropped, cutoff = select(queries, scores, self.config.top_k, self.config.threshold, self.config.method)
        return StepOutcome(kept, dropped, scores, self.config.method, cutoff)
