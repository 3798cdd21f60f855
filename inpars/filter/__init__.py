"""Selecting the best synthetic queries: LM-score, reranker, consistency and hygiene filters, composed in order."""

from inpars.filter.base import FilterContext, FilterResult, build_steps, filter_queries, filters, needs_docs, resolved_steps
from inpars.filter.report import plot_scores, summarize, write_filter_outputs

__all__ = [
    "FilterContext",
    "FilterResult",
    "build_steps",
    "filter_queries",
    "filters",
    "needs_docs",
    "plot_scores",
    "resolved_steps",
    "summarize",
    "write_filter_outputs",
]
