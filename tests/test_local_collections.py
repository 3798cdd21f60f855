"""Collections of documents alone (a BEIR folder with corpus.jsonl only, a JSONL, CSV or TSV file, a folder of .txt and
.md files), the parts a collection reports, the stages that refuse a collection without queries or qrels, and
``irds:<id>`` names, counted from ir_datasets' metadata without a download."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.data import Dataset, Doc, Query
from inpars.datasets import (
    FolderSource,
    IrdsSource,
    content_fingerprint,
    dataset_counts,
    dataset_info,
    describe_parts,
    load_dataset,
    require_part,
    source_for,
)
from inpars.errors import InparsError, InputError
from inpars.generate.fewshot import load_pool

runner = CliRunner()


def _one_line_error(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def notes(tmp_path) -> Path:
    """A folder of documents: Markdown with and without an opening heading, text files in subfolders, and files that
    are not documents."""
    folder = tmp_path / "notes"
    _write(folder / "insulin.md", "\n# Insulin  #\n\nInsulin is a hormone made by the pancreas.\n")
    _write(folder / "later-heading.md", "Some words first.\n\n## Not a title\n")
    _write(folder / "travel" / "Eiffel tower.txt", "The Eiffel Tower is 330 metres tall.\n")
    _write(folder / "travel" / "deep" / "rome.TXT", "Rome has many fountains.")
    _write(folder / "image.png", "not a document")
    _write(folder / ".hidden.md", "# Secret\nleft out")
    _write(folder / ".git" / "notes.md", "left out too")
    return folder


# ---------------------------------------------------------------------------------------------- formats


def test_a_beir_folder_with_only_its_corpus_is_documents_alone(tmp_path):
    folder = tmp_path / "beir"
    rows = [{"_id": "d1", "title": "Water", "text": "Water boils."}, {"_id": "d2", "text": "Ice."}]
    io.write_jsonl(folder / "corpus.jsonl", rows)
    data = load_dataset(str(folder))
    assert data.docs == {"d1": Doc("d1", "Water boils.", "Water"), "d2": Doc("d2", "Ice.")}
    assert (data.queries, data.qrels, data.parts()) == ({}, {}, ("docs",))
    assert data.origin == {"corpus": folder / "corpus.jsonl"}
    assert dataset_counts(str(folder)) == {"docs": 2, "queries": 0, "qrels": 0}


def test_a_beir_folder_with_queries_and_no_qrels_keeps_every_query_unjudged(tmp_path):
    folder = tmp_path / "beir"
    io.write_jsonl(folder / "corpus.jsonl", [{"_id": "d1", "text": "Water boils."}])
    io.write_jsonl(folder / "queries.jsonl", [{"_id": "q1", "text": "boiling"}, {"_id": "q2", "text": "ice"}])
    data = load_dataset(str(folder))
    assert data.queries == {"q1": Query("q1", "boiling"), "q2": Query("q2", "ice")} and data.qrels == {}
    assert data.parts() == ("docs", "queries")
    assert data.origin == {"corpus": folder / "corpus.jsonl", "queries": folder / "queries.jsonl"}
    # A split asked for by name needs its qrels file, as before.
    with pytest.raises(InputError, match=r"test.tsv: no qrels for split 'test'; splits present: none"):
        load_dataset(str(folder), split="test")


def test_a_jsonl_file_of_documents(tmp_path):
    path = _write(
        tmp_path / "docs.jsonl",
        '{"id": 7, "text": "Seven.", "lang": "en"}\n\n{"id": "d8", "title": null, "text": "Eight."}\n',
    )
    data = load_dataset(str(path))
    assert data.docs == {"7": Doc("7", "Seven."), "d8": Doc("d8", "Eight.")}
    assert data.parts() == ("docs",) and data.origin == {"corpus": path} and data.name == str(path)


def test_a_csv_file_of_documents_with_quoted_commas_and_line_breaks(tmp_path, monkeypatch):
    _write(
        tmp_path / "docs.CSV",
        '\ufeff Doc_ID ,Title,text,source\nd1,Water,"Boils at 100 °C, at sea level.\nFreezes at 0.",wiki\n\nd2,,Ice melts.,x\n',
    )
    monkeypatch.chdir(tmp_path)
    data = load_dataset("docs.CSV")  # a bare file name is a collection too
    assert data.docs == {
        "d1": Doc("d1", "Boils at 100 °C, at sea level.\nFreezes at 0.", "Water"),
        "d2": Doc("d2", "Ice melts.", ""),
    }
    assert data.origin == {"corpus": Path("docs.CSV")} and data.parts() == ("docs",)


def test_a_tsv_file_keeps_quotes_as_text_and_title_is_optional(tmp_path):
    path = _write(tmp_path / "docs.tsv", 'docid\ttext\nd1\t"Quoted" words, and commas\nd2\tplain\n')
    data = load_dataset(str(path))
    assert data.docs == {"d1": Doc("d1", '"Quoted" words, and commas'), "d2": Doc("d2", "plain")}


def test_a_folder_of_text_and_markdown_files(notes):
    data = load_dataset(str(notes))
    assert sorted(data.docs) == ["insulin.md", "later-heading.md", "travel/Eiffel_tower.txt", "travel/deep/rome.TXT"]
    assert data.docs["insulin.md"] == Doc("insulin.md", "Insulin is a hormone made by the pancreas.", "Insulin")
    assert data.docs["later-heading.md"] == Doc("later-heading.md", "Some words first.\n\n## Not a title", "")
    assert data.docs["travel/Eiffel_tower.txt"] == Doc("travel/Eiffel_tower.txt", "The Eiffel Tower is 330 metres tall.")
    assert (data.queries, data.qrels, data.parts()) == ({}, {}, ("docs",))
    assert data.origin == {
        "corpus:insulin.md": notes / "insulin.md",
        "corpus:later-heading.md": notes / "later-heading.md",
        "corpus:travel/Eiffel_tower.txt": notes / "travel" / "Eiffel tower.txt",
        "corpus:travel/deep/rome.TXT": notes / "travel" / "deep" / "rome.TXT",
    }


def test_the_fingerprint_follows_every_file_of_a_folder_of_documents(notes, tmp_path, monkeypatch):
    monkeypatch.setenv("INPARS_CACHE", str(tmp_path / "cache"))
    first = content_fingerprint(load_dataset(str(notes)))
    assert content_fingerprint(load_dataset(str(notes))) == first
    (notes / "image.png").write_text("changed, but no document")
    assert content_fingerprint(load_dataset(str(notes))) == first
    (notes / "travel" / "deep" / "rome.TXT").write_text("Rome has many fountains and seven hills.")
    second = content_fingerprint(load_dataset(str(notes)))
    assert second != first
    _write(notes / "new.md", "# New\nA new note.")
    assert content_fingerprint(load_dataset(str(notes))) not in (first, second)


def test_a_beir_corpus_file_given_alone_is_documents_alone(tmp_path):
    io.write_beir_folder(tmp_path, [Doc("d1", "a")], [Query("q1", "x")], {"q1": {"d1": 1}})
    data = load_dataset(str(tmp_path / "corpus.jsonl"))
    assert data.parts() == ("docs",) and data.origin == {"corpus": tmp_path / "corpus.jsonl"}
    assert load_dataset(str(tmp_path)).parts() == ("docs", "queries", "qrels")  # its folder is the test collection


# ---------------------------------------------------------------------------------------------- bad collections


BAD_FILES = {
    "both-ids.csv": ("id,doc_id,text\n1,2,x\n", r"both-ids.csv:1: 2 columns could be the document id \(id, doc_id\); keep one"),
    "no-id.csv": ("key,text\n1,x\n", r"no-id.csv:1: no document id column; call the id column one of _id, id, doc_id, docid"),
    "no-text.tsv": ("id\tbody\n1\tx\n", r"no-text.tsv:1: no 'text' column \(the header names 'id', 'body'\)"),
    "text-twice.csv": ("id,text,Text\n1,x,y\n", r"text-twice.csv:1: the header names the column 'text' 2 times; keep one"),
    "short-row.csv": ('id,text\n1,"two\nlines"\n2\n', r"short-row.csv:4: 1 comma-separated fields where the header \(line 1\)"),
    "tab-in-text.tsv": ("id\ttext\n1\ta\tb\n", r"tab-in-text.tsv:2: 3 tab-separated fields .*a .tsv field holds no tab"),
    "space-id.csv": ("id,text\nd 1,x\n", r"space-id.csv:2: id 'd 1' contains whitespace"),
    "duplicate.csv": ("id,text\nd1,x\nd1,y\n", r"duplicate.csv:3: duplicate document id 'd1'"),
    "header-only.csv": ("id,text\n", r"header-only.csv: holds no documents"),
    "both-ids.jsonl": ('{"_id": "a", "id": "b", "text": "x"}\n', r"both-ids.jsonl:1: 2 fields could be the document id"),
    "no-text.jsonl": ('{"id": "a", "body": "x"}\n', r"no-text.jsonl:1: missing field\(s\) text"),
    "blank.jsonl": ('{"id": "a", "text": " "}\n', r"blank.jsonl: none of the 1 documents has a letter or digit"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_file_of_documents_is_one_line_naming_file_and_line(name, tmp_path):
    content, wanted = BAD_FILES[name]
    path = _write(tmp_path / name, content)
    with pytest.raises(InputError, match=wanted) as caught:
        load_dataset(str(path))
    assert _one_line_error(["datasets", str(path)]) == f"error: {caught.value}"


def test_bad_folders_and_paths_are_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "clash" / "a b.txt", "one")
    _write(tmp_path / "clash" / "a_b.txt", "two")
    clash = "clash: 'a b.txt' and 'a_b.txt' both have the document id 'a_b.txt' (whitespace becomes '_'); rename"
    assert clash in _one_line_error(["datasets", "clash"])
    (tmp_path / "empty").mkdir()
    assert "empty: holds no corpus.jsonl and no .txt or .md file; give a BEIR folder" in _one_line_error(
        ["datasets", "empty"]
    )
    _write(tmp_path / "slides.pdf", "%PDF")
    assert "slides.pdf: is not a dataset; give a BEIR folder (corpus.jsonl" in _one_line_error(["datasets", "./slides.pdf"])
    assert "missing.csv: file of documents not found; give a BEIR folder" in _one_line_error(["datasets", "missing.csv"])
    _write(tmp_path / "latin1" / "a.txt", "ok")
    (tmp_path / "latin1" / "b.txt").write_bytes(b"line one\ncaf\xe9\n")
    assert "b.txt:2: not UTF-8: byte 0xe9" in _one_line_error(["datasets", "latin1"])
    _write(tmp_path / "only-queries" / "queries.jsonl", '{"_id": "q1", "text": "x"}\n')
    assert "corpus.jsonl: missing from the BEIR folder" in _one_line_error(["datasets", "only-queries"])
    path = _write(tmp_path / "docs.csv", "id,text\n1,x\n")
    with pytest.raises(InputError, match=r"docs.csv: a file of documents has no splits \(split 'dev' asked for\)"):
        load_dataset(str(path), split="dev")
    with pytest.raises(InparsError, match=r"docs.csv: a file of documents has no judged queries to draw few-shot examples"):
        load_pool(str(path))


# ---------------------------------------------------------------------------------------------- parts and refusals


def test_the_parts_a_collection_has(faq_slice):
    assert faq_slice.parts() == ("docs", "queries", "qrels")
    assert describe_parts(faq_slice.counts()) == "documents, queries and qrels"
    assert describe_parts({"docs": 3, "queries": 0, "qrels": 0}) == "documents only"
    assert describe_parts({"docs": 3, "queries": 2, "qrels": 0}) == "documents and queries, no qrels"
    assert describe_parts({"docs": 3, "queries": None, "qrels": None}) == "documents (queries and qrels unknown)"


def test_require_part_refuses_in_one_line_what_a_collection_lacks(faq_slice):
    docs_only = Dataset("mine", dict(faq_slice.docs), {}, {})
    unjudged = Dataset("mine", dict(faq_slice.docs), dict(faq_slice.queries), {})
    for data in (faq_slice, unjudged):
        require_part(data, "queries", "retrieve")
    require_part(faq_slice, "qrels", "evaluate")
    with pytest.raises(InparsError) as caught:
        require_part(docs_only, "queries", "retrieve")
    assert str(caught.value) == (
        "retrieve works on the test queries, and 'mine' has documents only (40 documents): give a collection with queries, "
        "e.g. a BEIR folder with queries.jsonl (and qrels/test.tsv) beside corpus.jsonl; generate, filter, negatives and "
        "train need only documents"
    )
    with pytest.raises(InparsError, match=r"^evaluate scores runs against the qrels .* 'mine' has documents and queries, no "
                       r"qrels \(40 documents, 40 queries\): give a collection with judged queries"):
        require_part(unjudged, "qrels", "evaluate")
    with pytest.raises(ValueError, match="part must be one of queries, qrels"):
        require_part(faq_slice, "docs", "generate")


def test_datasets_names_the_parts_of_the_collections_given(notes, tmp_path):
    result = runner.invoke(app, ["datasets", str(notes), "faq-construction"])
    assert result.exit_code == 0, result.output
    assert f"{notes}: documents only; generate, filter, negatives and train need only documents; retrieve and rerank " in (
        result.output.replace("\n", "")
    )
    assert "faq-construction:" not in result.output and "503" in result.output
    assert dataset_info(str(notes)).source == "on disk" and dataset_info("faq-construction").source.startswith("embedded")


def test_retrieve_refuses_a_collection_of_documents_alone_in_one_line(notes, tmp_path):
    output = tmp_path / "out" / "run.trec"
    line = _one_line_error(["retrieve", "--dataset", str(notes), "--output", str(output)])
    assert line == (
        f"error: retrieve works on the test queries, and '{notes}' has documents only (4 documents): give a collection with "
        "queries, e.g. a BEIR folder with queries.jsonl (and qrels/test.tsv) beside corpus.jsonl; generate, filter, "
        "negatives and train need only documents"
    )
    assert not output.exists()


def test_rerank_refuses_a_collection_of_documents_alone_before_reading_the_run(notes, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    line = _one_line_error(
        ["rerank", str(tmp_path / "no-such-run.trec"), "--model", str(model), "--dataset", str(notes),
         "--output", str(tmp_path / "reranked.trec")]
    )
    assert line.startswith(f"error: rerank works on the test queries, and '{notes}' has documents only (4 documents)")


def test_the_evaluate_stage_refuses_a_collection_without_qrels(tmp_path, faq_slice):
    from inpars.config import load_pipeline_config
    from inpars.evaluate import STAGE
    from inpars.stage import Context

    config = load_pipeline_config(text="name: x\n")
    unjudged = Dataset("mine", dict(faq_slice.docs), dict(faq_slice.queries), {})
    with pytest.raises(InparsError, match=r"^evaluate scores runs against the qrels .*'mine' has documents and queries, no"):
        STAGE.run(Context(dataset=unjudged, config=config, run_dir=tmp_path), config, tmp_path / "evaluate")
    assert list(tmp_path.iterdir()) == []


def test_retrieve_searches_queries_that_have_no_judgements(tmp_path):
    folder = tmp_path / "beir"
    texts = ["Water boils at sea level.", "Ice melts in spring.", "Sand is dry.", "Glaciers are rivers of ice."]
    io.write_jsonl(folder / "corpus.jsonl", [{"_id": f"d{i}", "text": text} for i, text in enumerate(texts)])
    io.write_jsonl(folder / "queries.jsonl", [{"_id": "q1", "text": "dry sand"}])
    output = tmp_path / "run.trec"
    result = runner.invoke(
        app, ["retrieve", "--dataset", str(folder), "--output", str(output), "--backend", "bm25s", "--top-k", "3"]
    )
    assert result.exit_code == 0, result.output
    scores = io.read_trec_run(output)["q1"]
    assert max(scores, key=scores.get) == "d2"


# ---------------------------------------------------------------------------------------------- irds: ids


@pytest.fixture
def no_download(tmp_path, monkeypatch):
    """ir_datasets' home folder, which must stay empty: counting and resolving read only the metadata it ships."""
    home = tmp_path / "ir_datasets"
    monkeypatch.setenv("IR_DATASETS_HOME", str(home))
    yield home
    written = sorted(p for p in home.rglob("*") if p.is_file()) if home.exists() else []
    assert written == []


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("irds:msmarco-passage/trec-dl-2020/judged", {"docs": 8_841_823, "queries": 54, "qrels": 11_386}),
        ("irds:beir/scifact/test", {"docs": 5_183, "queries": 300, "qrels": 339}),
        ("irds:msmarco-passage", {"docs": 8_841_823, "queries": 0, "qrels": 0}),  # documents alone
    ],
)
def test_irds_ids_resolve_and_count_from_metadata_offline(name, counts, no_download):
    assert isinstance(source_for(name), IrdsSource)
    assert dataset_counts(name) == counts
    result = runner.invoke(app, ["datasets", name])
    assert result.exit_code == 0, result.output
    assert name in result.output and f"{counts['docs']:,}" in result.output
    assert ("documents only" in result.output) == (counts["queries"] == 0)


def test_an_unknown_irds_id_is_one_line_with_the_closest_id(no_download, tmp_path):
    line = _one_line_error(["datasets", "irds:msmarco-pasage/trec-dl-2020"])
    assert line == (
        "error: unknown dataset 'irds:msmarco-pasage/trec-dl-2020': ir_datasets has no id 'msmarco-pasage/trec-dl-2020'; "
        "did you mean 'irds:msmarco-passage/trec-dl-2020'? its ids are listed at https://ir-datasets.com"
    )
    assert "'irds:' names no ir_datasets id; write irds:<id>" in _one_line_error(["datasets", "irds:"])
    assert "unknown dataset 'irds:no/such/thing'" in _one_line_error(
        ["retrieve", "--dataset", "irds:no/such/thing", "--output", str(tmp_path / "run.trec")]
    )
    with pytest.raises(InparsError, match=r"an ir_datasets id names its split itself .* instead of the split 'train'"):
        load_dataset("irds:beir/scifact/test", split="train")


def test_datasets_explains_paths_and_irds_ids():
    result = runner.invoke(app, ["datasets", "--no-counts"])
    assert result.exit_code == 0, result.output
    text = result.output.replace("\n", " ")
    assert "a folder of .txt/.md files, or a .jsonl, .csv or .tsv file of documents" in text
    assert "irds:<id> loads any ir_datasets collection, e.g. irds:msmarco-passage/trec-dl-2020/judged" in text


def test_every_local_kind_is_claimed_by_the_folder_source(notes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (str(notes), "notes", "docs.jsonl", "docs.csv", "./x.tsv", "DOCS.TSV"):
        assert isinstance(source_for(name), FolderSource), name
    assert isinstance(source_for("irds:vaswani"), IrdsSource) and not isinstance(source_for("beir/scifact"), IrdsSource)


def test_evaluate_refuses_a_collection_without_qrels(notes, tmp_path):
    run = _write(tmp_path / "run.trec", "q1 Q0 insulin.md 1 1.0 x\n")
    assert _one_line_error(["evaluate", str(run), "--dataset", str(notes)]).startswith(
        f"error: evaluate scores runs against the qrels (relevance judgements), and '{notes}' has documents only"
    )
