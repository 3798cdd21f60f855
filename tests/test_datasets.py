from __future__ import annotations

import pytest

from inpars import io
from inpars.data import Doc, Query
from inpars.datasets import load_dataset
from inpars.errors import InparsError, InputError


def test_faq_construction(faq):
    assert faq.counts() == {"docs": 503, "queries": 503, "qrels": 503}
    for qid, judged in faq.qrels.items():
        assert judged == {qid: 1} and qid in faq.docs


def test_local_beir_folder(tmp_path):
    io.write_beir_folder(tmp_path, [Doc("d1", "a"), Doc("d2", "b")], [Query("q1", "x"), Query("q2", "y")], {"q1": {"d1": 1}})
    data = load_dataset(str(tmp_path))
    assert data.counts() == {"docs": 2, "queries": 1, "qrels": 1}  # unjudged queries are left out
    with pytest.raises(InputError, match=r"dev.tsv: no qrels for split 'dev'; splits present: test"):
        load_dataset(str(tmp_path), split="dev")


def test_beir_folder_with_unknown_judged_query(tmp_path):
    io.write_beir_folder(tmp_path, [Doc("d1", "a")], [Query("q1", "x")], {"q9": {"d1": 1}})
    with pytest.raises(InputError, match=r"1 judged query id\(s\) missing from queries.jsonl \(e.g. 'q9'\)"):
        load_dataset(str(tmp_path))


def test_unknown_names():
    with pytest.raises(InparsError, match=r"unknown dataset 'faq-constrution'; did you mean 'faq-construction'\?"):
        load_dataset("faq-constrution")
    with pytest.raises(InparsError, match=r"did you mean 'beir/scifact'\?"):
        load_dataset("beir/scifakt")
    with pytest.raises(InputError, match="dataset folder not found"):
        load_dataset("./no/such/folder")
