"""Negative mining: for each synthetic query, documents from its BM25 top-N that are not its source."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping

from inpars.config import NegativesConfig
from inpars.data import Doc, Query, Run, SyntheticQuery, TrainingExample
from inpars.errors import InparsError

logger = logging.getLogger(__name__)


def pick_negatives(run: Run, queries: list[SyntheticQuery], config: NegativesConfig) -> dict[str, list[str]]:
    """query_id -> negative doc ids, never the query's positive document.

    ``random`` draws uniformly from the top ``depth`` (the papers' choice); ``hardest`` takes the best-ranked.
    Each query gets its own seeded generator, so a query's negatives do not depend on the other queries.
    """
    if config.strategy not in ("random", "hardest"):
        raise InparsError(f"unknown negative strategy '{config.strategy}'; available: random, hardest")
    if config.num_negatives < 1:
        raise InparsError(f"num_negatives must be at least 1, got {config.num_negatives}")
    picked: dict[str, list[str]] = {}
    short = 0
    for query in queries:
        ranked = sorted(run.get(query.query_id, {}).items(), key=lambda item: (-item[1], item[0]))[: config.depth]
        pool = [doc_id for doc_id, _ in ranked if doc_id != query.doc_id]
        if len(pool) < config.num_negatives:
            short += 1
        if config.strategy == "hardest":
            chosen = pool[: config.num_negatives]
        else:
            rng = random.Random(f"{config.seed}:{query.query_id}")
            chosen = rng.sample(pool, min(config.num_negatives, len(pool)))
        picked[query.query_id] = chosen
    if short:
        logger.warning("%d queries had fewer than %d candidate negatives in their top %d", short, config.num_negatives, config.depth)
    return picked


def training_examples(queries: list[SyntheticQuery], negatives: Mapping[str, list[str]], docs: Mapping[str, Doc]) -> list[TrainingExample]:
    """One positive (the source document) and the mined negatives per query."""
    examples = []
    for query in queries:
        if query.doc_id not in docs:
            raise InparsError(f"synthetic query '{query.query_id}' names document '{query.doc_id}', which is not in the corpus; generate and mine from the same dataset")
        examples.append(TrainingExample(query.query_id, query.text, query.doc_id, docs[query.doc_id].full_text, 1))
        for doc_id in negatives.get(query.query_id, []):
            examples.append(TrainingExample(query.query_id, query.text, doc_id, docs[doc_id].full_text, 0))
    return examples


def mine_negatives(queries: list[SyntheticQuery], docs: Mapping[str, Doc], retriever, config: NegativesConfig) -> list[TrainingExample]:
    """Search each synthetic query with an indexed ``retriever`` and build training examples."""
    run = retriever.search({q.query_id: Query(q.query_id, q.text) for q in queries}, top_k=config.depth)
    return training_examples(queries, pick_negatives(run, queries, config), docs)
