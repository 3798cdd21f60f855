from __future__ import annotations

import pytest

from inpars import io
from inpars.data import Doc, Query
from inpars.datasets import load_beir, load_dataset
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
    with pytest.raises(
        InparsError, match=r"^unknown BEIR dataset 'beir/scifakt'; did you mean 'beir/scifact'\? available: beir/arguana, "
    ):
        load_beir("scifakt")


def test_export_writes_a_miniature_beir_folder_with_disjoint_splits(tmp_path):
    from inpars.datasets import export_beir, load_beir_folder, load_faq_construction

    faq = load_faq_construction()
    counts = export_beir(faq, tmp_path / "mini", {"train": 0.5, "dev": 0.25, "test": 0.25}, max_docs=40, seed=3)
    # faq-construction judges one answer per question: each kept question brings one judgement and one document.
    assert (
        counts["docs"] <= 40
        and counts["qrels/train"] + counts["qrels/dev"] + counts["qrels/test"] == counts["queries"] == counts["docs"]
    )
    splits = {name: load_beir_folder(tmp_path / "mini", name) for name in ("train", "dev", "test")}
    ids = [set(split.queries) for split in splits.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert sum(len(i) for i in ids) == counts["queries"] and len(splits["test"].docs) == counts["docs"] <= 40
    for split in splits.values():
        assert all(doc_id in split.docs for judged in split.qrels.values() for doc_id in judged)
    again = export_beir(faq, tmp_path / "again", {"train": 0.5, "dev": 0.25, "test": 0.25}, max_docs=40, seed=3)
    assert (
        again == counts
        and (tmp_path / "again" / "qrels" / "test.tsv").read_text() == (tmp_path / "mini" / "qrels" / "test.tsv").read_text()
    )


def test_export_refuses_bad_splits(tmp_path):
    from inpars.datasets import export_beir, load_faq_construction
    with pytest.raises(InparsError, match="give each split a positive share"):
        export_beir(load_faq_construction(), tmp_path / "x", {"train": 0.0})
    with pytest.raises(InparsError, match="fewer than the 3 splits; raise max_docs"):
        export_beir(load_faq_construction(), tmp_path / "y", {"a": 1, "b": 1, "c": 1}, max_docs=1)
