"""Few-shot examples drawn from a dataset's own judged queries, for prompts with ``examples_from: dataset``.

The examples come from the train split, else dev, else test (Promptagator's setting: a handful of in-domain
examples). They are drawn once per run with the seed, so every document shares one prompt prefix. Their
query ids are written beside the generated queries (``fewshot_query_ids.json``) and the evaluation leaves
those queries out.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inpars.data import Doc, Qrels, Query
from inpars.errors import InparsError, MissingDependencyError
from inpars.prompt import FewShotExample

logger = logging.getLogger(__name__)

SPLIT_ORDER = ("train", "dev", "test")
FEWSHOT_FILE = "fewshot_query_ids.json"


@dataclass(frozen=True)
class FewShotPool:
    """The judged queries that examples are drawn from."""

    dataset: str
    split: str
    queries: dict[str, Query]
    qrels: Qrels


def load_pool(dataset: str) -> FewShotPool:
    """Queries and judgements of the first split that exists among train, dev and test."""
    from inpars.datasets import BEIR_TEST_IDS, load_dataset

    folder = Path(dataset).expanduser()
    if folder.is_dir():
        from inpars.io import read_beir_queries, read_qrels_tsv

        for split in SPLIT_ORDER:
            path = folder / "qrels" / f"{split}.tsv"
            if path.is_file():
                return FewShotPool(dataset, split, read_beir_queries(folder / "queries.jsonl"), read_qrels_tsv(path))
        raise InparsError(f"{folder / 'qrels'}: no train.tsv, dev.tsv or test.tsv to draw few-shot examples from")
    if dataset.startswith("beir/"):
        base = dataset[len("beir/"):]
        if base not in BEIR_TEST_IDS and base.rsplit("/", 1)[0] in BEIR_TEST_IDS:
            base = base.rsplit("/", 1)[0]
        if base in BEIR_TEST_IDS:
            return _ir_datasets_pool(dataset, base, BEIR_TEST_IDS[base])
    data = load_dataset(dataset)
    return FewShotPool(dataset, "test", data.queries, data.qrels)


def _ir_datasets_pool(dataset: str, base: str, test_id: str) -> FewShotPool:
    try:
        import ir_datasets
    except ImportError as exc:
        raise MissingDependencyError("ir_datasets", "demo") from exc
    candidates = [(f"beir/{base}/train", "train"), (f"beir/{base}/dev", "dev"), (test_id, "test")]
    dataset_id, split = next((c for c in candidates if c[0] in ir_datasets.registry), candidates[-1])
    ds = ir_datasets.load(dataset_id)
    queries = {q.query_id: Query(q.query_id, q.text) for q in ds.queries_iter()}
    qrels: Qrels = {}
    for qrel in ds.qrels_iter():
        qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
    logger.info("few-shot examples for %s come from %s (%s split)", dataset, dataset_id, split)
    return FewShotPool(dataset, split, queries, qrels)


def draw_examples(pool: FewShotPool, docs: Mapping[str, Doc], count: int, seed: int) -> list[FewShotExample]:
    """``count`` judged (query, relevant document) pairs drawn with ``seed``; one pair per query."""
    candidates = []
    for query_id in sorted(pool.qrels):
        query = pool.queries.get(query_id)
        relevant = sorted((doc_id for doc_id, grade in pool.qrels[query_id].items() if grade > 0 and doc_id in docs), key=lambda d: (-pool.qrels[query_id][d], d))
        if query is not None and query.text.strip() and relevant and docs[relevant[0]].full_text.strip():
            candidates.append((query, docs[relevant[0]]))
    if len(candidates) < count:
        raise InparsError(
            f"{pool.dataset} ({pool.split} split) has {len(candidates)} judged queries with a relevant document in the corpus, "
            f"fewer than the {count} few-shot examples asked for; lower generate.num_examples"
        )
    picked = random.Random(seed).sample(candidates, count)
    return [FewShotExample(document=doc.full_text, query=query.text.strip(), query_id=query.query_id, doc_id=doc.doc_id) for query, doc in picked]


def without_fewshot_queries(qrels: Qrels, folder: str | Path) -> Qrels:
    """The judgements minus the queries that ``folder``'s generation used as few-shot examples (if it used any)."""
    from inpars.io import read_fewshot_query_ids

    path = Path(folder) / FEWSHOT_FILE
    if not path.is_file():
        return qrels
    excluded = set(read_fewshot_query_ids(path))
    logger.info("%d few-shot example queries left out of the evaluation", len(excluded & set(qrels)))
    return {query_id: docs for query_id, docs in qrels.items() if query_id not in excluded}


def fewshot_record(pool: FewShotPool, seed: int, examples: list[FewShotExample]) -> dict:
    """What ``fewshot_query_ids.json`` holds."""
    return {
        "dataset": pool.dataset,
        "split": pool.split,
        "seed": seed,
        "query_ids": [e.query_id for e in examples],
        "examples": [{"query_id": e.query_id, "doc_id": e.doc_id, "query": e.query} for e in examples],
    }
