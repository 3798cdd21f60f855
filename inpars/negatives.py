"""Negative mining: for each synthetic query, documents from its BM25 top-N that are not its source.

Optionally, further negatives come from a bi-encoder's top-N (dense negatives, as in GPL), drawn the same way.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Mapping

from inpars.config import NegativesConfig, RetrieveConfig
from inpars.data import Doc, Query, Run, SyntheticQuery, TrainingExample, ranked
from inpars.errors import InparsError
from inpars.retrieve.base import SEARCH_CHUNK
from inpars.stage import Stage

logger = logging.getLogger(__name__)


def pick_negatives(
    run: Run,
    queries: list[SyntheticQuery],
    config: NegativesConfig,
    count: int | None = None,
    stream: str = "",
    exclude: Mapping[str, list[str]] | None = None,
) -> dict[str, list[str]]:
    """query_id -> negative doc ids, never the query's positive document.

    ``random`` draws uniformly from the top ``depth`` (the papers' choice); ``hardest`` takes the best-ranked.
    Each query gets its own seeded generator, so a query's negatives do not depend on the other queries.
    ``count`` overrides ``config.num_negatives``; ``stream`` names an independent random stream (dense negatives
    use ``"dense"``); documents in ``exclude[query_id]`` (negatives already picked) are never picked again.
    """
    picked, short = _pick(run, queries, config, count, stream, exclude)
    _warn_short(short, config, count)
    return picked


def _pick(
    run: Run,
    queries: list[SyntheticQuery],
    config: NegativesConfig,
    count: int | None,
    stream: str,
    exclude: Mapping[str, list[str]] | None,
) -> tuple[dict[str, list[str]], int]:
    """:func:`pick_negatives` and the number of queries that had too few candidates."""
    count = config.num_negatives if count is None else count
    exclude = exclude or {}
    picked: dict[str, list[str]] = {}
    short = 0
    for query in queries:
        candidates = ranked(run.get(query.query_id, {}))[: config.depth]
        taken = set(exclude.get(query.query_id, ()))
        pool = [doc_id for doc_id, _ in candidates if doc_id != query.doc_id and doc_id not in taken]
        if len(pool) < count:
            short += 1
        if config.strategy == "hardest":
            chosen = pool[:count]
        else:
            rng = random.Random(f"{config.seed}:{stream}:{query.query_id}" if stream else f"{config.seed}:{query.query_id}")
            chosen = rng.sample(pool, min(count, len(pool)))
        picked[query.query_id] = chosen
    return picked, short


def _warn_short(short: int, config: NegativesConfig, count: int | None) -> None:
    if short:
        count = config.num_negatives if count is None else count
        logger.warning("%d queries had fewer than %d candidate negatives in their top %d", short, count, config.depth)


def training_examples(
    queries: list[SyntheticQuery], negatives: Mapping[str, list[str]], docs: Mapping[str, Doc]
) -> list[TrainingExample]:
    """One positive (the source document) and the mined negatives per query."""
    examples = []
    for query in queries:
        if query.doc_id not in docs:
            raise InparsError(
                f"synthetic query '{query.query_id}' names document '{query.doc_id}', which is not in the corpus; "
                "generate and mine from the same dataset"
            )
        examples.append(TrainingExample(query.query_id, query.text, query.doc_id, docs[query.doc_id].full_text, 1))
        for doc_id in negatives.get(query.query_id, []):
            examples.append(TrainingExample(query.query_id, query.text, doc_id, docs[doc_id].full_text, 0))
    return examples


def dense_retriever(docs: Mapping[str, Doc], model: str):
    """A bi-encoder (``negatives.dense_model``) with ``docs`` indexed, for dense negatives."""
    from inpars.retrieve.dense import DenseRetriever

    dense = DenseRetriever(RetrieveConfig(backend="dense", model=model))
    dense.index(docs.values())
    return dense


def mine_negatives(
    queries: list[SyntheticQuery],
    docs: Mapping[str, Doc],
    retriever,
    config: NegativesConfig,
    dense=None,
    chunk: int = SEARCH_CHUNK,
) -> list[TrainingExample]:
    """Search each synthetic query with an indexed ``retriever`` (and a bi-encoder, if asked) and build training examples.

    ``retriever`` may be None when ``config.num_negatives`` is 0 (dense negatives only); ``dense``: the indexed
    bi-encoder for dense negatives (built from ``config.dense_model`` when not given). Queries are searched
    ``chunk`` at a time; each query's negatives depend on it alone, so the chunk size changes nothing.
    """
    from tqdm.auto import tqdm

    if config.num_negatives and retriever is None:
        raise InparsError("BM25 negatives need an indexed retriever; set negatives.num_negatives=0 to mine dense negatives only")
    if config.dense_negatives and dense is None:
        dense = dense_retriever(docs, config.dense_model)
    examples: list[TrainingExample] = []
    short = {"bm25": 0, "dense": 0}
    chunks = [queries[i : i + chunk] for i in range(0, len(queries), chunk)]
    for part in tqdm(chunks, desc="negatives", unit="chunk", disable=len(chunks) < 4):
        as_queries = {q.query_id: Query(q.query_id, q.text) for q in part}
        negatives: dict[str, list[str]] = {q.query_id: [] for q in part}
        if config.num_negatives:
            negatives, missing = _pick(retriever.search(as_queries, top_k=config.depth), part, config, None, "", None)
            short["bm25"] += missing
        if config.dense_negatives:
            run = dense.search(as_queries, config.depth)
            extra, missing = _pick(run, part, config, config.dense_negatives, "dense", negatives)
            short["dense"] += missing
            negatives = {qid: negatives[qid] + extra[qid] for qid in negatives}
        examples.extend(training_examples(part, negatives, docs))
    _warn_short(short["bm25"], config, None)
    _warn_short(short["dense"], config, config.dense_negatives)
    return examples


def hold_out(queries: list[SyntheticQuery], share: float, at_most: int) -> tuple[list[SyntheticQuery], list[SyntheticQuery]]:
    """Split synthetic queries into (training, validation) by document: the ``share`` of their documents (at most
    ``at_most``) that come first by a hash of the document id give all their queries to validation, so no held-out
    document is a training positive. The split depends on the documents only, never on order or seed."""
    if share <= 0:
        return list(queries), []
    docs = sorted({q.doc_id for q in queries}, key=lambda doc_id: hashlib.sha256(f"validation:{doc_id}".encode()).hexdigest())
    held = set(docs[: min(at_most, max(1, round(share * len(docs))))]) if len(docs) > 1 else set()
    training = [q for q in queries if q.doc_id not in held]
    validation = [q for q in queries if q.doc_id in held]
    logger.info(
        "%d synthetic queries of %d documents held out to choose the final system; %d left to train on",
        len(validation),
        len(held),
        len(training),
    )
    return training, validation


# ---------------------------------------------------------------------------------------------- the stage


def _run(ctx, cfg, folder) -> dict:
    from inpars import io

    kept = io.read_synthetic(ctx.input("filter", "kept.jsonl"))
    summary: dict = {}
    if cfg.select.enabled:
        kept, validation = hold_out(kept, cfg.select.validation, cfg.select.max_validation)
        io.write_synthetic(ctx.output(folder, "validation.jsonl"), validation)
        summary["held_out"] = len(validation)
    config = cfg.negatives
    # Negatives always come from the recipe's BM25 (never a dense first stage), so mining means one thing everywhere.
    bm25 = ctx.retriever(ctx.bm25) if config.num_negatives else None
    dense = (
        ctx.retriever(RetrieveConfig(backend="dense", model=config.dense_model)) if config.dense_negatives and kept else None
    )
    examples = mine_negatives(kept, ctx.dataset.docs, bm25, config, dense=dense)
    io.write_training(ctx.output(folder, "train.jsonl"), examples)
    negatives = sum(1 for e in examples if e.label == 0)
    return {"queries": len(kept), "examples": len(examples), "negatives": negatives, **summary}


STAGE = Stage(
    "negatives", ("negatives", "retrieve", "select"), ("filter/kept.jsonl",), ("train.jsonl", "validation.jsonl"), _run
)
