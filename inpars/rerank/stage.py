"""The rerank stage: the trained (or given) reranker over the first stage's top-k of the test queries, fused with BM25
where the select stage chose so; all queries, or one shard of them."""

from __future__ import annotations

from pathlib import Path

from inpars import io
from inpars.data import Query, Run
from inpars.datasets import require_part
from inpars.errors import InparsError
from inpars.rerank.base import check_run, merge_runs, rerank_run, shard_of_run
from inpars.rerank.fusion import candidate_pool, fuse
from inpars.stage import Stage

NO_SELECTION = {"source": "reranker", "bm25_weight": 0.0}
"""The papers' final system, where no select stage ran: the reranker alone."""


def final_run(ctx, first: Run, lexical: Run, queries: dict[str, Query], source: str, weight: float) -> tuple[Run, int]:
    """The final ranking for ``queries``: ``source`` (the reranked first stage, or the first stage) fused with BM25 at
    ``weight``; and the number of pairs the reranker scored."""
    depth = ctx.config.rerank.top_k
    if source == "first-stage":
        return fuse(first, lexical, weight), 0
    pool = first if weight == 0 else candidate_pool(first, lexical, depth)
    cut = depth if weight == 0 else 2 * depth
    run = rerank_run(ctx.scorer(snapshot(ctx, source)), pool, queries, ctx.dataset.docs, cut)
    return fuse(run, lexical, weight), sum(min(len(v), cut) for v in pool.values())


def snapshot(ctx, source: str) -> Path | None:
    """The model folder of a snapshot the select stage chose (``reranker@step-N``); None for the final model."""
    from inpars.rerank.training import SNAPSHOTS, snapshot_candidates

    if "@" not in source:
        return None
    train = ctx.input("train", "model").parent
    folder = snapshot_candidates(train).get(source)
    if folder is None:
        raise InparsError(
            f"the select stage chose {source}, and {train / SNAPSHOTS} has no such snapshot; run the train stage again (--force)"
        )
    return folder


def _run(ctx, cfg, folder: Path, shard: int = 0, num_shards: int = 1) -> dict:
    require_part(ctx.dataset, "queries", "rerank")
    source = ctx.input("retrieve", "run.trec")
    first = shard_of_run(io.read_trec_run(source), shard, num_shards)
    # Checked before the reranker loads (on first use, below): a run of another dataset costs no model time.
    check_run(first, ctx.dataset.queries, ctx.dataset.docs, source=source)
    choice = io.read_json(ctx.input("select", "selection.json")) if ctx.has("select") else NO_SELECTION
    weight = float(choice["bm25_weight"])
    lexical = (
        first
        if ctx.first_is_bm25 or weight == 0
        else shard_of_run(io.read_trec_run(ctx.input("retrieve", "bm25.trec")), shard, num_shards)
    )
    run, pairs = final_run(ctx, first, lexical, ctx.dataset.queries, choice["source"], weight)
    io.write_trec_run(ctx.output(folder, "run.trec"), run, tag=ctx.reranker)
    return {"queries": len(run), "pairs": pairs, "source": choice["source"], "bm25_weight": weight}


def _merge(ctx, cfg, folder: Path, shards: list[Path]) -> dict:
    run = merge_runs([shard / "run.trec" for shard in shards])
    io.write_trec_run(ctx.output(folder, "run.trec"), run, tag=ctx.reranker)
    return {"queries": len(run), "merged_shards": len(shards)}


STAGE = Stage(
    "rerank",
    ("rerank",),
    ("retrieve/run.trec", "retrieve/bm25.trec", "select/selection.json"),
    ("run.trec",),
    _run,
    run_shard=_run,
    merge=_merge,
)
