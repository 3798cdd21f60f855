"""Test collections behind one registry of sources: the embedded faq-construction, BEIR through ir_datasets, local BEIR folders.

A dataset name is ``faq-construction``, ``beir/<name>[/<split>]`` (downloaded by ir_datasets, so it needs a
network the first time) or the path of a local BEIR folder (``corpus.jsonl``, ``queries.jsonl``,
``qrels/<split>.tsv``).

Each kind of name is a :class:`DatasetSource`, which claims its names, loads and counts them, gives their few-shot
pool and lists them for ``inpars datasets``. ``load_dataset``, ``dataset_counts``, ``listing`` and
``inpars.generate.fewshot.load_pool`` ask the sources of ``sources`` in the order they were registered and use the
first that claims the name; a name none claims is refused with the closest listed names.

To add a source: write one subclass of ``DatasetSource`` (``claims``, ``load`` and ``listing``; ``counts`` and
``fewshot_pool`` default to the loaded test split) in one module, and register it with one line below:
``sources.register("<kind>", "<module>:<Class>")``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inpars.data import Dataset, Doc, FewShotPool, Qrels, Query
from inpars.errors import InparsError, InputError, MissingDependencyError
from inpars.io import atomic_directory, read_beir_corpus, read_beir_queries, read_qrels_tsv, write_beir_folder, write_qrels_tsv
from inpars.registry import Registry, UnknownNameError, suggest

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
    """Any ir_datasets collection with docs, queries and qrels (downloads on first use)."""
    try:
        import ir_datasets
    except ImportError as exc:
        raise MissingDependencyError("ir_datasets", "demo") from exc
    ds = ir_datasets.load(dataset_id)
    docs = {}
    qrels: Qrels = {}
    try:
        for d in ds.docs_iter():
            docs[d.doc_id] = Doc(doc_id=d.doc_id, text=getattr(d, "text", "") or "", title=getattr(d, "title", "") or "")
        queries = {q.query_id: Query(query_id=q.query_id, text=q.text) for q in ds.queries_iter()}
        for qrel in ds.qrels_iter():
            qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
    except (OSError, RuntimeError) as exc:  # ir_datasets reports a failed download as either
        raise InparsError(
            f"could not load '{dataset_id}' through ir_datasets ({type(exc).__name__}: {str(exc)[:200]}); it downloads on "
            "first use and needs a network"
        ) from None
    queries = {qid: q for qid, q in queries.items() if qid in qrels}
    check_judged_docs(qrels, docs, dataset_id, strict=False)
    return Dataset(name=name or dataset_id, docs=docs, queries=queries, qrels=qrels)


def load_beir(name: str, split: str | None = None) -> Dataset:
    """``beir/<name>`` through ir_datasets, its test split unless ``split`` says otherwise."""
    if name not in BEIR_TEST_IDS:
        raise InparsError(
            f"unknown BEIR dataset 'beir/{name}'; {suggest(f'beir/{name}', (f'beir/{n}' for n in sorted(BEIR_TEST_IDS)))}"
        )
    dataset_id = BEIR_TEST_IDS[name] if split is None else f"beir/{name}/{split}"
    return load_ir_datasets(dataset_id, name=f"beir/{name}" + (f"/{split}" if split else ""))


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
    return Dataset(name=str(folder), docs=docs, queries=queries, qrels=qrels)


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
        """``(BEIR name, split or None)``, or None when ``name`` is no known BEIR dataset."""
        if not name.startswith("beir/"):
            return None
        rest = name[len("beir/"):]
        if rest in BEIR_TEST_IDS:
            return rest, None
        base, _, split = rest.rpartition("/")
        return (base, split) if base in BEIR_TEST_IDS else None

    def claims(self, name: str) -> bool:
        return self.parse(name) is not None

    def load(self, name: str, split: str | None) -> Dataset:
        base, named = self.parse(name)
        return load_beir(base, split if named is None else named)

    def listing(self) -> list[DatasetInfo]:
        return [DatasetInfo(f"beir/{n}", f"ir_datasets '{i}'", "BEIR; downloads on first use") for n, i in BEIR_TEST_IDS.items()]

    def counts(self, name: str) -> dict[str, int | None]:
        """From ir_datasets' metadata, without downloading."""
        import ir_datasets

        base, split = self.parse(name)
        ds = ir_datasets.load(BEIR_TEST_IDS[base] if split is None else f"beir/{base}/{split}")
        counts: dict[str, int | None] = {}
        for key, method in (("docs", "docs_count"), ("queries", "queries_count"), ("qrels", "qrels_count")):
            try:
                counts[key] = getattr(ds, method)()
            except Exception as exc:  # noqa: BLE001 - metadata may be absent for some datasets; the count is then unknown
                logger.debug("no %s count for %s: %s", key, name, exc)
                counts[key] = None
        return counts

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
    """A local BEIR folder; it also claims any name written as a path, to say when the folder is missing."""

    def claims(self, name: str) -> bool:
        return Path(name).expanduser().is_dir() or name.startswith((".", "/", "~"))

    @staticmethod
    def folder(name: str) -> Path:
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise InputError(
                folder, None, "dataset folder not found", "give a BEIR folder with corpus.jsonl, queries.jsonl and qrels/"
            )
        return folder

    def load(self, name: str, split: str | None) -> Dataset:
        return load_beir_folder(self.folder(name), split or "test")

    def fewshot_pool(self, name: str) -> FewShotPool:
        """Every query of queries.jsonl, and the judgements of the first of train, dev and test that the folder has."""
        folder = self.folder(name)
        for split in SPLIT_ORDER:
            path = folder / "qrels" / f"{split}.tsv"
            if path.is_file():
                return FewShotPool(name, split, read_beir_queries(folder / "queries.jsonl"), read_qrels_tsv(path))
        raise InparsError(f"{folder / 'qrels'}: no train.tsv, dev.tsv or test.tsv to draw few-shot examples from")


# The order decides which source claims a name: a folder on disk wins over a registered name.
sources = Registry("dataset source")
sources.register("folder", "inpars.datasets:FolderSource")
sources.register("embedded", "inpars.datasets:EmbeddedSource")
sources.register("beir", "inpars.datasets:BeirSource")


def listing() -> list[DatasetInfo]:
    """The datasets ``inpars datasets`` lists: every source's rows, in the sources' order."""
    return [info for kind in sources for info in sources.get(kind)().listing()]


def source_for(name: str) -> DatasetSource:
    """The first registered source that claims ``name``; a name none claims is refused with the closest listed names."""
    for kind in sources:
        source = sources.get(kind)()
        if source.claims(name):
            return source
    raise UnknownNameError(f"unknown dataset '{name}'; {suggest(name, sorted(info.name for info in listing()))}")


def load_dataset(name: str, split: str | None = None) -> Dataset:
    """Load a dataset by listed name, ``beir/<name>/<split>``, or local BEIR folder path."""
    return source_for(name).load(name, split)


def dataset_counts(name: str) -> dict[str, int | None]:
    """Counts without downloading: embedded data is counted, BEIR counts come from ir_datasets' metadata."""
    return source_for(name).counts(name)


def export_beir(
    dataset: Dataset, folder: str | Path, splits: Mapping[str, float], max_docs: int | None = None, seed: int = 0
) -> dict[str, int]:
    """Write ``dataset`` as a BEIR folder whose judged queries are divided among ``splits`` (name -> share).

    With ``max_docs`` the folder is a miniature: queries are taken in a seeded order while all of their relevant
    documents still fit, so every kept judgement points into the kept corpus. Returns the counts written.
    """
    if not splits or any(share <= 0 for share in splits.values()):
        raise InparsError("give each split a positive share, e.g. train=0.5 dev=0.25 test=0.25")
    if max_docs is not None and max_docs < 1:
        raise InparsError(f"max_docs must be at least 1, not {max_docs}")
    rng = random.Random(seed)
    order = sorted(dataset.qrels)
    rng.shuffle(order)
    kept_docs: set[str] = set()
    kept_queries: list[str] = []
    for query_id in order:
        relevant = {doc_id for doc_id in dataset.qrels[query_id] if doc_id in dataset.docs}
        if query_id not in dataset.queries or not relevant:
            continue
        if max_docs is not None and len(kept_docs | relevant) > max_docs:
            continue
        kept_docs |= relevant
        kept_queries.append(query_id)
    if max_docs is None:
        kept_docs = set(dataset.docs)
    if len(kept_queries) < len(splits):
        raise InparsError(
            f"{dataset.name}: {len(kept_queries)} judged queries fit in {max_docs} documents, fewer than the {len(splits)} "
            "splits; raise max_docs"
        )
    total = sum(splits.values())
    bounds, start = {}, 0
    for position, (name, share) in enumerate(splits.items()):
        end = len(kept_queries) if position == len(splits) - 1 else start + max(1, round(len(kept_queries) * share / total))
        bounds[name] = kept_queries[start:end]
        start = end
    counts = {"docs": len(kept_docs), "queries": len(kept_queries)}
    with atomic_directory(folder) as staging:
        docs = [dataset.docs[doc_id] for doc_id in dataset.docs if doc_id in kept_docs]
        queries = [dataset.queries[query_id] for query_id in sorted(kept_queries)]
        first, *rest = bounds
        write_beir_folder(staging, docs, queries, {q: dict(dataset.qrels[q]) for q in bounds[first]}, split=first)
        for name in rest:
            write_qrels_tsv(staging / "qrels" / f"{name}.tsv", {q: dict(dataset.qrels[q]) for q in bounds[name]})
    counts.update({f"qrels/{name}": sum(len(dataset.qrels[q]) for q in ids) for name, ids in bounds.items()})
    return counts
