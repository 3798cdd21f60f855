"""Every registered retriever passes the same checks; then what is particular to bm25s and the index cache."""

from __future__ import annotations

import lucene_support
import pytest

from inpars.config import RetrieveConfig
from inpars.data import Doc, Query
from inpars.errors import InparsError
from inpars.retrieve import retrievers
from inpars.retrieve.cache import MANIFEST

lucene = lucene_support.lucene  # the fixture that starts the JVM or skips

DOCS = lucene_support.DOCS
QUERIES = {
    "q1": Query("q1", "which hormone does the pancreas make"),
    "q2": Query("q2", "how tall is the Eiffel Tower"),
    "q3": Query("q3", "permit for a house extension"),
}
EXPECTED_TOP = {"q1": "d1", "q2": "d2", "q3": "d4"}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INPARS_CACHE", str(tmp_path / "cache"))


def make(name: str, request, **config):
    if name == "pyserini":
        request.getfixturevalue("lucene")
    return retrievers.get(name)(RetrieveConfig(backend=name, **config))


@pytest.mark.parametrize("name", retrievers.names())
class TestContract:
    def test_search_before_index_is_an_error(self, name, request):
        with pytest.raises(InparsError, match="index documents before searching"):
            make(name, request).search(QUERIES, 3)

    def test_empty_corpus_is_an_error(self, name, request):
        with pytest.raises(InparsError, match="cannot index an empty corpus"):
            make(name, request).index([])

    def test_run_shape_and_ranking(self, name, request):
        retriever = make(name, request)
        retriever.index(DOCS)
        run = retriever.search(QUERIES, 2)
        assert set(run) == set(QUERIES)
        for qid, hits in run.items():
            assert 1 <= len(hits) <= 2
            assert set(hits) <= {d.doc_id for d in DOCS}
            assert all(isinstance(score, float) for score in hits.values())
            assert max(hits, key=hits.get) == EXPECTED_TOP[qid]

    def test_deterministic_and_reindexable(self, name, request):
        retriever = make(name, request)
        retriever.index(DOCS)
        assert retriever.search(QUERIES, 5) == retriever.search(QUERIES, 5)
        retriever.index(DOCS[1:3])
        run = retriever.search(QUERIES, 5)
        assert set().union(*run.values()) <= {"d2", "d3"}

    def test_no_queries_and_bad_top_k(self, name, request):
        retriever = make(name, request)
        retriever.index(DOCS)
        assert retriever.search({}, 3) == {}
        with pytest.raises(InparsError, match="^'top_k' is 0; it must be at least 1$"):
            retriever.search(QUERIES, 0)


# ---------------------------------------------------------------------------------------------- lexical BM25


@pytest.mark.parametrize("name", ["bm25s", "pyserini"])
def test_bm25_retrieves_only_documents_sharing_a_term(name, request):
    retriever = make(name, request)
    retriever.index(DOCS)
    run = retriever.search({"q": Query("q", "sunlight"), "none": Query("none", "zebra"), "empty": Query("empty", "")}, 10)
    assert list(run["q"]) == ["d3"]
    assert run["none"] == {} and run["empty"] == {}


@pytest.mark.parametrize("name", ["bm25s", "pyserini"])
def test_stopwords_are_dropped_unless_kept(name, request):
    query = {"q": Query("q", "the")}
    dropping = make(name, request)
    dropping.index(DOCS)
    assert dropping.search(query, 10)["q"] == {}
    keeping = make(name, request, stopwords="")
    keeping.index(DOCS)
    assert set(keeping.search(query, 10)["q"]) == {"d1", "d2", "d5"}


@pytest.mark.parametrize("name", ["bm25s", "pyserini"])
def test_remove_query_drops_the_hit_named_like_the_query(name, request):
    queries = {"d5": Query("d5", "Paris")}
    kept = make(name, request)
    kept.index(DOCS)
    assert set(kept.search(queries, 5)["d5"]) == {"d2", "d5"}
    removed = make(name, request, remove_query=True)
    removed.index(DOCS)
    assert set(removed.search(queries, 5)["d5"]) == {"d2"}


@pytest.mark.parametrize("name", ["bm25s", "pyserini"])
def test_negative_threads_is_an_error(name, request):
    with pytest.raises(InparsError, match=r"'threads' is -1; it must be at least 0"):
        make(name, request, threads=-1)


@pytest.mark.parametrize("name", ["bm25s", "pyserini"])
def test_threads_do_not_change_results(name, request):
    one, many = make(name, request, threads=1), make(name, request, threads=3)
    one.index(DOCS)
    many.index(DOCS)
    assert one.search(QUERIES, 5) == many.search(QUERIES, 5)


# ---------------------------------------------------------------------------------------------- bm25s


def test_bm25s_index_is_cached_by_corpus_and_parameters(tmp_path):
    first = retrievers.get("bm25s")(RetrieveConfig())
    first.index(DOCS)
    assert first.index_dir.parent == tmp_path / "cache" / "indexes"
    assert (first.index_dir / MANIFEST).is_file()
    again = retrievers.get("bm25s")(RetrieveConfig(threads=2))
    again.index(DOCS)
    assert again.index_dir == first.index_dir
    assert again.search(QUERIES, 5) == first.search(QUERIES, 5)
    changed_text = retrievers.get("bm25s")(RetrieveConfig())
    changed_text.index([*DOCS[:4], Doc("d5", "Paris is the capital of France!")])
    other_k1 = retrievers.get("bm25s")(RetrieveConfig(k1=1.2))
    other_k1.index(DOCS)
    assert len({first.index_dir, changed_text.index_dir, other_k1.index_dir}) == 3
    assert sorted(p.name for p in (tmp_path / "cache" / "indexes").iterdir()) == sorted(
        p.name for p in (first.index_dir, changed_text.index_dir, other_k1.index_dir)
    )


def test_bm25s_rejects_an_unknown_stemmer():
    with pytest.raises(InparsError, match="unknown stemmer 'englsh' for bm25s; available: .*english"):
        retrievers.get("bm25s")(RetrieveConfig(stemmer="englsh"))


def test_bm25s_rejects_a_prebuilt_index():
    with pytest.raises(
        InparsError,
        match=r"retrieve.prebuilt_index \('beir-v1.0.0-scifact.flat'\) names a Lucene index; it needs retrieve.backend=pyserini",
    ):
        retrievers.get("bm25s")(RetrieveConfig(prebuilt_index="beir-v1.0.0-scifact.flat"))


def test_unknown_backend_suggests_the_closest():
    with pytest.raises(InparsError, match="unknown retriever 'pyserin'; did you mean 'pyserini'"):
        retrievers.get("pyserin")


def test_bm25s_cut_breaks_ties_by_document_id(tmp_path, monkeypatch):
    """Documents tied at the top-k cut are taken greater id first (trec_eval's order, the order written runs and every
    measure use); a document sharing no word with the query is never retrieved."""
    from inpars.config import RetrieveConfig
    from inpars.data import Doc, Query
    from inpars.retrieve.bm25s import BM25sRetriever

    monkeypatch.setenv("INPARS_CACHE", str(tmp_path))
    # Identical documents score identically; ids are in no particular order in the corpus.
    ids = ["d7", "d2", "d9", "d1", "d5", "d3", "d8", "d4", "d6"]
    docs = [Doc(i, "roof permit") for i in ids] + [Doc("x1", "roof permit permit application"), Doc("z0", "fence")]
    retriever = BM25sRetriever(RetrieveConfig(stemmer="", stopwords=""))
    retriever.index(docs)
    for k in (1, 3, 5, 20):
        run = retriever.search({"q": Query("q", "permit")}, k)["q"]
        assert list(run) == (["x1"] + sorted(ids, reverse=True))[:k]
        assert "z0" not in run
    whole = retriever.search({"q": Query("q", "permit")}, 100)["q"]
    assert list(retriever.search({"q": Query("q", "permit")}, 4)["q"].items()) == list(whole.items())[:4]


def test_bm25s_threads_give_the_single_thread_run(tmp_path, monkeypatch):
    """Searching in a thread pool from a freshly loaded index (its tie order built on first use) equals one thread."""
    from inpars.config import RetrieveConfig
    from inpars.data import Doc, Query, ranked
    from inpars.retrieve.bm25s import BM25sRetriever

    monkeypatch.setenv("INPARS_CACHE", str(tmp_path))
    words = ["roof", "permit", "fence", "deck", "metre", "weeks", "house", "wall"]
    docs = [Doc(f"d{(i * 7919) % 600}", " ".join(words[j % 8] for j in range(i % 5, i % 5 + 3))) for i in range(600)]
    queries = {f"q{i}": Query(f"q{i}", f"{words[i % 8]} {words[(i * 3) % 8]}") for i in range(64)}
    runs = []
    for threads in (1, 2, 2):
        retriever = BM25sRetriever(RetrieveConfig(stemmer="", stopwords="", threads=threads))
        retriever.index(docs)
        runs.append(retriever.search(queries, 50))
    assert runs[1] == runs[0] and runs[2] == runs[0]
    assert all(list(hits) == [d for d, _ in ranked(hits)] for hits in runs[0].values())
