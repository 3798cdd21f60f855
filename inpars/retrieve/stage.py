"""The retrieve stage: the first stage's run of the test queries, and BM25's beside it when the first stage is not BM25
(the baseline every run reports)."""

from __future__ import annotations

from pathlib import Path

from inpars import io
from inpars.datasets import require_part
from inpars.retrieve.base import search_in_chunks
from inpars.stage import Stage


def _run(ctx, cfg, folder: Path) -> dict:
    require_part(ctx.dataset, "queries", "retrieve")
    # Searched and written a chunk of queries at a time: the whole depth-1000 run is never held in memory.
    queries = ctx.dataset.queries
    first = search_in_chunks(ctx.retriever(cfg.retrieve), queries, cfg.retrieve.top_k)
    count = io.write_trec_run(ctx.output(folder, "run.trec"), first, tag=cfg.retrieve.backend)
    if not ctx.first_is_bm25:
        bm25 = ctx.bm25
        io.write_trec_run(
            ctx.output(folder, "bm25.trec"), search_in_chunks(ctx.retriever(bm25), queries, bm25.top_k), tag=bm25.backend
        )
    return {"queries": count}


STAGE = Stage("retrieve", ("retrieve",), (), ("run.trec", "bm25.trec"), _run)
