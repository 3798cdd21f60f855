"""The filter stage: the recipe's filter steps over the generated queries; what is kept, what was dropped and why."""

from __future__ import annotations

from pathlib import Path

from inpars import io
from inpars.filter.base import FilterContext, filter_queries
from inpars.filter.report import write_filter_outputs
from inpars.stage import Stage


def _run(ctx, cfg, folder: Path) -> dict:
    generated = io.read_synthetic(ctx.input("generate", "queries.jsonl"))
    # The consistency filter searches with the recipe's BM25; scores of the model-based filters are cached under the
    # stage's folder, so an interrupted run resumes.
    context = FilterContext(
        docs=ctx.dataset.docs if ctx.dataset is not None else None, retrieve=ctx.bm25, cache_dir=folder / "cache"
    )
    summary = write_filter_outputs(filter_queries(generated, cfg.filter, context), ctx.output(folder, "kept.jsonl"), folder)
    return {key: summary[key] for key in ("input", "kept", "dropped", "histogram") if key in summary}


STAGE = Stage("filter", ("filter", "retrieve"), ("generate/queries.jsonl",), ("kept.jsonl",), _run)
