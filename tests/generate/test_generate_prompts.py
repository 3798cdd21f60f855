"""Prompt families as data files, users' own files and their errors, the published file, few-shot examples."""

from __future__ import annotations

import hashlib

import pytest

from inpars.errors import InparsError, InputError
from inpars.generate.fewshot import draw_examples, load_pool
from inpars.prompt import FewShotExample, builtin_prompts, convert_published, load_prompt, parse_prompt

BEIR_18 = [
    "arguana", "bioasq", "climate-fever", "cqadupstack", "dbpedia-entity", "fever", "fiqa", "hotpotqa", "nfcorpus", "nq", "quora",
    "robust04", "scidocs", "scifact", "signal1m", "trec-covid", "trec-news", "webis-touche2020",
]


def test_the_inpars_prompt_shows_three_examples_then_the_document():
    prompt = load_prompt("inpars")
    text = prompt.render("THE DOCUMENT")
    assert text.count("Relevant Query:") == 4 and text.endswith("Example 4:\nDocument: THE DOCUMENT\nRelevant Query:")
    assert text == prompt.prefix + prompt.suffix("THE DOCUMENT")


def test_the_gbq_prompt_shows_a_good_and_a_bad_question_per_example():
    prompt = load_prompt("inpars-gbq")
    text = prompt.render("THE DOCUMENT")
    assert len(prompt.examples) == 3
    assert text.count("Good Question:") == 4 and text.count("Bad Question:") == 3
    for example in prompt.examples:
        assert f"Good Question: {example.query}\nBad Question: {example.fields['bad_query']}\n" in text
    assert text.endswith("Document: THE DOCUMENT\nGood Question:")


@pytest.mark.parametrize("dataset", BEIR_18)
def test_every_beir_dataset_has_a_promptagator_prompt(dataset):
    prompt = load_prompt(f"promptagator-{dataset}")
    assert prompt.examples_from == "dataset" and prompt.num_examples == 3 and prompt.needs_examples
    assert prompt.header.strip()  # an instruction written for the dataset
    with pytest.raises(InparsError, match="takes its examples from a dataset"):
        _ = prompt.prefix
    filled = prompt.with_examples([FewShotExample("first doc", "first query"), FewShotExample("second doc", "second query")])
    text = filled.render("target doc")
    assert text.startswith(prompt.header) and text.index("first query") < text.index("second query") < text.index("target doc")
    assert filled.suffix("target doc").endswith(":") and filled.suffix("target doc").count("target doc") == 1


def test_builtin_prompts_are_the_three_families():
    names = builtin_prompts()
    assert {"inpars", "inpars-gbq"} <= set(names)
    assert {n for n in names if n.startswith("promptagator-")} == {f"promptagator-{d}" for d in BEIR_18}


def test_a_users_prompt_file_with_its_own_fields(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        'header: "Write a question.\\n"\n'
        'example_template: "Text: {document}\\nTopic: {topic}\\nQ: {query}\\n"\n'
        'template: "Text: {document}\\nQ:"\n'
        "examples:\n  - {document: d1, query: q1, topic: t1}\n"
    )
    prompt = load_prompt(str(path))
    assert prompt.name == "mine"
    assert prompt.render("x") == "Write a question.\nText: d1\nTopic: t1\nQ: q1\nText: x\nQ:"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("template: 'no placeholder'\n", "mine.yaml:1: 'template' has no {document} placeholder"),
        ("template: '{document} {query}'\n", "mine.yaml:1: 'template' uses unknown placeholder {query}"),
        ("template: '{document'\n", "mine.yaml:1: 'template' is not a valid template"),
        ("templat: '{document}'\n", "mine.yaml: a prompt file needs at least 'template'"),
        ("template: '{document}'\nheadr: x\n", "mine.yaml:2: unknown key 'headr'; did you mean 'header'?"),
        ("template: '{document}'\nzzz: x\n", "mine.yaml:2: unknown key 'zzz'; known keys: description, example_template, "),
        (
            "template: '{document}'\nexample_template: '{document} {bad}'\nexamples:\n  - {document: a, query: b}\n",
            "mine.yaml:4: example 1 has no 'bad', which example_template uses",
        ),
        (
            "template: '{document}'\nexample_template: '{document}'\nexamples:\n  - {document: a}\n",
            "mine.yaml:4: example 1 needs 'document' and 'query'",
        ),
        ("template: '{document}'\nexamples:\n  - {document: a, query: b}\n", "mine.yaml: examples without 'example_template'"),
        ("template: '{document}'\nexamples_from: web\n", "mine.yaml:2: examples_from 'web' is not one of file, dataset"),
        (
            "template: '{document}'\nexample_template: '{document}{query}'\nexamples_from: dataset\n",
            "mine.yaml:3: examples_from: dataset needs num_examples",
        ),
        (
            "template: '{document}'\nexample_template: '{document}{x}'\nexamples_from: dataset\nnum_examples: 2\n",
            "mine.yaml:2: example_template uses {x}, which dataset examples do not have",
        ),
        ("template: [unclosed\n", "mine.yaml:2: invalid YAML"),
    ],
)
def test_prompt_file_errors_say_where_and_what(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_prompt(str(path))
    assert message in str(err.value)


def test_unknown_prompt_names_suggest_and_list():
    with pytest.raises(
        InparsError, match="unknown prompt 'promptagator-fiq'; did you mean 'promptagator-fiqa'\\?.*published:<name>"
    ):
        load_prompt("promptagator-fiq")
    with pytest.raises(InputError, match="prompt file not found"):
        load_prompt("absent.yaml")


# ---------------------------------------------------------------------------------------------- published


# A file in the published layout (static whole prompts, dynamic one-example templates); the texts are made up.
PUBLISHED_LAYOUT = """\
vanilla:
  mode: static
  template: |
    Example 1:
    Document: Some text {with braces}.
    Relevant Query: a question

    Example 2:
    Document: {document}
    Relevant Query: {query}
dyn-labelled:
  mode: dynamic
  template: |
    Passage: {document}
    Claim: {query}
dyn-bare:
  mode: dynamic
  template: |
    {document}
    {query}
"""


def test_published_static_prompts_convert_to_the_same_text():
    prompt = convert_published(PUBLISHED_LAYOUT, "vanilla", "x")
    expected = (
        "Example 1:\nDocument: Some text {with braces}.\nRelevant Query: a question\n\nExample 2:\nDocument: DOC\nRelevant Query:"
    )
    assert prompt.render("DOC") == expected
    assert prompt.name == "published:vanilla" and prompt.header.endswith("Example 2:\n")


def test_published_dynamic_prompts_take_examples_from_the_dataset():
    prompt = convert_published(PUBLISHED_LAYOUT, "dyn-labelled", "x").with_examples([FewShotExample("d1", "q1")])
    assert prompt.render("DOC") == "Passage: d1\nClaim: q1\nPassage: DOC\nClaim:"
    bare = convert_published(PUBLISHED_LAYOUT, "dyn-bare", "x").with_examples([FewShotExample("d1", "q1")])
    assert bare.render("DOC") == "d1\nq1\nDOC\n"  # the query's own line is kept open, or the first token would end it
    with pytest.raises(InparsError, match="no prompt 'nope' in the published file; available: published:dyn-bare"):
        convert_published(PUBLISHED_LAYOUT, "nope", "x")


def test_a_published_file_with_another_hash_is_refused(tmp_path, monkeypatch):
    from inpars import prompt as prompt_module

    monkeypatch.setenv("INPARS_CACHE", str(tmp_path))
    target = tmp_path / "prompts" / f"inpars-templates-{prompt_module.PUBLISHED_SHA256[:12]}.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(PUBLISHED_LAYOUT)
    digest = hashlib.sha256(PUBLISHED_LAYOUT.encode()).hexdigest()
    with pytest.raises(InparsError, match=f"sha256 {digest} differs from the pinned"):
        load_prompt("published:inpars")


def test_offline_the_published_prompt_says_how_to_get_it(tmp_path, monkeypatch):
    from inpars import prompt as prompt_module

    monkeypatch.setenv("INPARS_CACHE", str(tmp_path))
    monkeypatch.setattr(prompt_module, "PUBLISHED_URL", "http://127.0.0.1:9/templates.yaml")  # nothing listens there
    with pytest.raises(InparsError, match="could not be downloaded.*needs a network once.*save it as .*inpars-templates-"):
        load_prompt("published:inpars")


@pytest.mark.network
def test_the_published_prompt_file_downloads_and_matches_its_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("INPARS_CACHE", str(tmp_path))
    vanilla = load_prompt("published:inpars")
    assert vanilla.render("DOC").endswith("Document: DOC\nRelevant Query:") and vanilla.render("DOC").count("Example") == 4
    assert load_prompt("published:inpars-gbq").render("DOC").endswith("Good Question:")
    for dataset in (
        "arguana", "fiqa", "hotpotqa", "dbpedia-entity", "nfcorpus", "webis-touche2020", "trec-covid", "scifact", "scidocs",
        "fever",
    ):
        assert load_prompt(f"published:promptagator-{dataset}").needs_examples


# ---------------------------------------------------------------------------------------------- few-shot examples


def test_fewshot_pool_prefers_train_then_dev_then_test(tiny_beir, tmp_path):
    assert load_pool(str(tiny_beir)).split == "train"
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_beir, copy)
    (copy / "qrels" / "train.tsv").rename(copy / "qrels" / "dev.tsv")
    assert load_pool(str(copy)).split == "dev"
    (copy / "qrels" / "dev.tsv").unlink()
    assert load_pool(str(copy)).split == "test"


def test_fewshot_examples_are_seeded_judged_pairs(tiny_beir):
    from inpars.datasets import load_dataset

    docs = load_dataset(str(tiny_beir)).docs
    pool = load_pool(str(tiny_beir))
    first = draw_examples(pool, docs, 3, seed=1)
    assert first == draw_examples(pool, docs, 3, seed=1) and first != draw_examples(pool, docs, 3, seed=2)
    for example in first:
        assert pool.qrels[example.query_id][example.doc_id] > 0
        assert example.query == pool.queries[example.query_id].text and example.document == docs[example.doc_id].full_text
    with pytest.raises(InparsError, match="has 12 judged queries with a relevant document in the corpus, fewer than the 13"):
        draw_examples(pool, docs, 13, seed=1)


def test_fewshot_pool_of_the_embedded_collection_is_its_test_split():
    pool = load_pool("faq-construction")
    assert pool.split == "test" and len(pool.qrels) == 503


def test_parse_prompt_names_a_source_without_a_name():
    assert parse_prompt("template: '{document}'\n", "somewhere/my-prompt.yaml").name == "my-prompt"


@pytest.mark.network
def test_beir_fewshot_pools_use_train_where_beir_has_it():
    scifact = load_pool("beir/scifact")
    assert scifact.split == "train" and len(scifact.qrels) > 500
    assert load_pool("beir/arguana").split == "test"  # ArguAna has only a test split
