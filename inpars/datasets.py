"""Test collections behind one registry of sources: the embedded faq-construction, BEIR and any other collection
through ir_datasets, and collections on disk.

A dataset name is ``faq-construction``, ``beir/<name>[/<split>]`` or ``irds:<id>`` (any ir_datasets id; both are
downloaded by ir_datasets, so they need a network the first time), or the path of a collection on disk (see
:func:`load_local`): a BEIR folder (``corpus.jsonl``, and optionally ``queries.jsonl`` and ``qrels/<split>.tsv``), a
folder of ``.txt`` and ``.md`` files, or a ``.jsonl``, ``.csv`` or ``.tsv`` file of documents.

A collection need not have queries or judgements: generating, filtering, mining negatives and training need only its
documents, and :meth:`Dataset.parts` says which parts it has. The stages that search, rerank or score its test
queries refuse a collection without them in one line (:func:`require_part`).

Each kind of name is a :class:`DatasetSource`, which claims its names, loads and counts them, gives their few-shot
pool and lists them for ``inpars datasets``. ``load_dataset``, ``dataset_counts``, ``listing`` and
``inpars.generate.fewshot.load_pool`` ask the sources of ``sources`` in the order they were registered and use the
first that claims the name; a name none claims is refused with the closest listed names.

To add a source: write one subclass of ``DatasetSource`` (``claims``, ``load`` and ``listing``; ``counts`` and
``fewshot_pool`` default to the loaded test split) in one module, and register it with one line below:
``sources.register("<kind>", "<module>:<Class>")``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from inpars.checks import is_number
from inpars.data import Dataset, Doc, FewShotPool, Qrels, Query
from inpars.errors import InparsError, InputError, MissingDependencyError, require
from inpars.io import (
    atomic_directory,
    check_output,
    read_beir_corpus,
    read_beir_queries,
    read_delimited_corpus,
    read_jsonl_corpus,
    read_qrels_tsv,
    read_text_folder,
    write_beir_folder,
    write_qrels_tsv,
)
from inpars.registry import Registry, UnknownNameError, did_you_mean, suggest

logger = logging.getLogger(__name__)

# BEIR dataset -> the ir_datasets id of its evaluation split (the split the papers report).
BEIR_TEST_IDS = {
    "arguana": "beir/arguana",
    "climate-fever": "beir/climate-fever",
    "dbpedia-entity": "beir/dbpedia-entity/test",
    "fever": "beir/fever/test",
    "fiqa": "beir/fiqa/test",
    "hotpotqa": "beir/hotpotqa/test",
    "nfcorpus": "beir/nfcorpus/test",
    "nq": "beir/nq",
    "quora": "beir/quora/test",
    "scidocs": "beir/scidocs",
    "scifact": "beir/scifact/test",
    "trec-covid": "beir/trec-covid",
    "webis-touche2020": "beir/webis-touche2020/v2",
    **{
        f"cqadupstack/{forum}": f"beir/cqadupstack/{forum}"
        for forum in (
            "android", "english", "gaming", "gis", "mathematica", "physics", "programmers", "stats", "tex", "unix", "webmasters",
            "wordpress",
        )
    },
}

_BEIR_MORE_SPLITS = {
    "dbpedia-entity": ("dev",), "fever": ("train", "dev"), "fiqa": ("train", "dev"), "hotpotqa": ("train", "dev"),
    "nfcorpus": ("train", "dev"), "quora": ("dev",), "scifact": ("train",), "webis-touche2020": ("v2",),
}
BEIR_SPLITS = {
    name: {"test": test_id, **{split: f"beir/{name}/{split}" for split in _BEIR_MORE_SPLITS.get(name, ())}}
    for name, test_id in BEIR_TEST_IDS.items()
}
"""BEIR dataset -> split -> its ir_datasets id: what ``beir/<name>/<split>`` may name (``test`` is the one scores are
reported on; ``beir/<name>`` alone means it)."""

SPLIT_ORDER = ("train", "dev", "test")
"""The splits few-shot examples are drawn from, in order of preference: the first one a dataset has."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    source: str
    description: str


def load_faq_construction(split: str = "test") -> Dataset:
    """The 503 English answers are documents, the questions are queries; each question's own answer is relevant."""
    if split != "test":
        raise InparsError(f"faq-construction has only a 'test' split, not '{split}'")
    try:
        import zaragoza_construction_faq
    except ImportError as exc:
        raise MissingDependencyError("zaragoza_construction_faq", "demo") from exc
    records = zaragoza_construction_faq.load(lang="en")
    docs = {r["id"]: Doc(doc_id=r["id"], text=r["a"].strip()) for r in records}
    queries = {r["id"]: Query(query_id=r["id"], text=r["q"].strip()) for r in records}
    qrels: Qrels = {r["id"]: {r["id"]: 1} for r in records}
    return Dataset(name="faq-construction", docs=docs, queries=queries, qrels=qrels)


def load_ir_datasets(dataset_id: str, name: str | None = None) -> Dataset:
    """Any ir_datasets collection with documents, and its queries and qrels where it has them (downloads on first use).
    Where it has qrels, only the judged queries are kept."""
    try:
        import ir_datasets
    except ImportError as exc:
        raise MissingDependencyError("ir_datasets", "demo") from exc
    ds = ir_datasets.load(dataset_id)
    if not ds.has_docs():
        raise InparsError(
            f"'{name or dataset_id}': ir_datasets' '{dataset_id}' has no documents; give the id of a collection with documents"
        )
    docs = {}
    queries: dict[str, Query] = {}
    qrels: Qrels = {}
    try:
        for d in ds.docs_iter():
            docs[d.doc_id] = Doc(doc_id=d.doc_id, text=getattr(d, "text", "") or "", title=getattr(d, "title", "") or "")
        if ds.has_queries():
            queries = {q.query_id: Query(query_id=q.query_id, text=q.text) for q in ds.queries_iter()}
        if ds.has_qrels():
            for qrel in ds.qrels_iter():
                qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
    except (OSError, RuntimeError) as exc:  # ir_datasets reports a failed download as either
        raise InparsError(
            f"could not load '{dataset_id}' through ir_datasets ({type(exc).__name__}: {str(exc)[:200]}); it downloads on "
            "first use and needs a network"
        ) from None
    if qrels:
        queries = {qid: q for qid, q in queries.items() if qid in qrels}
    check_corpus_text(docs, dataset_id)
    check_judged_docs(qrels, docs, dataset_id, strict=False)
    return Dataset(name=name or dataset_id, docs=docs, queries=queries, qrels=qrels, origin=_irds_origin(ds, dataset_id))


def _irds_origin(ds, dataset_id: str) -> dict:
    """ir_datasets' version and the id, and the files it keeps for the collection (where it says which)."""
    import importlib.metadata

    origin: dict = {"ir_datasets": importlib.metadata.version("ir_datasets"), "id": dataset_id}
    for role, method in (("docs", "docs_path"), ("queries", "queries_path"), ("qrels", "qrels_path")):
        handler = getattr(ds, f"{role}_handler", None)
        try:
            path = getattr(handler() if handler else ds, method)()
        except Exception as exc:  # noqa: BLE001 - not every handler can name a single file; the version and id still count
            logger.debug("ir_datasets names no %s file for %s (%s)", role, dataset_id, exc)
            continue
        if path and Path(path).is_file():
            origin[role] = Path(path)
    return origin


def load_beir(name: str, split: str | None = None) -> Dataset:
    """``beir/<name>`` through ir_datasets, its test split unless ``split`` says otherwise."""
    if name not in BEIR_TEST_IDS:
        raise InparsError(
            f"unknown BEIR dataset 'beir/{name}'; {suggest(f'beir/{name}', (f'beir/{n}' for n in sorted(BEIR_TEST_IDS)))}"
        )
    label = f"beir/{name}" + (f"/{split}" if split else "")
    return load_ir_datasets(beir_dataset_id(name, split, label), name=label)


def beir_dataset_id(name: str, split: str | None, label: str) -> str:
    """The ir_datasets id of the BEIR dataset ``name``'s ``split`` (None: test); a split it lacks is refused, naming
    ``label`` (the name as the user wrote it) and the splits it has."""
    splits = BEIR_SPLITS[name]
    if split is None:
        return splits["test"]
    if split not in splits:
        shown = f"'{split}'" if split else "'' (the name ends with '/')"
        if len(splits) == 1:
            hint = f"its only split is test: write beir/{name}"
        else:
            hint = f"its splits are {', '.join(sorted(splits))}: write beir/{name}/<split>, or beir/{name} for test"
        raise UnknownNameError(f"unknown dataset '{label}': beir/{name} has no split {shown}; {hint}")
    return splits[split]


def load_beir_folder(folder: str | Path, split: str = "test") -> Dataset:
    """A BEIR folder on disk; only queries that have judgements in the split are kept."""
    folder = Path(folder)
    for required in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / required).is_file():
            raise InputError(
                folder / required, None, "missing from the BEIR folder",
                "a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv",
            )
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        present = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise InputError(qrels_path, None, f"no qrels for split '{split}'", f"splits present: {', '.join(present) or 'none'}")
    docs = read_beir_corpus(folder / "corpus.jsonl")
    check_corpus_text(docs, folder / "corpus.jsonl")
    queries = read_beir_queries(folder / "queries.jsonl")
    qrels = read_qrels_tsv(qrels_path)
    unknown = sorted(set(qrels) - set(queries))
    if unknown:
        raise InputError(
            qrels_path, None, f"{len(unknown)} judged query id(s) missing from queries.jsonl (e.g. '{unknown[0]}')",
            "check that the files belong together",
        )
    queries = {qid: q for qid, q in queries.items() if qid in qrels}
    check_judged_docs(qrels, docs, qrels_path, strict=True)
    origin = {"corpus": folder / "corpus.jsonl", "queries": folder / "queries.jsonl", "qrels": qrels_path}
    return Dataset(name=str(folder), docs=docs, queries=queries, qrels=qrels, origin=origin)


DOCUMENT_FILES = {".jsonl": read_jsonl_corpus, ".csv": read_delimited_corpus, ".tsv": read_delimited_corpus}
"""The files of documents a dataset may be, by suffix (any case), and their readers."""

LOCAL_KINDS = (
    "a BEIR folder (corpus.jsonl; queries.jsonl and qrels/<split>.tsv optional), a folder of .txt or .md files, or a "
    ".jsonl, .csv or .tsv file of documents"
)
"""What a collection on disk may be, as messages name it."""


def load_local(path: str | Path, split: str | None = None) -> Dataset:
    """A collection on disk; only a BEIR folder can have queries and qrels (``split``: the judgements of
    ``qrels/<split>.tsv``; None: ``test``, or none where the folder has no qrels at all).

    - A BEIR folder: ``corpus.jsonl`` (``_id``, ``text``, ``title``); ``queries.jsonl`` and ``qrels/<split>.tsv``
      when it has them (see :func:`load_beir_folder`). Without qrels, its queries, if any, load without judgements.
    - A folder without ``corpus.jsonl``: its ``.txt`` and ``.md`` files (:func:`inpars.io.read_text_folder`).
    - A ``.jsonl`` file (:func:`inpars.io.read_jsonl_corpus`), or a ``.csv`` or ``.tsv`` file with a header row
      (:func:`inpars.io.read_delimited_corpus`): documents alone.

    Every file read is in the dataset's ``origin``, so that a changed file changes its fingerprint.
    """
    path = Path(path)
    if not path.is_dir():
        return _load_document_file(path, split)
    corpus, queries_path, qrels_folder = path / "corpus.jsonl", path / "queries.jsonl", path / "qrels"
    if not corpus.is_file():
        if queries_path.is_file() or qrels_folder.is_dir():  # a BEIR folder that lacks its corpus: say so
            return load_beir_folder(path, split or "test")
        docs, files = read_text_folder(path)
        check_corpus_text(docs, path)
        return Dataset(
            name=str(path), docs=docs, queries={}, qrels={}, origin={f"corpus:{doc_id}": file for doc_id, file in files.items()}
        )
    if split is not None or (qrels_folder.is_dir() and any(qrels_folder.glob("*.tsv"))):
        return load_beir_folder(path, split or "test")
    docs = read_beir_corpus(corpus)
    check_corpus_text(docs, corpus)
    origin: dict = {"corpus": corpus}
    queries: dict[str, Query] = {}
    if queries_path.is_file():
        queries = read_beir_queries(queries_path)
        origin["queries"] = queries_path
    return Dataset(name=str(path), docs=docs, queries=queries, qrels={}, origin=origin)


def _load_document_file(path: Path, split: str | None) -> Dataset:
    reader = DOCUMENT_FILES.get(path.suffix.lower())
    if reader is None:
        raise InputError(path, None, "is not a dataset", f"give {LOCAL_KINDS}")
    if split is not None:
        raise InputError(path, None, f"a file of documents has no splits (split '{split}' asked for)", "leave the split out")
    docs = reader(path)
    check_corpus_text(docs, path)
    return Dataset(name=str(path), docs=docs, queries={}, qrels={}, origin={"corpus": path})


PARTS = {"docs": "documents", "queries": "queries", "qrels": "qrels"}
"""The parts of a collection, as :meth:`Dataset.counts` names them and as messages do."""


def describe_parts(counts: Mapping[str, int | None]) -> str:
    """Which parts a collection has, from its counts (None: unknown): ``documents, queries and qrels``, ``documents
    only``, ``documents and queries, no qrels``."""

    def joined(words: list[str]) -> str:
        return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"

    have = [word for part, word in PARTS.items() if counts.get(part)]
    missing = [word for part, word in PARTS.items() if counts.get(part) == 0]
    unknown = [word for part, word in PARTS.items() if counts.get(part) is None]
    if have == ["documents"] and not unknown:
        return "documents only"
    text = joined(have) or "nothing"
    if missing:
        text += f", no {' or '.join(missing)}"
    return text + (f" ({joined(unknown)} unknown)" if unknown else "")


_NEEDS = {
    "queries": (
        "works on the test queries",
        "give a collection with queries, e.g. a BEIR folder with queries.jsonl (and qrels/test.tsv) beside corpus.jsonl",
    ),
    "qrels": (
        "scores runs against the qrels (relevance judgements)",
        (
            "give a collection with judged queries (a BEIR folder with queries.jsonl and qrels/test.tsv), or give "
            "'inpars evaluate' a qrels file (--qrels FILE)"
        ),
    ),
}


def require_part(dataset: Dataset, part: str, stage: str) -> None:
    """Refuse ``stage`` on a collection without ``part`` (``queries`` or ``qrels``) in one line: what the collection
    has, and what to do; the stages that need only documents are named, as they still run on it."""
    if part not in _NEEDS:
        raise ValueError(f"part must be one of {', '.join(_NEEDS)}, not {part!r}")
    counts = dataset.counts()
    if counts[part]:
        return
    does, fix = _NEEDS[part]
    sizes = ", ".join(f"{counts[p]:,} {PARTS[p]}" for p in PARTS if counts[p])
    raise InparsError(
        f"{stage} {does}, and '{dataset.name}' has {describe_parts(counts)} ({sizes or 'empty'}): {fix}; generate, "
        "filter, negatives and train need only documents"
    )


def content_fingerprint(dataset: Dataset) -> str:
    """What a run's stages depend on in a collection: the bytes it was read from, not its name or counts.

    Files (a local folder's corpus, queries and split qrels) count by their sha256, remembered by path, size and
    modification time so that a large corpus is hashed once; ir_datasets collections by ir_datasets' version and id
    (it checks its downloads against its own hashes) and the hashes of the files it keeps; anything else (an embedded
    or in-memory collection) by a hash of its records.
    """
    import hashlib
    import json

    from inpars.io import cached_sha256

    parts: dict[str, str] = {}
    for role, value in sorted(dataset.origin.items()):
        parts[role] = cached_sha256(value) if isinstance(value, Path) else str(value)
    if not dataset.origin:
        digest = hashlib.sha256()
        for doc in dataset.docs.values():
            digest.update(json.dumps(["d", doc.doc_id, doc.title, doc.text], ensure_ascii=False).encode())
        for query in dataset.queries.values():
            digest.update(json.dumps(["q", query.query_id, query.text], ensure_ascii=False).encode())
        for query_id, judged in dataset.qrels.items():
            digest.update(json.dumps(["j", query_id, judged], ensure_ascii=False).encode())
        parts["records"] = digest.hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


_WORD = re.compile(r"[^\W_]")
"""A letter or a digit, in any script: what a document needs for a retriever to index it or a model to read it."""


def check_corpus_text(docs: Mapping[str, Doc], source: object) -> None:
    """Refuse a corpus in which no document has a letter or digit in its title or text (all empty, all whitespace or
    punctuation): there is nothing to index or generate from, and the indexers fail deep inside on it. A corpus where
    only some documents are empty loads (a retriever skips or never ranks them)."""
    for doc in docs.values():
        if _WORD.search(doc.text) or _WORD.search(doc.title):
            return
    blank = sum(1 for doc in docs.values() if not doc.text.strip() and not doc.title.strip())
    what = (
        "all are empty or whitespace" if blank == len(docs)
        else f"{blank} are empty or whitespace, the others punctuation" if blank
        else "all are punctuation or symbols"
    )
    raise InputError(
        source, None, f"none of the {len(docs)} documents has a letter or digit in its title or text ({what})",
        "there is nothing to index or generate queries from: check that the corpus fills 'text' (or 'title')",
    )


MAX_UNKNOWN_JUDGED = 0.1
"""The share of judgements naming documents absent from the corpus above which a local dataset is refused."""


def check_judged_docs(qrels: Qrels, docs: dict[str, Doc], source: object, strict: bool) -> int:
    """Warn about judgements of documents the corpus lacks (no run can retrieve them); refuse too many when ``strict``.

    Returns the number of such judgements.
    """
    judged = [(qid, doc_id) for qid, judgements in qrels.items() for doc_id in judgements]
    unknown = sorted({doc_id for _, doc_id in judged if doc_id not in docs})
    count = sum(1 for _, doc_id in judged if doc_id not in docs)
    if not count:
        return 0
    first = ", ".join(repr(d) for d in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
    problem = f"{count} of {len(judged)} judgements name documents that are not in the corpus ({len(unknown)} ids: {first})"
    if strict and count > MAX_UNKNOWN_JUDGED * len(judged):
        raise InputError(
            source, None, problem,
            f"more than {MAX_UNKNOWN_JUDGED:.0%} unreachable: check that the qrels and the corpus belong together",
        )
    logger.warning("%s: %s; no run can retrieve them, so they lower every score", source, problem)
    return count


class DatasetSource:
    """One kind of dataset name; the methods other than ``claims`` and ``listing`` get only names it claims."""

    label = ""
    """What ``inpars datasets NAME`` says a name it claims but does not list comes from (empty: the registered kind)."""

    def claims(self, name: str) -> bool:
        raise NotImplementedError

    def load(self, name: str, split: str | None) -> Dataset:
        """The dataset ``name``, its ``split`` (None: the source's default, the one scores are reported on)."""
        raise NotImplementedError

    def listing(self) -> list[DatasetInfo]:
        """The rows of ``inpars datasets``; their names are the suggestions for a mistyped name."""
        return []

    def counts(self, name: str) -> dict[str, int | None]:
        """Documents, queries and judgements, without downloading anything when the source can (None: unknown)."""
        return self.load(name, None).counts()

    def fewshot_pool(self, name: str) -> FewShotPool:
        """The judged queries few-shot examples are drawn from."""
        data = self.load(name, None)
        return FewShotPool(name, "test", data.queries, data.qrels)


class EmbeddedSource(DatasetSource):
    """faq-construction, shipped in the zaragoza-construction-faq package (offline)."""

    def claims(self, name: str) -> bool:
        return name == "faq-construction"

    def load(self, name: str, split: str | None) -> Dataset:
        return load_faq_construction(split or "test")

    def listing(self) -> list[DatasetInfo]:
        return [
            DatasetInfo(
                "faq-construction", "embedded (zaragoza-construction-faq package)",
                "503 construction-law answers and their questions; offline",
            )
        ]


class BeirSource(DatasetSource):
    """``beir/<name>[/<split>]`` through ir_datasets; a split in the name wins over the ``split`` argument."""

    @staticmethod
    def parse(name: str) -> tuple[str, str | None] | None:
        """``(BEIR name, split or None)``, or None when ``name`` is no known BEIR dataset; a known dataset followed by a
        split it lacks (``beir/scifact/bogus``, ``beir/scifact/test/x``) is refused with the splits it has."""
        found = BeirSource._known(name)
        if found is not None and found[1] is not None:
            beir_dataset_id(*found, name)
        return found

    @staticmethod
    def _known(name: str) -> tuple[str, str | None] | None:
        """``(BEIR name, whatever follows it or None)`` for ``beir/<a listed BEIR name>[/<anything>]``."""
        if not name.startswith("beir/"):
            return None
        rest = name[len("beir/"):]
        if rest in BEIR_TEST_IDS:
            return rest, None
        for base in BEIR_TEST_IDS:  # no BEIR name is another one followed by '/', so at most one matches
            if rest.startswith(f"{base}/"):
                return base, rest[len(base) + 1:]
        return None

    def claims(self, name: str) -> bool:
        return self._known(name) is not None

    def load(self, name: str, split: str | None) -> Dataset:
        base, named = self.parse(name)
        return load_beir(base, split if named is None else named)

    def listing(self) -> list[DatasetInfo]:
        return [DatasetInfo(f"beir/{n}", f"ir_datasets '{i}'", "BEIR; downloads on first use") for n, i in BEIR_TEST_IDS.items()]

    def counts(self, name: str) -> dict[str, int | None]:
        """From ir_datasets' metadata, without downloading."""
        base, split = self.parse(name)
        return irds_counts(beir_dataset_id(base, split, name))

    def fewshot_pool(self, name: str) -> FewShotPool:
        """The train split where BEIR has one, else dev, else the test split (whatever split ``name`` names)."""
        try:
            import ir_datasets
        except ImportError as exc:
            raise MissingDependencyError("ir_datasets", "demo") from exc
        base, _ = self.parse(name)
        candidates = [(f"beir/{base}/train", "train"), (f"beir/{base}/dev", "dev"), (BEIR_TEST_IDS[base], "test")]
        dataset_id, split = next((c for c in candidates if c[0] in ir_datasets.registry), candidates[-1])
        ds = ir_datasets.load(dataset_id)
        queries = {q.query_id: Query(q.query_id, q.text) for q in ds.queries_iter()}
        qrels: Qrels = {}
        for qrel in ds.qrels_iter():
            qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
        logger.info("few-shot examples for %s come from %s (%s split)", name, dataset_id, split)
        return FewShotPool(name, split, queries, qrels)


class FolderSource(DatasetSource):
    """A collection on disk (see :func:`load_local`); it also claims any name written as a path (``./``, ``/``, ``~``)
    or ending in the suffix of a file of documents, to say when it is missing."""

    label = "on disk"

    def claims(self, name: str) -> bool:
        path = Path(name).expanduser()
        return path.is_dir() or name.startswith((".", "/", "~")) or path.suffix.lower() in DOCUMENT_FILES

    @staticmethod
    def path(name: str) -> Path:
        """The folder or file ``name`` names; a missing one is refused."""
        path = Path(name).expanduser()
        if not path.exists():
            missing = "file of documents not found" if path.suffix.lower() in DOCUMENT_FILES else "dataset folder not found"
            raise InputError(path, None, missing, f"give {LOCAL_KINDS}")
        return path

    @staticmethod
    def folder(name: str) -> Path:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise InputError(
                folder, None, "is a file, not a dataset folder" if folder.exists() else "dataset folder not found",
                "give a BEIR folder with corpus.jsonl, queries.jsonl and qrels/",
            )
        return folder

    def load(self, name: str, split: str | None) -> Dataset:
        return load_local(self.path(name), split)

    def fewshot_pool(self, name: str) -> FewShotPool:
        """Every query of queries.jsonl, and the judgements of the first of train, dev and test that the folder has."""
        path = self.path(name)
        if path.is_file():
            raise InparsError(
                f"{path}: a file of documents has no judged queries to draw few-shot examples from; use a prompt whose "
                "examples are written in it (e.g. --prompt inpars), or a BEIR folder with qrels/train.tsv"
            )
        folder = self.folder(name)
        for split in SPLIT_ORDER:
            path = folder / "qrels" / f"{split}.tsv"
            if path.is_file():
                return FewShotPool(name, split, read_beir_queries(folder / "queries.jsonl"), read_qrels_tsv(path))
        raise InparsError(f"{folder / 'qrels'}: no train.tsv, dev.tsv or test.tsv to draw few-shot examples from")


class IrdsSource(DatasetSource):
    """``irds:<id>``: any collection ir_datasets knows (its catalogue: https://ir-datasets.com), downloaded by
    ir_datasets on first use; the id names the split (``irds:beir/scifact/train``). Counts come from ir_datasets'
    metadata, without a download."""

    PREFIX = "irds:"
    label = "ir_datasets; downloads on first use"

    def claims(self, name: str) -> bool:
        return name.startswith(self.PREFIX)

    @classmethod
    def dataset_id(cls, name: str) -> str:
        """The ir_datasets id ``name`` gives; an id ir_datasets does not know (it knows its ids offline) is refused."""
        ir_datasets = require("ir_datasets", "demo")
        dataset_id = name[len(cls.PREFIX):]
        if not dataset_id.strip():
            raise UnknownNameError(f"'{name}' names no ir_datasets id; write irds:<id>, e.g. irds:beir/scifact/test")
        if dataset_id not in ir_datasets.registry:
            close = did_you_mean(name, (f"{cls.PREFIX}{known}" for known in ir_datasets.registry))
            raise UnknownNameError(
                f"unknown dataset '{name}': ir_datasets has no id '{dataset_id}'; {close + ' ' if close else ''}"
                "its ids are listed at https://ir-datasets.com"
            )
        return dataset_id

    def load(self, name: str, split: str | None) -> Dataset:
        dataset_id = self.dataset_id(name)
        if split is not None:
            raise InparsError(
                f"'{name}': an ir_datasets id names its split itself (e.g. irds:beir/scifact/train); give the split's id "
                f"instead of the split '{split}'"
            )
        return load_ir_datasets(dataset_id, name=name)

    def counts(self, name: str) -> dict[str, int | None]:
        """From ir_datasets' metadata, without downloading."""
        return irds_counts(self.dataset_id(name))

    def fewshot_pool(self, name: str) -> FewShotPool:
        """The id's own judged queries (its documents are not loaded for it)."""
        ir_datasets = require("ir_datasets", "demo")
        ds = ir_datasets.load(self.dataset_id(name))
        if not (ds.has_queries() and ds.has_qrels()):
            raise InparsError(
                f"'{name}' has no judged queries to draw few-shot examples from; use a prompt whose examples are written "
                "in it (e.g. --prompt inpars), or name an ir_datasets id with queries and qrels"
            )
        queries = {q.query_id: Query(q.query_id, q.text) for q in ds.queries_iter()}
        qrels: Qrels = {}
        for qrel in ds.qrels_iter():
            qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
        return FewShotPool(name, "test", queries, qrels)


def irds_counts(dataset_id: str) -> dict[str, int | None]:
    """Documents, queries and judgements of an ir_datasets id from the metadata ir_datasets ships, without downloading:
    0 for a part the id lacks, None for a count the metadata does not record."""
    ir_datasets = require("ir_datasets", "demo")
    ds = ir_datasets.load(dataset_id)
    counts: dict[str, int | None] = {}
    for part in PARTS:
        if not ds.has(part):
            counts[part] = 0
            continue
        try:
            counts[part] = getattr(ds, f"{part}_metadata")().get("count")
        except Exception as exc:  # noqa: BLE001 - metadata may be absent for some datasets; the count is then unknown
            logger.debug("no %s count for %s: %s", part, dataset_id, exc)
            counts[part] = None
    return counts


# The order decides which source claims a name: a folder on disk wins over a registered name.
sources = Registry("dataset source")
sources.register("folder", "inpars.datasets:FolderSource")
sources.register("embedded", "inpars.datasets:EmbeddedSource")
sources.register("beir", "inpars.datasets:BeirSource")
sources.register("irds", "inpars.datasets:IrdsSource")


def listing() -> list[DatasetInfo]:
    """The datasets ``inpars datasets`` lists: every source's rows, in the sources' order."""
    return [info for kind in sources for info in sources.get(kind)().listing()]


def check_dataset_name(name: str) -> None:
    """Refuse an empty or blank dataset name, which pathlib would take for the current folder."""
    if not name.strip():
        raise InparsError(
            f"the dataset name is {'empty' if not name else 'blank'}; give faq-construction, beir/<name>[/<split>] or the "
            "path of a BEIR folder or of your documents (a folder of .txt or .md files, a .jsonl, .csv or .tsv file), or "
            "irds:<ir_datasets id> (see 'inpars datasets')"
        )


def source_for(name: str) -> DatasetSource:
    """The first registered source that claims ``name``; a name none claims is refused with the closest listed names."""
    check_dataset_name(name)
    for kind in sources:
        source = sources.get(kind)()
        if source.claims(name):
            return source
    looks_like_path = ("/" in name or os.sep in name) and not name.startswith("beir/")
    folder = f"; and there is no folder '{name}' here" if looks_like_path else ""
    raise UnknownNameError(f"unknown dataset '{name}'; {suggest(name, sorted(info.name for info in listing()))}{folder}")


def dataset_info(name: str) -> DatasetInfo:
    """The row of ``inpars datasets NAME``: the listed row of ``name``, else its source's label; an unknown name is
    refused as :func:`source_for` refuses it."""
    source = source_for(name)
    listed = {info.name: info for info in source.listing()}
    if name in listed:
        return listed[name]
    kind = next(kind for kind in sources if type(source) is sources.get(kind))
    return DatasetInfo(name, source.label or kind, "")


def load_dataset(name: str, split: str | None = None) -> Dataset:
    """Load a dataset by listed name, ``beir/<name>/<split>``, ``irds:<id>``, or the path of a collection on disk."""
    return source_for(name).load(name, split)


def dataset_counts(name: str) -> dict[str, int | None]:
    """Counts without downloading: embedded and local data is counted, BEIR and irds: counts come from ir_datasets'
    metadata."""
    return source_for(name).counts(name)


SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What a split of an exported folder may be called: its judgements go to ``qrels/<name>.tsv``."""


def check_splits(splits: Mapping[str, float]) -> None:
    """Each split has a name that can name its qrels file and a positive, finite share."""
    if not splits:
        raise InparsError("give at least one split and its share, e.g. test=1 or train=0.5 dev=0.25 test=0.25")
    for name, share in splits.items():
        if not isinstance(name, str) or not SPLIT_NAME.fullmatch(name):
            raise InparsError(
                f"split name {name!r} cannot name the file qrels/<name>.tsv; use letters, digits, '-', '_' and '.', "
                "e.g. train, dev, test"
            )
        if not is_number(share) or share <= 0:
            raise InparsError(
                f"split '{name}' has the share {share!r}; give each split a positive share, e.g. train=0.5 dev=0.25 test=0.25"
            )


def queries_needed(splits: Mapping[str, float]) -> int:
    """The fewest judged queries that give each split at least one whole query's worth of its share."""
    shares = [Fraction(share) for share in splits.values()]
    return math.ceil(sum(shares) / min(shares))


def split_queries(query_ids: list[str], splits: Mapping[str, float]) -> dict[str, list[str]]:
    """``query_ids`` cut, in order, into consecutive runs whose sizes follow the shares of ``splits``.

    Each cut is the cumulative share rounded half up (in exact arithmetic), so sizes differ from the shares by less
    than one query and a split whose share is worth one query or more is never empty.
    """
    total = sum(Fraction(share) for share in splits.values())
    cuts, start, cumulative = {}, 0, Fraction(0)
    for name, share in splits.items():
        cumulative += Fraction(share)
        end = math.floor(len(query_ids) * cumulative / total + Fraction(1, 2))
        cuts[name] = query_ids[start:end]
        start = end
    return cuts


def check_export_target(folder: str | Path, force: bool = False, source: str | None = None) -> Path:
    """Refuse to write an exported dataset over a folder that holds anything, unless ``force``; even then, refuse a
    folder that holds the current working directory or ``source`` (the folder the dataset was read from)."""
    folder = check_output(folder, folder=True)
    if not folder.is_dir():
        return folder
    entries = sorted(entry.name for entry in folder.iterdir())
    if not entries:
        return folder
    if not force:
        raise InputError(
            folder, None, f"is not empty (it holds {len(entries)} {'entry' if len(entries) == 1 else 'entries'}, "
            f"e.g. '{entries[0]}')",
            "give a new or empty folder, or --force to replace it",
        )
    target = folder.resolve()
    spared = {"the current working folder": Path.cwd(), "the dataset being exported": Path(source) if source else None}
    for what, path in spared.items():
        if path is not None and path.exists() and (path.resolve() == target or target in path.resolve().parents):
            raise InputError(folder, None, f"holds {what}, which --force would delete", "export to another folder")
    return folder


@contextlib.contextmanager
def replacing_directory(folder: Path) -> Iterator[Path]:
    """A new folder, filled beside ``folder``, that takes its place when the block succeeds; on failure ``folder``
    stays as it was.

    The old folder is renamed aside, the new one renamed in and the old one deleted; should the second rename fail,
    the old folder is renamed back. Readers see the old content or the new, never a mixture (for the instant between
    the two renames, no folder).
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        staging.chmod(stat.S_IMODE(folder.stat().st_mode))
        yield staging
        old = staging.with_suffix(".old")
        os.rename(folder, old)
        try:
            os.rename(staging, folder)
        except BaseException:
            os.rename(old, folder)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if old.exists():
        logger.warning("%s is in place; its old content, moved to %s, could not be deleted", folder, old)


def export_beir(
    dataset: Dataset, folder: str | Path, splits: Mapping[str, float], max_docs: int | None = None, seed: int = 0,
    force: bool = False,
) -> dict[str, int]:
    """Write ``dataset`` as a BEIR folder whose judged queries are divided among ``splits`` (name -> share).

    With ``max_docs`` the folder is a miniature: queries are taken in a seeded order while all of their relevant
    documents still fit, so every kept judgement points into the kept corpus. A folder that holds anything is refused
    unless ``force``, which replaces it whole once the new one is written; a split that would get no query is refused
    with the number of queries (or documents) it needs. Returns the counts written.
    """
    check_splits(splits)
    if max_docs is not None and (not isinstance(max_docs, int) or isinstance(max_docs, bool) or max_docs < 1):
        raise InparsError(f"max_docs must be a whole number of at least 1, not {max_docs!r}")
    source = dataset.name if Path(dataset.name).is_dir() else None
    folder = check_export_target(folder, force, source)
    rng = random.Random(seed)
    order = sorted(dataset.qrels)
    rng.shuffle(order)
    relevant = {
        query_id: {doc_id for doc_id in dataset.qrels[query_id] if doc_id in dataset.docs}
        for query_id in order if query_id in dataset.queries
    }
    usable = [query_id for query_id in order if relevant.get(query_id)]
    kept_docs: set[str] = set()
    kept_queries: list[str] = []
    for query_id in usable:
        if max_docs is not None and len(kept_docs | relevant[query_id]) > max_docs:
            continue
        kept_docs |= relevant[query_id]
        kept_queries.append(query_id)
    if max_docs is None:
        kept_docs = set(dataset.docs)
    needed = queries_needed(splits)
    if len(kept_queries) < needed:
        smallest = min(splits, key=splits.get)
        if len(splits) == 1:
            why, fix = "an export needs at least one", "check that the qrels judge documents of the corpus"
        else:
            share = splits[smallest] / sum(splits.values())
            why = f"the {len(splits)} splits need at least {needed}, so that '{smallest}' (share {share:.3g}) gets one"
            fix = f"use fewer splits or give '{smallest}' a larger share"
        if len(usable) < needed:
            raise InparsError(
                f"{dataset.name}: {len(usable)} judged queries have a relevant document in the corpus; {why}: {fix}"
            )
        docs_needed = len(set().union(*(relevant[query_id] for query_id in usable[:needed])))
        raise InparsError(
            f"{dataset.name}: {len(kept_queries)} judged queries fit in max_docs={max_docs} documents; {why}: raise "
            f"max_docs (--max-docs) to {docs_needed} or more"
        )
    cuts = split_queries(kept_queries, splits)
    counts = {"docs": len(kept_docs), "queries": len(kept_queries)}
    with replacing_directory(folder) if folder.is_dir() and force else atomic_directory(folder) as staging:
        docs = [dataset.docs[doc_id] for doc_id in dataset.docs if doc_id in kept_docs]
        queries = [dataset.queries[query_id] for query_id in sorted(kept_queries)]
        first, *rest = cuts
        write_beir_folder(staging, docs, queries, {q: dict(dataset.qrels[q]) for q in cuts[first]}, split=first)
        for name in rest:
            write_qrels_tsv(staging / "qrels" / f"{name}.tsv", {q: dict(dataset.qrels[q]) for q in cuts[name]})
    counts.update({f"qrels/{name}": sum(len(dataset.qrels[q]) for q in ids) for name, ids in cuts.items()})
    return counts
