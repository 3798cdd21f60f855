"""The retrieve and negatives commands with the Lucene backend and dense negatives."""

from __future__ import annotations

import lucene_support
import pytest
from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.data import SyntheticQuery

lucene = lucene_support.lucene  # the fixture that starts the JVM or skips


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INPARS_CACHE", str(tmp_path / "cache"))


def test_retrieve_with_lucene_writes_a_trec_run(lucene, faq, tmp_path):
    output = tmp_path / "bm25.trec"
    result = CliRunner().invoke(app, ["retrieve", "--backend", "pyserini", "--top-k", "5", "--output", str(output)])
    assert result.exit_code == 0, result.output
    run = io.read_trec_run(output)
    assert set(run) == set(faq.queries)
    assert all(1 <= len(hits) <= 5 for hits in run.values())


def test_a_stemmer_lucene_lacks_is_one_clear_line(tmp_path):
    result = CliRunner().invoke(
        app, ["retrieve", "--backend", "pyserini", "--set", "retrieve.stemmer=german", "--output", str(tmp_path / "x.trec")]
    )
    assert result.exit_code == 2
    assert "error: stemmer 'german' is not available in Lucene" in result.output
    assert not (tmp_path / "x.trec").exists()


def test_negatives_with_dense_negatives(faq, tmp_path):
    doc_ids = sorted(faq.docs)[:12]
    folder = tmp_path / "beir"
    io.write_beir_folder(folder, [faq.docs[d] for d in doc_ids], [faq.queries[d] for d in doc_ids], {d: {d: 1} for d in doc_ids})
    queries = tmp_path / "queries.jsonl"
    io.write_synthetic(
        queries, [SyntheticQuery(f"s{i}", doc_id, faq.queries[doc_id].text) for i, doc_id in enumerate(doc_ids[:3])]
    )
    output = tmp_path / "train.jsonl"
    args = ["negatives", str(queries), "--dataset", str(folder), "--dense-negatives", "1", "--seed", "3", "--output", str(output)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    examples = io.read_training(output)
    for i, doc_id in enumerate(doc_ids[:3]):
        rows = [e for e in examples if e.query_id == f"s{i}"]
        assert [(e.doc_id, e.label) for e in rows if e.label == 1] == [(doc_id, 1)]
        negatives = [e.doc_id for e in rows if e.label == 0]
        assert len(negatives) == 2 and len(set(negatives)) == 2 and doc_id not in negatives
        assert all(e.doc == faq.docs[e.doc_id].full_text for e in rows)
