"""Negative mining: for each synthetic query, documents from its BM25 top-N that are not its source.

Optionally, further negatives come from a bi-encoder's top-N (dense negatives, as in GPL), drawn the same way.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Mapping

from inpars.config import NegativesConfig
from inpars.data import Doc, Query, Run, SyntheticQuery, TrainingExample
from inpars.errors import InparsError

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
    count = config.num_negatives if count is None else count
    exclude = exclude or {}
    picked: dict[str, list[str]] = {}
    short = 0
    for query in queries:
        ranked = sorted(run.get(query.query_id, {}).items(), key=lambda item: (-item[1], item[0]))[: config.depth]
        taken = set(exclude.get(query.query_id, ()))
        pool = [doc_id for doc_id, _ in ranked if doc_id != query.doc_id and doc_id not in taken]
        if len(pool) < count:
            short += 1
        if config.strategy == "hardest":
            chosen = pool[:count]
        else:
            rng = random.Random(f"{config.seed}:{stream}:{query.query_id}" if stream else f"{config.seed}:{query.query_id}")
            chosen = rng.sample(pool, min(count, len(pool)))
        picked[query.query_id] = chosen
    if short:
        logger.warning("%d queries had fewer than %d candidate negatives in their top %d", short, count, config.depth)
    return picked


def dense_run(queries: Mapping[str, Query], docs: Mapping[str, Doc], model: str, top_k: int, batch_size: int = 64) -> Run:
    """Cosine similarity of a sentence-transformers bi-encoder: each query's ``top_k`` documents."""
    import torch
    from sentence_transformers import SentenceTransformer

    from inpars.models import resolve

    if not queries:
        return {}
    doc_ids = list(docs)
    if not doc_ids:
        raise InparsError("cannot search an empty corpus")
    encoder = SentenceTransformer(resolve(model))
    logger.info("dense negatives: encoding %d documents and %d queries with %s", len(doc_ids), len(queries), model)
    doc_vectors = encoder.encode(
        [docs[d].full_text for d in doc_ids], batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True
    )
    query_ids = list(queries)
    query_vectors = encoder.encode(
        [queries[q].text for q in query_ids], batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True
    )
    k = min(top_k, len(doc_ids))
    run: Run = {}
    for start in range(0, len(query_ids), batch_size):
        scores = query_vectors[start : start + batch_size] @ doc_vectors.T
        values, indices = torch.topk(scores, k, dim=1)
        for qid, row_values, row_indices in zip(query_ids[start : start + batch_size], values.tolist(), indices.tolist()):
            run[qid] = {doc_ids[i]: float(v) for v, i in zip(row_values, row_indices)}
    return run


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


def mine_negatives(
    queries: list[SyntheticQuery], docs: Mapping[str, Doc], retriever, config: NegativesConfig
) -> list[TrainingExample]:
    """Search each synthetic query with an indexed ``retriever`` (and a bi-encoder, if asked) and build training examples.

    ``retriever`` may be None when ``config.num_negatives`` is 0 (dense negatives only).
    """
    as_queries = {q.query_id: Query(q.query_id, q.text) for q in queries}
    negatives: dict[str, list[str]] = {q.query_id: [] for q in queries}
    if config.num_negatives:
        if retriever is None:
            raise InparsError(
                "BM25 negatives need an indexed retriever; set negatives.num_negatives=0 to mine dense negatives only"
            )
        negatives = pick_negatives(retriever.search(as_queries, top_k=config.depth), queries, config)
    if config.dense_negatives:
        run = dense_run(as_queries, docs, config.dense_model, config.depth)
        dense = pick_negatives(run, queries, config, count=config.dense_negatives, stream="dense", exclude=negatives)
        negatives = {qid: negatives[qid] + dense[qid] for qid in negatives}
    return training_examples(queries, negatives, docs)


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
