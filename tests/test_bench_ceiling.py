"""bench/ceiling.py: the two halves never share a document, and each condition trains on the first half only."""

import importlib.util
import sys
from pathlib import Path

from inpars.data import Dataset, Doc, Query

BENCH = Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))  # the benches import their shared module as scripts do
spec = importlib.util.spec_from_file_location("bench_ceiling", BENCH / "ceiling.py")
ceiling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ceiling)


def collection(n: int = 40) -> Dataset:
    docs = {f"d{i}": Doc(doc_id=f"d{i}", text=f"answer {i}") for i in range(n)}
    queries = {f"q{i}": Query(query_id=f"q{i}", text=f"question {i}") for i in range(n)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(n)}
    return Dataset(name="toy", docs=docs, queries=queries, qrels=qrels)


def test_halves_are_disjoint_and_both_used():
    data = collection()
    train_docs = {row["doc_id"] for row in ceiling.training_queries("real", data, [])}
    test_docs = {doc for qid in ceiling.test_queries(data) for doc in data.qrels[qid]}
    assert train_docs and test_docs
    assert not train_docs & test_docs
    assert train_docs | test_docs == set(data.docs)


def test_real_and_synthetic_train_on_the_same_documents():
    data = collection()
    generated = [{"query_id": f"d{i}-q", "doc_id": f"d{i}", "text": f"synthetic {i}"} for i in range(40)]
    real = ceiling.training_queries("real", data, generated)
    synthetic = ceiling.training_queries("synthetic", data, generated)
    assert {r["doc_id"] for r in real} == {r["doc_id"] for r in synthetic}
    assert all(r["text"].startswith("question") for r in real)
    assert all(r["text"].startswith("synthetic") for r in synthetic)
