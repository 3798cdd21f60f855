"""Lucene BM25 through pyserini (Anserini): the BM25 of the BEIR baselines, from any corpus or a prebuilt index.

The index is built from the corpus in BEIR's "flat" convention (title and text in one field, ``Doc.full_text``),
with Anserini's ``IndexCollection`` over ``JsonCollection`` shards, one per thread, and cached per corpus.
Users with a network can instead name a prebuilt index (``beir-v1.0.0-<dataset>.flat`` or ``.multifield``).
Needs ``pip install "inpars[pyserini]"`` and the Java of the installed pyserini: 11 or newer for pyserini < 0.35
(0.22.1 is what the CPU tests run), 21 for later releases (the image runs 1.6 on Debian's OpenJDK 21).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import io as text_io
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from inpars import io
from inpars.config import RetrieveConfig
from inpars.data import Doc, Query, Run
from inpars.errors import InparsError, require
from inpars.registry import did_you_mean
from inpars.retrieve.base import check_top_k, thread_count, without_query_ids
from inpars.retrieve.cache import cached_index

logger = logging.getLogger(__name__)

MIN_JAVA = 11
"""pyserini 0.22.1 runs Anserini 0.22.1, compiled for Java 11; pyserini 0.35 and later need Java 21."""


def required_java() -> int:
    """The oldest Java that the installed pyserini's Anserini runs on."""
    try:
        release = importlib.metadata.version("pyserini")
    except importlib.metadata.PackageNotFoundError:
        return MIN_JAVA
    numbers = [int(part) for part in re.findall(r"\d+", release)[:2]] + [0, 0]
    return 21 if tuple(numbers[:2]) >= (0, 35) else MIN_JAVA

# Lucene's English analysis stems with Porter's algorithm (or Krovetz's); it has no Snowball stemmer. "english",
# the config default (Snowball's Porter2 in bm25s), selects Lucene's English analysis, hence Porter.
LUCENE_STEMMERS = {"english": "porter", "porter": "porter", "krovetz": "krovetz", "": "none", "none": "none"}

# pyserini's BEIR multifield regressions search both fields with equal weight.
MULTIFIELD_FIELDS = {"contents": 1.0, "title": 1.0}

# Without a single log4j context, Anserini's "quiet" setting cannot lower its log level from inside Python.
_JVM_OPTIONS = ("-Dlog4j2.contextSelector=org.apache.logging.log4j.core.selector.BasicContextSelector",)


def find_java() -> Path:
    """The ``java`` that pyjnius will load: under ``$JAVA_HOME`` (or JDK_HOME, JRE_HOME) if set, else on PATH."""
    for variable in ("JAVA_HOME", "JDK_HOME", "JRE_HOME"):
        home = os.environ.get(variable)
        if home:
            java = Path(home) / "bin" / "java"
            if not java.is_file():
                raise InparsError(
                    f"${variable} is {home}, which has no bin/java; point it at a Java {MIN_JAVA}+ installation or unset it"
                )
            return java
    found = shutil.which("java")
    if found is None:
        raise InparsError(
            f"the pyserini backend needs Java {MIN_JAVA} or newer, and no 'java' was found (JAVA_HOME unset, none on PATH); "
            "install one (Debian/Ubuntu: apt-get install default-jre-headless) or use retrieve.backend=bm25s"
        )
    return Path(found)


def java_version(java: Path) -> int:
    """The major version of a ``java`` executable (8 for "1.8.0_392", 17 for "17.0.15")."""
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InparsError(f"could not run '{java} -version' ({exc}); check the Java installation") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise InparsError(f"'{java} -version' printed no version; check the Java installation")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> None:
    java = find_java()
    version = java_version(java)
    needed = required_java()
    if version < needed:
        raise InparsError(
            f"pyserini {importlib.metadata.version('pyserini')} needs Java {needed} or newer, found Java {version} at {java}; "
            "install a newer one and point JAVA_HOME at it, or install pyserini==0.22.1 (Java 11+)"
        )


@functools.cache
def lucene():
    """pyserini's Lucene search module, imported once; importing it starts the JVM."""
    require("pyserini", "pyserini")
    jnius_config = require("jnius_config", "pyserini")
    if not jnius_config.vm_running:
        check_java()
        jnius_config.add_options(*_JVM_OPTIONS)
    require("faiss", "pyserini")  # pyserini.search imports its dense searchers, and they import faiss
    # Some pyserini releases build an OpenAI client when pyserini.search is imported, which fails without an API key
    # although BM25 never calls it; a placeholder key lets the import through and is removed after it.
    placeholder = "OPENAI_API_KEY" not in os.environ
    if placeholder:
        os.environ["OPENAI_API_KEY"] = "unused-by-bm25"
    try:
        return require("pyserini.search.lucene", "pyserini")
    except InparsError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party import becomes one line
        raise InparsError(
            f'importing pyserini {importlib.metadata.version("pyserini")} failed ({type(exc).__name__}: {exc}); reinstall it '
            'with pip install "inpars[pyserini]"'
        ) from None
    finally:
        if placeholder:
            os.environ.pop("OPENAI_API_KEY", None)


def lucene_doc_count(folder: Path) -> int:
    """The number of documents in a Lucene index, read with Lucene's own reader."""
    from jnius import autoclass

    directory = autoclass("org.apache.lucene.store.FSDirectory").open(autoclass("java.io.File")(str(folder)).toPath())
    reader = autoclass("org.apache.lucene.index.DirectoryReader").open(directory)
    try:
        return int(reader.numDocs())
    finally:
        reader.close()
        directory.close()


class PyseriniRetriever:
    """Lucene BM25 (Anserini) over title and text in one field, or over a prebuilt pyserini index."""

    name = "pyserini"

    def __init__(self, config: RetrieveConfig | None = None) -> None:
        self.config = config or RetrieveConfig()
        if self.config.stemmer not in LUCENE_STEMMERS:
            raise InparsError(
                f"stemmer '{self.config.stemmer}' is not available in Lucene; the pyserini backend takes "
                f"{', '.join(repr(s) for s in LUCENE_STEMMERS)} (english means Lucene's English analysis, which stems with "
                "Porter)"
            )
        if self.config.stopwords not in ("en", ""):
            raise InparsError(
                f"stopwords '{self.config.stopwords}' are not available in Lucene; the pyserini backend takes 'en' (Lucene's "
                "English list) or '' (none)"
            )
        self._stemmer = LUCENE_STEMMERS[self.config.stemmer]
        self._keep_stopwords = not self.config.stopwords
        self._threads = thread_count(self.config.threads)
        self._lucene = lucene()
        self._searcher = None
        self._fields: dict[str, float] = {}
        self.index_dir: Path | None = None

    # ------------------------------------------------------------------------------------------ indexing

    def _params(self) -> dict:
        # k1 and b are applied at search time; only the analysis shapes a Lucene index.
        return {
            "pyserini": importlib.metadata.version("pyserini"),
            "layout": "flat",
            "stemmer": self._stemmer,
            "keep_stopwords": self._keep_stopwords,
        }

    def _build(self, docs: list[Doc], folder: Path) -> None:
        from jnius import autoclass

        # IndexCollection gives each input file to one thread, so the corpus is split into one file per thread.
        shards = max(1, min(self._threads, len(docs)))
        with tempfile.TemporaryDirectory(prefix="inpars-lucene-input-") as staging:
            for shard in range(shards):
                io.write_jsonl(
                    Path(staging) / f"docs-{shard:03d}.jsonl",
                    ({"id": d.doc_id, "contents": d.full_text} for d in docs[shard::shards]),
                )
            args = autoclass("io.anserini.index.IndexCollection$Args")()
            args.input = staging
            args.index = str(folder)
            args.collectionClass = "JsonCollection"
            args.generatorClass = "DefaultLuceneDocumentGenerator"
            args.threads = shards
            args.stemmer = self._stemmer
            args.keepStopwords = self._keep_stopwords
            args.quiet = True
            counters = autoclass("io.anserini.index.IndexCollection")(args).run()
        if counters is not None:
            indexed, empty = counters.indexed.get(), counters.empty.get()
            failed = counters.unindexable.get() + counters.errors.get() + counters.skipped.get()
        else:
            # Anserini 0.38 and later return nothing from run(); the index itself says what it holds.
            indexed, failed = lucene_doc_count(folder), 0
            empty = sum(1 for d in docs if not d.full_text.strip())
        if failed or indexed + empty != len(docs):
            raise InparsError(
                f"Lucene indexed {indexed} of {len(docs)} documents ({empty} empty, {failed} failed); see the Java log above"
            )
        if empty:
            logger.warning("%d empty documents were not indexed; they can never be retrieved", empty)

    def _open(self, searcher) -> None:
        searcher.set_bm25(float(self.config.k1), float(self.config.b))
        if self._stemmer != "porter" or self._keep_stopwords:
            from pyserini.analysis import get_lucene_analyzer

            stemming = self._stemmer != "none"
            searcher.set_analyzer(
                get_lucene_analyzer(
                    stemming=stemming, stemmer=self._stemmer if stemming else "porter", stopwords=not self._keep_stopwords
                )
            )
        self._searcher = searcher

    def _open_prebuilt(self, docs: list[Doc]) -> None:
        from pyserini.prebuilt_index_info import TF_INDEX_INFO

        name = self.config.prebuilt_index
        if name not in TF_INDEX_INFO:
            hint = did_you_mean(name, TF_INDEX_INFO, "BEIR's are beir-v1.0.0-<dataset>.flat and beir-v1.0.0-<dataset>.multifield")
            raise InparsError(f"unknown prebuilt Lucene index '{name}'; {hint}")
        if self._stemmer != "porter" or self._keep_stopwords:
            raise InparsError(
                f"the prebuilt index '{name}' was built with Lucene's Porter stemmer and English stopwords; set "
                "retrieve.stemmer=porter and retrieve.stopwords=en"
            )
        printed = text_io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):  # pyserini reports download progress and failures with print()
                searcher = self._lucene.LuceneSearcher.from_prebuilt_index(name)
        except (ValueError, AssertionError) as exc:  # pyserini's checksum and index-statistics checks
            from pyserini.util import get_cache_home

            raise InparsError(
                f"the prebuilt index '{name}' failed pyserini's checks ({exc}); delete it from {get_cache_home()} and retry"
            ) from None
        except OSError as exc:  # later pyserini releases print a failed download and then open the missing file
            reason = printed.getvalue().strip().splitlines()[-1:] or [str(exc)]
            raise InparsError(
                f"could not download the prebuilt index '{name}' ({reason[0]}); leave retrieve.prebuilt_index empty to build "
                "an index from the corpus"
            ) from None
        logger.debug("pyserini: %s", printed.getvalue().strip())
        if searcher is None:
            reason = printed.getvalue().strip().splitlines()[-1:] or ["no network?"]
            raise InparsError(
                f"could not download the prebuilt index '{name}' ({reason[0]}); leave retrieve.prebuilt_index empty to build "
                "an index from the corpus"
            )
        if docs and searcher.num_docs > len(docs):
            raise InparsError(
                f"the prebuilt index '{name}' holds {searcher.num_docs} documents but the corpus has {len(docs)}: "
                "they are not the same collection; pick the index of this dataset"
            )
        if docs and searcher.num_docs < len(docs):
            logger.warning("the prebuilt index '%s' holds %d documents, the corpus %d", name, searcher.num_docs, len(docs))
        self._fields = dict(MULTIFIELD_FIELDS) if name.endswith(".multifield") else {}
        self.index_dir = Path(searcher.index_dir)
        self._open(searcher)

    def index(self, docs: Iterable[Doc]) -> None:
        docs = list(docs)
        if self.config.prebuilt_index:
            self._open_prebuilt(docs)
            return
        if not docs:
            raise InparsError("cannot index an empty corpus")
        self.index_dir = cached_index(self.name, docs, self._params(), lambda folder: self._build(docs, folder))
        self._fields = {}
        self._open(self._lucene.LuceneSearcher(str(self.index_dir)))

    # ------------------------------------------------------------------------------------------ searching

    def search(self, queries: Mapping[str, Query], top_k: int) -> Run:
        if self._searcher is None:
            raise InparsError("index documents before searching")
        check_top_k(top_k)
        ids = list(queries)
        if not ids:
            return {}
        hits = self._searcher.batch_search(
            [queries[q].text for q in ids], ids, k=top_k, threads=self._threads, fields=self._fields
        )
        # Anserini rounds scores to 4 decimals and breaks ties by document id.
        run = {qid: {hit.docid: float(hit.score) for hit in hits.get(qid, [])} for qid in ids}
        return without_query_ids(run) if self.config.remove_query else run
