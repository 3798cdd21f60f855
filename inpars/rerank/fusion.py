"""Fusing a model's ranking with BM25's, and choosing the model and the weight on held-out synthetic queries.

Scores are min-max normalised per query over the union of both rankings (a document one ranking lacks gets that
ranking's lowest score), then mixed as ``(1 - w) * model + w * BM25``. A weight of 0 leaves the model's run as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from inpars.data import Qrels, Run, ranked
from inpars.stage import Stage

logger = logging.getLogger(__name__)


def _normalised(scores: Mapping[str, float], pool: Sequence[str]) -> dict[str, float]:
    floor = min(scores.values(), default=0.0)
    values = {doc_id: scores.get(doc_id, floor) for doc_id in pool}
    low, high = min(values.values(), default=0.0), max(values.values(), default=0.0)
    span = high - low
    return {doc_id: (value - low) / span if span > 0 else 0.0 for doc_id, value in values.items()}


def fuse(model: Run, bm25: Run, weight: float) -> Run:
    """``(1 - weight) * model + weight * BM25`` per query, over the documents either ranks; weight 0 is ``model``."""
    if weight == 0:
        return model
    fused: Run = {}
    for qid, scores in model.items():
        lexical = bm25.get(qid, {})
        pool = sorted(set(scores) | set(lexical))
        m, b = _normalised(scores, pool), _normalised(lexical, pool)
        fused[qid] = {doc_id: (1 - weight) * m[doc_id] + weight * b[doc_id] for doc_id in pool}
    return fused


def candidate_pool(first: Run, bm25: Run, depth: int) -> Run:
    """Each query's first-stage top ``depth`` with BM25's top ``depth`` below it (first-stage scores, then BM25's order)."""
    pool: Run = {}
    for qid, scores in first.items():
        head = dict(ranked(scores)[:depth])
        floor = min(head.values(), default=0.0) - 1.0
        extra = [d for d, _ in ranked(bm25.get(qid, {}))[:depth] if d not in head]
        pool[qid] = {**head, **{doc_id: floor - position for position, doc_id in enumerate(extra)}}
    return pool


def restricted(run: Run, to: Run, depth: int) -> Run:
    """``run``'s scores of the documents in each query's top ``depth`` of ``to`` (a reranking of the first stage alone)."""
    out: Run = {}
    for qid, scores in to.items():
        head = [d for d, _ in ranked(scores)[:depth]]
        out[qid] = {doc_id: run[qid][doc_id] for doc_id in head if doc_id in run.get(qid, {})}
    return out


def choose(
    sources: Mapping[str, tuple[Run, Run]],
    first: Run,
    bm25: Run,
    weights: Sequence[float],
    qrels: Qrels,
    measure: str,
    score: Callable[[Run, Qrels, str], float],
    gate: bool = True,
) -> dict:
    """The (source, weight) whose fusion with BM25 scores best on ``qrels``; ties go to the earlier source, then the
    smaller weight. ``sources``: name -> (its run alone, its run over the pool of both rankings) for weights above 0.

    ``gate``: BM25 gets a weight above 0 only if, alone, it scores at least as well as the first stage ``first``
    alone. Synthetic queries are written from their document and share its words, so they overrate lexical
    matching: on a collection whose real queries BM25 serves worse, they still reward every weight given to it.
    Returns the choice, the gate's two scores and every candidate's score.
    """
    table = []
    for name, (alone, pooled) in sources.items():
        for weight in weights:
            value = score(alone if weight == 0 else fuse(pooled, bm25, weight), qrels, measure)
            table.append({"source": name, "bm25_weight": weight, measure: value})
    lexical, dense = score(bm25, qrels, measure), score(first, qrels, measure)
    fusion = not gate or lexical >= dense
    allowed = [row for row in table if fusion or row["bm25_weight"] == 0] or table
    best = max(allowed, key=lambda row: row[measure])  # the first of equals wins
    logger.info(
        "selection on %d held-out synthetic queries: %s fused with BM25 at weight %g (%s %.4f); "
        "BM25 alone %.4f, the first stage alone %.4f%s",
        len(qrels),
        best["source"],
        best["bm25_weight"],
        measure,
        best[measure],
        lexical,
        dense,
        "" if fusion else ", so BM25 is not fused",
    )
    return {
        "source": best["source"],
        "bm25_weight": best["bm25_weight"],
        "measure": measure,
        "queries": len(qrels),
        "gate": {"bm25": lexical, "first_stage": dense, "fusion": fusion} if gate else None,
        "candidates": table,
    }


# ---------------------------------------------------------------------------------------------- the stage


def candidates(ctx, cfg, queries) -> tuple[dict[str, tuple[Run, Run]], Run, Run]:
    """Every system the selection chooses among, run on ``queries``: name -> (its run alone, its run over the pool of
    the first stage's and BM25's candidates), with the first stage's run and BM25's."""
    from inpars.rerank.base import rerank_run
    from inpars.rerank.training import snapshot_candidates

    depth = cfg.rerank.top_k
    first = ctx.retriever(cfg.retrieve).search(queries, cfg.retrieve.top_k)
    lexical = first if ctx.first_is_bm25 else ctx.retriever(ctx.bm25).search(queries, ctx.bm25.top_k)
    sources: dict[str, tuple[Run, Run]] = {}
    if "reranker" in cfg.select.sources:
        pool = candidate_pool(first, lexical, depth)
        # The final model first (it wins ties), then the snapshots training kept (train.snapshots), in step order.
        models = {"reranker": None}
        if ctx.has("train"):
            models.update(snapshot_candidates(ctx.input("train", "model").parent))
        for name, model in models.items():
            pooled = rerank_run(ctx.scorer(model), pool, queries, ctx.dataset.docs, 2 * depth)
            sources[name] = (restricted(pooled, first, depth), pooled)
    if "first-stage" in cfg.select.sources:
        sources["first-stage"] = (first, first)
    return sources, first, lexical


def _run(ctx, cfg, folder) -> dict:
    """Choose the final system on the synthetic queries held out of training (their source document is relevant)."""
    from inpars import io
    from inpars.config import judge_generate
    from inpars.data import Query
    from inpars.errors import InparsError
    from inpars.evaluate import evaluate, per_query

    held = io.read_synthetic(ctx.input("negatives", "validation.jsonl"), allow_empty=True)
    if not held:
        raise InparsError(
            f"select: no synthetic query was held out in {ctx.input('negatives', 'validation.jsonl').parent}; "
            "raise select.validation or generate for more documents"
        )
    judge = judge_generate(cfg)
    if judge is not None:
        held = judging_queries(ctx, judge, ctx.output(folder, "judge_queries.jsonl"), held)
    queries = {q.query_id: Query(q.query_id, q.text) for q in held}
    qrels = {q.query_id: {q.doc_id: 1} for q in held}
    sources, first, lexical = candidates(ctx, cfg, queries)
    choice = choose(
        sources,
        first,
        lexical,
        cfg.select.bm25_weights,
        qrels,
        cfg.select.measure,
        lambda run, q, m: evaluate(run, q, [m])[m],
        gate=cfg.select.bm25_gate,
    )
    io.write_json(ctx.output(folder, "selection.json"), choice)
    # Every candidate alone and the chosen system, query by query: a collection without test queries is judged on these.
    alone, pooled = sources[choice["source"]]
    chosen = alone if choice["bm25_weight"] == 0 else fuse(pooled, lexical, choice["bm25_weight"])
    systems = {"bm25": lexical}
    if not ctx.first_is_bm25:
        systems[cfg.retrieve.backend] = first
    for name, (run, _) in sources.items():
        if name != "first-stage":
            systems[ctx.reranker if name == "reranker" else name] = run
    systems["selected"] = chosen
    measures = list(dict.fromkeys([*cfg.evaluate.measures, cfg.select.measure]))
    io.write_json(ctx.output(folder, "per_query.json"), {name: per_query(run, qrels, measures) for name, run in systems.items()})
    return {k: choice[k] for k in ("source", "bm25_weight", "measure", "queries")}


def judging_queries(ctx, judge, output, held: list) -> list:
    """Queries for the held-out documents written by the judge (another generator or prompt than the training
    queries'), one set per document as ``generate`` would write them; empty ones are dropped."""
    from inpars import io
    from inpars.errors import InparsError
    from inpars.generate.stage import generate_queries

    doc_ids = sorted({q.doc_id for q in held})
    logger.info(
        "select: %s writes the judging queries of the %d held-out documents (prompt %s)", judge.model, len(doc_ids),
        judge.prompt,
    )
    generate_queries(
        [ctx.dataset.docs[d] for d in doc_ids], judge, output, dataset=ctx.config.dataset, restart=ctx.restart
    )
    written = [q for q in io.read_synthetic(output, allow_empty=True) if q.text.strip()]
    if not written:
        raise InparsError(
            f"select: {judge.model} wrote no query for the {len(doc_ids)} held-out documents ({output}); "
            "choose another select.judge_model or select.judge_prompt"
        )
    return written


STAGE = Stage(
    "select",
    ("select", "rerank", "retrieve", "evaluate", "generate"),
    ("negatives/validation.jsonl",),
    ("selection.json", "per_query.json"),
    _run,
)
