from __future__ import annotations

import pytest

from inpars import datasets, io
from inpars.data import Dataset, Doc, Query
from inpars.datasets import DatasetInfo, DatasetSource, dataset_counts, listing, load_beir, load_dataset, source_for, sources
from inpars.errors import InparsError, InputError
from inpars.generate.fewshot import load_pool


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


class TinySource(DatasetSource):
    """A source only this test registers: ``tiny/<n>`` is n documents, each the one relevant answer of its query."""

    def claims(self, name: str) -> bool:
        return name.startswith("tiny/") and name[len("tiny/"):].isdigit()

    def load(self, name: str, split: str | None) -> Dataset:
        ids = [f"t{i}" for i in range(int(name[len("tiny/"):]))]
        return Dataset(
            name=name, docs={i: Doc(i, f"answer {i}") for i in ids}, queries={i: Query(i, f"question {i}") for i in ids},
            qrels={i: {i: 1} for i in ids},
        )

    def listing(self) -> list[DatasetInfo]:
        return [DatasetInfo("tiny/3", "this test", "three documents")]


@pytest.fixture
def tiny_source(monkeypatch):
    monkeypatch.setattr(sources, "_targets", dict(sources._targets))  # the registration ends with the test
    sources.register("tiny", f"{__name__}:TinySource")


def test_a_registered_source_is_loaded_counted_listed_and_gives_a_fewshot_pool(tiny_source):
    from typer.testing import CliRunner

    from inpars.cli import app

    data = load_dataset("tiny/3")
    assert sorted(data.docs) == ["t0", "t1", "t2"] and data.qrels["t1"] == {"t1": 1}
    assert dataset_counts("tiny/3") == {"docs": 3, "queries": 3, "qrels": 3} and len(load_dataset("tiny/5").docs) == 5
    pool = load_pool("tiny/3")
    assert (pool.dataset, pool.split, pool.qrels, pool.queries) == ("tiny/3", "test", data.qrels, data.queries)
    assert listing()[-1].name == "tiny/3"
    result = CliRunner().invoke(app, ["datasets", "--no-counts"])
    assert result.exit_code == 0 and "tiny/3" in result.output and "this test" in result.output
    with pytest.raises(InparsError, match=r"^unknown dataset 'tiny/x'; did you mean 'tiny/3'\? available: beir/arguana, "):
        load_dataset("tiny/x")


def test_unknown_names_are_refused_with_a_suggestion_by_every_entry_point():
    for entry in (load_dataset, dataset_counts, load_pool):
        with pytest.raises(InparsError, match=r"^unknown dataset 'beir/scifakt'; did you mean 'beir/scifact'\? available: "):
            entry("beir/scifakt")
        with pytest.raises(InputError, match="dataset folder not found"):
            entry("./no/such/folder")
    assert "tiny/3" not in [info.name for info in listing()]  # the test's source is gone with its test


def test_every_source_claims_the_names_it_lists():
    for kind in sources:
        source = sources.get(kind)()
        for info in source.listing():
            assert type(source_for(info.name)) is type(source), info.name
    assert type(source_for("beir/scifact/train")) is datasets.BeirSource


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
