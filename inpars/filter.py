"""Selecting the best synthetic queries.

InPars-v1 keeps the top-k queries by the generator's own score: ``sum_log_probs``, ``mean_log_probs`` (the
papers' choice) or ``mean_probs``. Empty queries are always dropped and counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from inpars.config import FilterConfig
from inpars.data import SyntheticQuery
from inpars.errors import InparsError

logger = logging.getLogger(__name__)

SCORES = {
    "sum_log_probs": lambda q: q.sum_log_probs,
    "mean_log_probs": lambda q: q.mean_log_probs,
    "mean_probs": lambda q: q.mean_probs,
}


@dataclass
class FilterResult:
    kept: list[SyntheticQuery]
    dropped: list[tuple[SyntheticQuery, str]] = field(default_factory=list)

    def reasons(self) -> dict[str, int]:
        return dict(Counter(reason for _, reason in self.dropped))


def score(query: SyntheticQuery, method: str) -> float:
    if method not in SCORES:
        raise InparsError(f"unknown filter method '{method}'; available: {', '.join(SCORES)}")
    return SCORES[method](query)


def filter_queries(queries: list[SyntheticQuery], config: FilterConfig) -> FilterResult:
    """Drop empty queries, then keep the ``top_k`` best by ``config.method`` (ties broken by query id)."""
    if config.method not in SCORES:
        raise InparsError(f"unknown filter method '{config.method}'; available: {', '.join(SCORES)}")
    if config.top_k is not None and config.top_k < 1:
        raise InparsError(f"filter top_k must be at least 1, got {config.top_k}")
    dropped = [(q, "empty") for q in queries if not q.text.strip()]
    candidates = [q for q in queries if q.text.strip()]
    ranked = sorted(candidates, key=lambda q: (-score(q, config.method), q.query_id))
    keep = ranked if config.top_k is None else ranked[: config.top_k]
    dropped += [(q, f"below top {config.top_k} by {config.method}") for q in ranked[len(keep):]]
    logger.info("kept %d of %d queries (%s)", len(keep), len(queries), ", ".join(f"{k}: {v}" for k, v in Counter(r for _, r in dropped).items()) or "none dropped")
    return FilterResult(kept=keep, dropped=dropped)
