"""Few-shot examples for prompts with ``examples_from: dataset``, from one of two sources (``generate.fewshot_source``).

``dataset``: the dataset's own judged queries, from the train split, else dev, else test (Promptagator's setting:
a handful of in-domain examples); works for any dataset. ``published``: the per-corpus file of the
``inpars/fewshot-examples`` dataset on the Hugging Face hub (``data/<corpus>.json``, one JSON object a line with
``query_id``, ``doc_id``, ``query`` and ``document``), which the reference code samples from; it is downloaded once
at the revision the config pins, into the inpars cache, and checked against the config's sha256.

Either way the examples are drawn once per run with the seed. With ``generate.fewshot_shuffle`` every document
then sees them in its own order (a shuffle seeded by the seed and the document id), as the reference reorders
them for every document; otherwise every document shares one prompt prefix. The examples' query ids are written
beside the generated queries (``fewshot_query_ids.json``) and the evaluation leaves those queries out.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from inpars.data import Doc, FewShotPool, Qrels
from inpars.errors import InparsError, InputError
from inpars.prompt import FewShotExample

logger = logging.getLogger(__name__)

FEWSHOT_FILE = "fewshot_query_ids.json"
PUBLISHED_REPO = "inpars/fewshot-examples"
PUBLISHED_URL = "https://huggingface.co/datasets/{repo}/resolve/{revision}/data/{corpus}.json"
PUBLISHED_FIELDS = ("query_id", "doc_id", "query", "document")


def load_pool(dataset: str) -> FewShotPool:
    """The judged queries of ``dataset`` that examples are drawn from, as its source gives them (train, else dev, else
    test, where the source has splits)."""
    from inpars.datasets import source_for

    return source_for(dataset).fewshot_pool(dataset)


def draw_examples(pool: FewShotPool, docs: Mapping[str, Doc], count: int, seed: int) -> list[FewShotExample]:
    """``count`` judged (query, relevant document) pairs drawn with ``seed``; one pair per query."""
    candidates = []
    for query_id in sorted(pool.qrels):
        query = pool.queries.get(query_id)
        relevant = sorted(
            (doc_id for doc_id, grade in pool.qrels[query_id].items() if grade > 0 and doc_id in docs),
            key=lambda d: (-pool.qrels[query_id][d], d),
        )
        if query is not None and query.text.strip() and relevant and docs[relevant[0]].full_text.strip():
            candidates.append((query, docs[relevant[0]]))
    if len(candidates) < count:
        raise InparsError(
            f"{pool.dataset} ({pool.split} split) has {len(candidates)} judged queries with a relevant document in the corpus, "
            f"fewer than the {count} few-shot examples asked for; lower generate.num_examples"
        )
    picked = random.Random(seed).sample(candidates, count)
    return [
        FewShotExample(document=doc.full_text, query=query.text.strip(), query_id=query.query_id, doc_id=doc.doc_id)
        for query, doc in picked
    ]


def without_fewshot_queries(qrels: Qrels, folder: str | Path) -> Qrels:
    """The judgements minus the queries that ``folder``'s generation used as few-shot examples (if it used any)."""
    from inpars.io import read_fewshot_query_ids

    path = Path(folder) / FEWSHOT_FILE
    if not path.is_file():
        return qrels
    excluded = set(read_fewshot_query_ids(path))
    logger.info("%d few-shot example queries left out of the evaluation", len(excluded & set(qrels)))
    return {query_id: docs for query_id, docs in qrels.items() if query_id not in excluded}


def fewshot_record(pool: FewShotPool, seed: int, examples: list[FewShotExample], shuffle: bool = False) -> dict:
    """What ``fewshot_query_ids.json`` holds for examples drawn from the dataset's judged queries."""
    return {
        "dataset": pool.dataset,
        "source": "dataset",
        "split": pool.split,
        "seed": seed,
        "shuffle_per_document": shuffle,
        "query_ids": [e.query_id for e in examples],
        "examples": [{"query_id": e.query_id, "doc_id": e.doc_id, "query": e.query} for e in examples],
    }


def example_order(examples: Sequence[FewShotExample], seed: int, doc_id: str) -> tuple[FewShotExample, ...]:
    """The examples in ``doc_id``'s own order: a shuffle seeded by the run's seed and the document id, so it is the
    same on every run and every machine and does not depend on which documents are sampled or how they are batched."""
    from inpars.generate.base import request_seed

    order = list(examples)
    random.Random(request_seed(seed, f"fewshot-order:{doc_id}")).shuffle(order)
    return tuple(order)


# ---------------------------------------------------------------------------------------------- published examples


@dataclass(frozen=True)
class PublishedExamples:
    """The rows of one corpus' file of ``inpars/fewshot-examples``, and what is known of the file."""

    corpus: str
    revision: str
    url: str
    path: Path
    sha256: str
    verified: bool
    """True when the file's sha256 was checked against ``generate.fewshot_sha256``."""
    commit: str | None
    """The full commit the hub resolved ``revision`` to, when the file was downloaded by this run."""
    rows: tuple[FewShotExample, ...]


def published_corpus(dataset: str | None, corpus: str | None) -> str:
    """The file's name in ``inpars/fewshot-examples``: ``generate.fewshot_corpus``, else the dataset's BEIR name."""
    if corpus:
        return corpus
    if dataset and dataset.startswith("beir/") and len(dataset) > len("beir/"):
        return dataset[len("beir/"):]
    raise InparsError(
        f"generate.fewshot_source is published, but dataset '{dataset}' has no BEIR name to find its file by; "
        f"set generate.fewshot_corpus to the file's name in {PUBLISHED_REPO} (data/<name>.json), or use "
        "generate.fewshot_source=dataset"
    )


def published_examples_path(corpus: str, revision: str) -> Path:
    """Where the file of ``corpus`` at ``revision`` is kept (and where to put it by hand when offline)."""
    from inpars.models import cache_dir

    return cache_dir() / "fewshot-examples" / revision / f"{corpus}.json"


def _check_sha256(data: bytes, where: str, expected: str | None) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and digest != expected.lower():
        raise InparsError(
            f"{where}: sha256 {digest} differs from the pinned {expected.lower()} (generate.fewshot_sha256); "
            "delete the file and retry, or pin the hash of the file you mean to use"
        )
    return digest


def fetch_published_examples(corpus: str, revision: str, sha256: str | None) -> tuple[Path, str, str | None]:
    """The file of ``corpus`` (downloaded once into the inpars cache): its path, its sha256 and the resolved commit."""
    from inpars.io import download

    target = published_examples_path(corpus, revision)
    url = PUBLISHED_URL.format(repo=PUBLISHED_REPO, revision=revision, corpus=corpus)
    if target.is_file():
        return target, _check_sha256(target.read_bytes(), str(target), sha256), None
    digests: list[str] = []
    headers = download(
        url,
        target,
        "the published few-shot examples",
        "use generate.fewshot_source=dataset",
        lambda data: digests.append(_check_sha256(data, url, sha256)),
        not_found=(
            f"{PUBLISHED_REPO} has no data/{corpus}.json at revision {revision}, or the hub does not know that revision; set "
            "generate.fewshot_corpus to the file's name or generate.fewshot_revision to a full commit id, or use "
            "generate.fewshot_source=dataset"
        ),
    )
    commit = next((v for k, v in headers.items() if k.lower() == "x-repo-commit"), None)
    digest = digests[0]
    return target, digest, commit


def load_published_examples(corpus: str, revision: str, sha256: str | None) -> PublishedExamples:
    """The examples of ``corpus``'s file, in file order; the file is checked against ``sha256`` when one is pinned."""
    from inpars.io import iter_jsonl

    path, digest, commit = fetch_published_examples(corpus, revision, sha256)
    url = PUBLISHED_URL.format(repo=PUBLISHED_REPO, revision=revision, corpus=corpus)
    if sha256 is None:
        logger.warning(
            "%s: sha256 %s is not pinned (generate.fewshot_sha256 is unset), so the file is used unverified; "
            "pin it with --set generate.fewshot_sha256=%s", path, digest, digest,
        )
    if commit:
        logger.info("%s at revision %s is commit %s", PUBLISHED_REPO, revision, commit)
    rows = []
    for lineno, obj in iter_jsonl(path, required=PUBLISHED_FIELDS):
        query, document = obj["query"], obj["document"]
        if not isinstance(query, str) or not isinstance(document, str) or not query.strip() or not document.strip():
            raise InputError(
                path, lineno, "'query' and 'document' should be non-empty texts", "delete the file and download it again"
            )
        rows.append(FewShotExample(document=document, query=query, query_id=str(obj["query_id"]), doc_id=str(obj["doc_id"])))
    return PublishedExamples(corpus, revision, url, path, digest, sha256 is not None, commit, tuple(rows))


def draw_published(published: PublishedExamples, count: int, seed: int) -> list[FewShotExample]:
    """``count`` rows drawn with ``seed``, as the reference draws them once per run (``random.sample`` over the rows
    in file order; after its ``set_seed(seed)`` this is the same draw, if nothing else drew from Python's random first)."""
    if len(published.rows) < count:
        raise InparsError(
            f"{published.path} holds {len(published.rows)} examples, fewer than the {count} few-shot examples asked for; lower "
            "generate.num_examples"
        )
    return random.Random(seed).sample(list(published.rows), count)


def published_record(
    dataset: str | None, published: PublishedExamples, seed: int, shuffle: bool, examples: list[FewShotExample]
) -> dict:
    """What ``fewshot_query_ids.json`` holds for examples from the published file."""
    return {
        "dataset": dataset,
        "source": "published",
        "split": None,
        "repo": PUBLISHED_REPO,
        "corpus": published.corpus,
        "revision": published.revision,
        "commit": published.commit,
        "url": published.url,
        "sha256": published.sha256,
        "sha256_verified": published.verified,
        "seed": seed,
        "shuffle_per_document": shuffle,
        "query_ids": [e.query_id for e in examples],
        "examples": [{"query_id": e.query_id, "doc_id": e.doc_id, "query": e.query} for e in examples],
    }
