"""The Lucene backend: Java discovery, analysis settings, the index cache, and prebuilt indexes.

Prebuilt indexes are exercised offline by serving a real Lucene index from a local HTTP server in place of
pyserini's download host; the real BEIR indexes are checked against pyserini's regression scores under ``network``.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import tarfile
import threading

import lucene_support
import pytest

from inpars.config import RetrieveConfig
from inpars.data import Doc, Query
from inpars.errors import InparsError
from inpars.retrieve.cache import MANIFEST
from inpars.retrieve.pyserini import PyseriniRetriever, check_java, find_java, java_version, lucene_doc_count, required_java

lucene = lucene_support.lucene  # the fixture that starts the JVM or skips

DOCS = lucene_support.DOCS
QUERIES = {"q1": Query("q1", "hormones"), "q2": Query("q2", "Paris")}


@pytest.fixture(autouse=True)
def _private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("INPARS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYSERINI_CACHE", str(tmp_path / "pyserini-cache"))


def fake_java(folder, version_line: str):
    """An executable named java that prints a version banner the way real ones do (on stderr)."""
    folder.mkdir(parents=True, exist_ok=True)
    java = folder / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return java


# ---------------------------------------------------------------------------------------------- Java


@pytest.fixture
def no_java_home(monkeypatch):
    for variable in ("JAVA_HOME", "JDK_HOME", "JRE_HOME"):
        monkeypatch.delenv(variable, raising=False)


def test_missing_java_names_what_to_install(tmp_path, monkeypatch, no_java_home):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(
        InparsError,
        match=r"needs Java 11 or newer, and no 'java' was found .*apt-get install default-jre-headless.*retrieve.backend=bm25s",
    ):
        find_java()


def test_java_home_without_java_is_named(tmp_path, monkeypatch, no_java_home):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(InparsError, match=rf"\$JAVA_HOME is {tmp_path}, which has no bin/java"):
        find_java()


def test_old_java_is_refused(tmp_path, monkeypatch, no_java_home):
    java = fake_java(tmp_path / "bin", 'openjdk version "1.8.0_392"')
    monkeypatch.setenv("PATH", str(java.parent))
    assert java_version(java) == 8
    with pytest.raises(InparsError, match=rf"needs Java {required_java()} or newer, found Java 8 at {java}"):
        check_java()


@pytest.mark.parametrize(("release", "java"), [("0.22.1", 11), ("0.25.0", 11), ("0.35.0", 21), ("1.6.0", 21)])
def test_the_java_needed_follows_the_pyserini_release(monkeypatch, release, java):
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: release if name == "pyserini" else real(name))
    assert required_java() == java


@pytest.mark.parametrize(
    ("banner", "major"), [('openjdk version "17.0.15" 2025-04-15', 17), ('openjdk version "21-ea" 2023-09-19', 21)]
)
def test_java_version_is_read_from_the_banner(tmp_path, monkeypatch, no_java_home, banner, major):
    java = fake_java(tmp_path / "jdk" / "bin", banner)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    assert find_java() == java
    assert java_version(java) == major
    if major >= required_java():
        check_java()
    else:
        with pytest.raises(InparsError, match=f"needs Java {required_java()} or newer, found Java {major}"):
            check_java()


def test_unreadable_version_is_an_error(tmp_path):
    java = fake_java(tmp_path, "no banner here")
    with pytest.raises(InparsError, match="printed no version"):
        java_version(java)


# ---------------------------------------------------------------------------------------------- analysis


def test_stemmers_without_a_lucene_equivalent_are_refused():
    with pytest.raises(
        InparsError,
        match="stemmer 'german' is not available in Lucene; the pyserini backend takes 'english', 'porter', 'krovetz'",
    ):
        PyseriniRetriever(RetrieveConfig(backend="pyserini", stemmer="german"))
    with pytest.raises(InparsError, match="stopwords 'fr' are not available in Lucene"):
        PyseriniRetriever(RetrieveConfig(backend="pyserini", stopwords="fr"))


@pytest.mark.parametrize(("stemmer", "stems"), [("english", True), ("porter", True), ("krovetz", True), ("", False)])
def test_stemming_follows_the_config(lucene, stemmer, stems):
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini", stemmer=stemmer))
    retriever.index(DOCS)
    run = retriever.search(QUERIES, 5)
    assert ("d1" in run["q1"]) is stems  # "hormones" reaches "hormone" only through a stemmer
    assert set(run["q2"]) == {"d2", "d5"}


def test_k1_and_b_are_applied_at_search_time(lucene):
    default = PyseriniRetriever(RetrieveConfig(backend="pyserini"))
    default.index(DOCS)
    other = PyseriniRetriever(RetrieveConfig(backend="pyserini", k1=1.5, b=0.9))
    other.index(DOCS)
    assert other.index_dir == default.index_dir
    assert default.search(QUERIES, 5)["q2"] != other.search(QUERIES, 5)["q2"]


# ---------------------------------------------------------------------------------------------- the index


def test_index_is_built_once_per_corpus_and_analysis(lucene, tmp_path):
    first = PyseriniRetriever(RetrieveConfig(backend="pyserini"))
    first.index(DOCS)
    assert first.index_dir.parent == tmp_path / "cache" / "indexes"
    assert (first.index_dir / MANIFEST).is_file()
    assert lucene_doc_count(first.index_dir) == sum(1 for d in DOCS if d.full_text.strip())
    assert not [p for p in first.index_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    again = PyseriniRetriever(RetrieveConfig(backend="pyserini", threads=1))
    again.index(DOCS)
    assert again.index_dir == first.index_dir
    krovetz = PyseriniRetriever(RetrieveConfig(backend="pyserini", stemmer="krovetz"))
    krovetz.index(DOCS)
    assert krovetz.index_dir != first.index_dir


def test_title_and_text_are_one_field(lucene):
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini"))
    retriever.index(DOCS)
    assert list(retriever.search({"q": Query("q", "insulin")}, 5)["q"]) == ["d1"]
    titled = PyseriniRetriever(RetrieveConfig(backend="pyserini"))
    titled.index([Doc("t", "Only the body mentions nothing.", title="Zeppelin")])
    assert list(titled.search({"q": Query("q", "zeppelin")}, 5)["q"]) == ["t"]


def test_empty_documents_are_reported_and_never_retrieved(lucene, caplog):
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini"))
    with caplog.at_level(logging.WARNING, logger="inpars.retrieve.pyserini"):
        retriever.index([*DOCS, Doc("blank", "")])
    assert "1 empty documents were not indexed" in caplog.text
    assert "blank" not in retriever.search({"q": Query("q", "paris tower")}, 10)["q"]


# ---------------------------------------------------------------------------------------------- prebuilt indexes

PREBUILT = "beir-v1.0.0-scifact.flat"


@pytest.fixture
def prebuilt_server(lucene, tmp_path, monkeypatch):
    """Serve a real Lucene index of DOCS as the tarball of PREBUILT, the way pyserini's download host does.

    Returns a function that points PREBUILT's catalogue entry at the local server (or at a missing file).
    """
    from pyserini.prebuilt_index_info import TF_INDEX_INFO

    try:  # pyserini >= 0.35 renamed its reader
        from pyserini.index.lucene import LuceneIndexReader as IndexReader
    except ImportError:
        from pyserini.index.lucene import IndexReader

    built = PyseriniRetriever(RetrieveConfig(backend="pyserini"))
    built.index(DOCS)
    served = tmp_path / "served"
    served.mkdir()
    entry = TF_INDEX_INFO[PREBUILT]
    tarball = served / entry["filename"]
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(built.index_dir, arcname=entry["filename"].removesuffix(".tar.gz"))
    stats = IndexReader(str(built.index_dir)).stats()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def point(path: str | None = None, **overrides):
        monkeypatch.setitem(entry, "urls", [f"{base}/{path or tarball.name}"])
        monkeypatch.setitem(entry, "md5", hashlib.md5(tarball.read_bytes()).hexdigest())
        for key in ("size compressed (bytes)", "size_bytes"):  # checked by pyserini >= 0.35
            if key in entry:
                monkeypatch.setitem(entry, key, type(entry[key])(tarball.stat().st_size))
        for key in ("documents", "unique_terms", "total_terms"):
            monkeypatch.setitem(entry, key, overrides.get(key, stats[key]))

    yield point
    server.shutdown()
    server.server_close()


def test_prebuilt_index_is_downloaded_and_searched(prebuilt_server):
    prebuilt_server()
    built = PyseriniRetriever(RetrieveConfig(backend="pyserini"))
    built.index(DOCS)
    prebuilt = PyseriniRetriever(RetrieveConfig(backend="pyserini", prebuilt_index=PREBUILT))
    prebuilt.index(DOCS)
    assert prebuilt.index_dir != built.index_dir
    assert prebuilt.search(QUERIES, 5) == built.search(QUERIES, 5)


def test_prebuilt_index_of_another_collection_is_refused(prebuilt_server):
    prebuilt_server()
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini", prebuilt_index=PREBUILT))
    with pytest.raises(
        InparsError,
        match=f"the prebuilt index '{PREBUILT}' holds 5 documents but the corpus has 2: they are not the same collection",
    ):
        retriever.index(DOCS[:2])


def test_failed_download_says_what_to_do(prebuilt_server):
    prebuilt_server(path="missing.tar.gz")
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini", prebuilt_index=PREBUILT))
    with pytest.raises(
        InparsError, match=f"could not download the prebuilt index '{PREBUILT}' .*leave retrieve.prebuilt_index empty"
    ):
        retriever.index(DOCS)


def test_inconsistent_prebuilt_index_is_reported(prebuilt_server):
    prebuilt_server(documents=5183)
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini", prebuilt_index=PREBUILT))
    with pytest.raises(
        InparsError,
        match=f"the prebuilt index '{PREBUILT}' failed pyserini's checks .*\"documents\" does not match.*delete it from",
    ):
        retriever.index(DOCS)


def test_unknown_prebuilt_index_suggests_the_closest(lucene):
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini", prebuilt_index="beir-v1.0.0-scifakt.flat"))
    with pytest.raises(
        InparsError, match="unknown prebuilt Lucene index 'beir-v1.0.0-scifakt.flat'; did you mean 'beir-v1.0.0-scifact.flat'"
    ):
        retriever.index(DOCS)


def test_prebuilt_index_needs_its_own_analysis(lucene):
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini", prebuilt_index=PREBUILT, stemmer="krovetz"))
    with pytest.raises(
        InparsError, match="was built with Lucene's Porter stemmer and English stopwords; set retrieve.stemmer=porter"
    ):
        retriever.index(DOCS)


@pytest.mark.network
@pytest.mark.parametrize(
    ("index", "expected"), [("beir-v1.0.0-scifact.flat", 0.6789), ("beir-v1.0.0-scifact.multifield", 0.6647)]
)
def test_beir_prebuilt_index_reproduces_pyserini_regressions(lucene, index, expected):
    """pyserini's BEIR regressions (BM25 k1=0.9 b=0.4, top 1000, --remove-query): SciFact nDCG@10 flat 0.6789,
    multifield 0.6647."""
    from inpars.datasets import load_dataset
    from inpars.evaluate import evaluate

    dataset = load_dataset("beir/scifact")
    retriever = PyseriniRetriever(RetrieveConfig(backend="pyserini", prebuilt_index=index, remove_query=True))
    retriever.index(dataset.docs.values())
    run = retriever.search(dataset.queries, 1000)
    assert evaluate(run, dataset.qrels, ["nDCG@10"])["nDCG@10"] == pytest.approx(expected, abs=0.0005)
