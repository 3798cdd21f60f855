"""The retrieve stage: the first stage's run of the test queries, and BM25's beside it when the first stage is not BM25
(the baseline every run reports)."""

from __future__ import annotations

from pathlib import Path

from inpars import io
from inpars.stage import Stage


def _run(ctx, cfg, folder: Path) -> dict:
    queries = ctx.dataset.queries
    run = ctx.retriever(cfg.retrieve).search(queries, cfg.retrieve.top_k)
    io.write_trec_run(ctx.output(folder, "run.trec"), run, tag=cfg.retrieve.backend)
    if not ctx.first_is_bm25:
        bm25 = ctx.bm25
        io.write_trec_run(ctx.output(folder, "bm25.trec"), ctx.retriever(bm25).search(queries, bm25.top_k), tag=bm25.backend)
    return {"queries": len(run)}


STAGE = Stage("retrieve", ("retrieve",), (), ("run.trec", "bm25.trec"), _run)
