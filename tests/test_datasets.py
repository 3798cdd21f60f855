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
    with pytest.raises(InparsError, match=r"1 judged queries fit in max_docs=1 documents; .* raise max_docs \(--max-docs\) to 3"):
        export_beir(load_faq_construction(), tmp_path / "y", {"a": 1, "b": 1, "c": 1}, max_docs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("count", "shares", "sizes"),
    [
        (120, (0.5, 0.25, 0.25), [60, 30, 30]),  # the rehearsal's mini-faq, as it was always cut
        (4, (0.5, 0.25, 0.25), [2, 1, 1]),
        (6, (1, 1, 1, 1), [2, 1, 2, 1]),  # rounded half up along the cumulative shares
        (10, (0.5, 0.25, 0.25), [5, 3, 2]),
        (7, (1 / 3, 1 / 3, 1 / 3), [2, 3, 2]),
        (1000, (0.999, 0.001), [999, 1]),
    ],
)
def test_split_queries_follows_the_shares_and_leaves_no_split_empty(count, shares, sizes):
    from inpars.datasets import queries_needed, split_queries

    ids = [f"q{i}" for i in range(count)]
    splits = {f"s{i}": share for i, share in enumerate(shares)}
    cuts = split_queries(ids, splits)
    assert [len(c) for c in cuts.values()] == sizes and [q for c in cuts.values() for q in c] == ids
    assert count >= queries_needed(splits)
    assert all(split_queries(ids[:queries_needed(splits)], splits).values())  # the fewest queries still fill every split


def test_queries_needed_is_the_exact_bound():
    from inpars.datasets import queries_needed, split_queries

    for shares in ((0.5, 0.25, 0.25), (0.9, 0.1), (1, 1, 1), (0.7, 0.2, 0.1), (3, 1)):
        splits = {f"s{i}": share for i, share in enumerate(shares)}
        needed = queries_needed(splits)
        assert all(split_queries([str(i) for i in range(needed)], splits).values())
        # One fewer leaves the smallest split less than one query's worth: it is refused, though rounding might fill it.
        assert (needed - 1) * min(shares) < sum(shares)


def test_export_checks_its_target_before_writing(tmp_path):
    from inpars.datasets import check_export_target, export_beir

    data = Dataset("tiny", {"d1": Doc("d1", "a")}, {"q1": Query("q1", "x")}, {"q1": {"d1": 1}})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("1")
    (tmp_path / "full" / "b").write_text("2")
    with pytest.raises(InputError, match=r"full: is not empty \(it holds 2 entries, e.g. 'a'\); give a new or empty folder"):
        export_beir(data, tmp_path / "full", {"test": 1})
    assert check_export_target(tmp_path / "full", force=True) == tmp_path / "full"
    export_beir(data, tmp_path / "full", {"test": 1}, force=True)
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["corpus.jsonl", "qrels", "queries.jsonl"]
    (tmp_path / "empty").mkdir()
    export_beir(data, tmp_path / "empty", {"test": 1})
    assert load_dataset(str(tmp_path / "empty")).counts() == {"docs": 1, "queries": 1, "qrels": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full"]


def test_replacing_directory_keeps_the_old_folder_when_the_new_one_fails(tmp_path):
    from inpars.datasets import replacing_directory

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    folder.chmod(0o750)
    with pytest.raises(RuntimeError, match="half way"), replacing_directory(folder) as staging:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("half way")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in folder.iterdir()] == ["old.txt"]
    with replacing_directory(folder) as staging:
        (staging / "new.txt").write_text("new")
        assert [p.name for p in folder.iterdir()] == ["old.txt"]  # the old folder stays whole until the swap
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in folder.iterdir()] == ["new.txt"]
    assert folder.stat().st_mode & 0o777 == 0o750


def test_beir_splits_are_the_ids_ir_datasets_has():
    ir_datasets = pytest.importorskip("ir_datasets")
    for name, splits in datasets.BEIR_SPLITS.items():
        assert splits["test"] == datasets.BEIR_TEST_IDS[name]
        for split, dataset_id in splits.items():
            assert dataset_id in ir_datasets.registry, (name, split)
            assert datasets.BeirSource.parse(f"beir/{name}/{split}") == (name, split)


def test_a_beir_name_with_a_split_it_lacks_is_refused_with_its_splits():
    assert datasets.BeirSource().claims("beir/scifact/bogus")  # no other source gets it and says something vaguer
    assert not datasets.BeirSource().claims("beir/scifakt/test")
    for entry in (load_dataset, dataset_counts, load_pool):
        with pytest.raises(InparsError, match=r"^unknown dataset 'beir/scifact/bogus': beir/scifact has no split 'bogus'; "):
            entry("beir/scifact/bogus")
    with pytest.raises(InparsError, match=r"'beir/scifact/dev': beir/scifact has no split 'dev'; its splits are test, train"):
        load_dataset("beir/scifact", split="dev")
    with pytest.raises(InparsError, match=r"'beir/nq/train': beir/nq has no split 'train'; its only split is test"):
        load_beir("nq", "train")
    with pytest.raises(InparsError, match=r"^the dataset name is empty"):
        load_dataset("")


def test_a_corpus_with_no_text_is_refused_and_one_with_some_empty_documents_loads(tmp_path):
    queries, qrels = [Query("q1", "x")], {"q1": {"d1": 1}}
    io.write_beir_folder(tmp_path / "blank", [Doc("d1", " "), Doc("d2", "", "\t"), Doc("d3", "")], queries, qrels)
    with pytest.raises(InputError, match=r"blank/corpus.jsonl: none of the 3 documents has a letter or digit .*all are empty"):
        load_dataset(str(tmp_path / "blank"))
    io.write_beir_folder(tmp_path / "marks", [Doc("d1", "?!"), Doc("d2", ""), Doc("d3", "\u2026")], queries, qrels)
    with pytest.raises(InputError, match=r"\(1 are empty or whitespace, the others punctuation\)"):
        load_dataset(str(tmp_path / "marks"))
    io.write_beir_folder(tmp_path / "some", [Doc("d1", ""), Doc("d2", "", "Título"), Doc("d3", " ")], queries, qrels)
    assert load_dataset(str(tmp_path / "some")).counts()["docs"] == 3
    io.write_beir_folder(tmp_path / "digits", [Doc("d1", "404"), Doc("d2", "")], queries, qrels)
    assert len(load_dataset(str(tmp_path / "digits")).docs) == 2
