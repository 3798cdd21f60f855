"""Promptagator few-shot examples from the published ``inpars/fewshot-examples`` files, offline with a stand-in file:
loading, the pinned hash, what an offline run says, the per-document order, and the evaluation leaving them out."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
from dataclasses import replace

import pytest

from inpars.config import GenerateConfig, load_pipeline_config
from inpars.errors import InparsError, InputError
from inpars.generate import fewshot
from inpars.generate.fewshot import example_order, load_published_examples, published_corpus, published_examples_path
from inpars.io import read_json, read_synthetic
from inpars.prompt import FewShotExample

REVISION = "0123abc"
# A stand-in for data/<corpus>.json of inpars/fewshot-examples: the published layout, made-up texts. Query ids q12..q17
# are test queries of the tiny BEIR folder, so the evaluation must leave out the ones drawn.
STAND_IN_ROWS = [
    {
        "query_id": f"q{i}",
        "doc_id": f"x{i}",
        "query": f"what is the {word} river",
        "document": f"the {word} river is old and {word} stone",
    }
    for i, word in zip(range(12, 18), ("green", "blue", "red", "small", "large", "cold"))
]
STAND_IN = "".join(json.dumps(row) + "\n" for row in STAND_IN_ROWS).encode()
STAND_IN_SHA256 = hashlib.sha256(STAND_IN).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INPARS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _place(corpus: str = "tiny", data: bytes = STAND_IN):
    target = published_examples_path(corpus, REVISION)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def test_published_examples_load_in_file_order_and_are_checked(cache):
    target = _place()
    assert target == cache / "fewshot-examples" / REVISION / "tiny.json"
    published = load_published_examples("tiny", REVISION, STAND_IN_SHA256)
    assert published.verified and published.sha256 == STAND_IN_SHA256 and published.path == target
    assert [e.query_id for e in published.rows] == [f"q{i}" for i in range(12, 18)]
    assert published.rows[0] == FewShotExample(
        document="the green river is old and green stone", query="what is the green river", query_id="q12", doc_id="x12"
    )
    drawn = fewshot.draw_published(published, 3, seed=1)
    assert drawn == fewshot.draw_published(published, 3, seed=1) and len({e.query_id for e in drawn}) == 3
    with pytest.raises(InparsError, match="holds 6 examples, fewer than the 7 few-shot examples asked for"):
        fewshot.draw_published(published, 7, seed=1)


def test_an_unpinned_file_is_used_and_its_hash_logged(cache, caplog):
    _place()
    published = load_published_examples("tiny", REVISION, None)
    assert not published.verified and published.sha256 == STAND_IN_SHA256
    assert f"pin it with --set generate.fewshot_sha256={STAND_IN_SHA256}" in caplog.text


def test_a_file_with_another_hash_is_refused_in_one_line(cache):
    target = _place(data=STAND_IN + b"\n")
    digest = hashlib.sha256(STAND_IN + b"\n").hexdigest()
    with pytest.raises(InparsError) as caught:
        load_published_examples("tiny", REVISION, STAND_IN_SHA256)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{target}: sha256 {digest} differs from the pinned {STAND_IN_SHA256} (generate.fewshot_sha256)")


def test_a_malformed_file_names_its_line(cache):
    _place(data=STAND_IN + b'{"query_id": "q1", "doc_id": "d1", "query": "", "document": "x"}\n')
    with pytest.raises(InputError, match=r"tiny.json:7: 'query' and 'document' should be non-empty texts"):
        load_published_examples("tiny", REVISION, None)


def test_offline_the_error_says_exactly_where_to_put_the_file(cache, monkeypatch):
    monkeypatch.setattr(fewshot, "PUBLISHED_URL", "http://127.0.0.1:9/{repo}/{revision}/{corpus}.json")  # nothing listens there
    with pytest.raises(InparsError) as caught:
        load_published_examples("scifact", REVISION, STAND_IN_SHA256)
    message = str(caught.value)
    assert "\n" not in message
    assert "could not be downloaded from http://127.0.0.1:9/inpars/fewshot-examples/0123abc/scifact.json" in message
    assert (
        f"save it as {cache / 'fewshot-examples' / REVISION / 'scifact.json'}, or use generate.fewshot_source=dataset" in message
    )


class _Response(io.BytesIO):
    def __init__(self, data: bytes, headers: dict) -> None:
        super().__init__(data)
        self.headers = headers


def test_a_download_is_checked_kept_and_its_commit_recorded(cache, monkeypatch):
    asked = []

    def fake_urlopen(url, timeout):
        asked.append(url)
        return _Response(STAND_IN, {"X-Repo-Commit": "f" * 40})

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    published = load_published_examples("scifact", REVISION, STAND_IN_SHA256)
    assert asked == [f"https://huggingface.co/datasets/inpars/fewshot-examples/resolve/{REVISION}/data/scifact.json"]
    assert published.commit == "f" * 40 and published.path.read_bytes() == STAND_IN
    load_published_examples("scifact", REVISION, STAND_IN_SHA256)  # the kept file: no second download
    assert len(asked) == 1
    # A download that does not match the pinned hash is not kept.
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: _Response(b"{}\n", {}))
    with pytest.raises(InparsError, match="differs from the pinned"):
        load_published_examples("nfcorpus", REVISION, STAND_IN_SHA256)
    assert not published_examples_path("nfcorpus", REVISION).exists()


def test_a_corpus_without_a_file_says_so(cache, monkeypatch):
    def not_found(url, timeout):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr("urllib.request.urlopen", not_found)
    with pytest.raises(
        InparsError,
        match=(
            r"robust04.json: HTTP 404 \(Not Found\); inpars/fewshot-examples has no data/robust04.json at revision 0123abc, or "
            r"the hub does not know that revision; set generate.fewshot_corpus"
        ),
    ):
        load_published_examples("robust04", REVISION, None)


def test_the_corpus_is_the_beir_name_unless_given():
    assert published_corpus("beir/trec-covid", None) == "trec-covid"
    assert published_corpus("beir/trec-covid", "trec_covid") == "trec_covid"
    with pytest.raises(InparsError, match="dataset 'some/folder' has no BEIR name.*set generate.fewshot_corpus"):
        published_corpus("some/folder", None)


def test_the_order_is_seeded_per_document_and_differs_across_documents():
    examples = [FewShotExample(f"doc {i}", f"query {i}", query_id=f"q{i}") for i in range(3)]
    orders = {doc: example_order(examples, 0, doc) for doc in (f"d{i}" for i in range(40))}
    assert all(example_order(examples, 0, doc) == order for doc, order in orders.items())  # deterministic per (seed, doc)
    assert all(sorted(order, key=lambda e: e.query_id) == examples for order in orders.values())  # a reordering, nothing lost
    ids = {doc: tuple(e.query_id for e in order) for doc, order in orders.items()}
    assert len(set(ids.values())) == 6  # 40 documents see all 6 orders of 3 examples
    assert any(example_order(examples, 1, doc) != order for doc, order in orders.items())  # another seed, other orders


def test_config_refuses_what_cannot_run():
    assert GenerateConfig().fewshot_source == "dataset" and not GenerateConfig().fewshot_shuffle
    with pytest.raises(InputError, match=r"<recipe>:\d+: 'generate.fewshot_revision' is unset, and fewshot_source is published"):
        load_pipeline_config(text="generate:\n  fewshot_source: published\n")
    with pytest.raises(InputError, match=r"<recipe>:3: 'generate.fewshot_sha256' is 'abc', not 64 hexadecimal digits"):
        load_pipeline_config(text="generate:\n  fewshot_source: published\n  fewshot_sha256: abc\n  fewshot_revision: x\n")
    with pytest.raises(InputError, match="'generate.fewshot_source' is 'hub'; use one of dataset, published"):
        load_pipeline_config(text="generate:\n  fewshot_source: hub\n")


class _Spy:
    """A generator that records the requests of every batch and passes them on."""

    def __init__(self, inner) -> None:
        self.inner, self.batches = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, requests, **kwargs):
        self.batches.append(list(requests))
        return self.inner.generate(requests, **kwargs)


@pytest.fixture(scope="module")
def generator(random_lm):
    from inpars.generate.hf import HFGenerator

    return HFGenerator(str(random_lm), device="cpu")


def test_generation_with_published_examples_reorders_them_per_document(generator, random_lm, tiny_beir, cache, tmp_path):
    from inpars.datasets import load_dataset
    from inpars.generate import generate_queries
    from inpars.generate.fewshot import without_fewshot_queries
    from inpars.generate.stage import _prompt_for
    from inpars.prompt import load_prompt

    _place()
    data = load_dataset(str(tiny_beir))
    config = GenerateConfig(
        model=str(random_lm), device="cpu", max_new_tokens=4, batch_size=4, prompt="promptagator-fiqa", num_docs=16,
        num_examples=3, fewshot_source="published", fewshot_corpus="tiny", fewshot_revision=REVISION,
        fewshot_sha256=STAND_IN_SHA256, fewshot_shuffle=True,
    )
    spy = _Spy(generator)
    out = tmp_path / "gen" / "q.jsonl"
    summary = generate_queries(data.docs.values(), config, out, generator=spy, dataset=str(tiny_beir))
    assert summary.generated == 16
    record = read_json(out.parent / "fewshot_query_ids.json")
    assert (
        record["source"] == "published"
        and record["sha256"] == STAND_IN_SHA256
        and record["sha256_verified"]
        and record["shuffle_per_document"]
    )
    assert record["corpus"] == "tiny" and record["revision"] == REVISION and len(record["query_ids"]) == 3
    assert set(record["query_ids"]) <= {row["query_id"] for row in STAND_IN_ROWS}
    # Every batch shares one prefix (the hf backend needs it); the documents see several orders of the same 3 examples.
    prefixes = [{r.prefix for r in batch} for batch in spy.batches]
    assert all(len(p) == 1 for p in prefixes) and len(set().union(*prefixes)) > 1
    assert sum(len(b) for b in spy.batches) == 16
    drawn = load_prompt("promptagator-fiqa").with_examples(
        [
            FewShotExample(document=e["document"], query=e["query"])
            for q in record["query_ids"]
            for e in STAND_IN_ROWS
            if e["query_id"] == q
        ]
    )
    expected = {_prompt_for(drawn, config, row.doc_id).prefix for row in read_synthetic(out)}
    assert expected == set().union(*prefixes)
    # A rerun elsewhere gives the same queries; without the shuffle, one prefix for all.
    again = tmp_path / "again" / "q.jsonl"
    generate_queries(data.docs.values(), config, again, generator=generator, dataset=str(tiny_beir))
    assert again.read_text() == out.read_text()
    fixed = _Spy(generator)
    generate_queries(
        data.docs.values(), replace(config, fewshot_shuffle=False), tmp_path / "fixed" / "q.jsonl", generator=fixed,
        dataset=str(tiny_beir),
    )
    assert len({r.prefix for batch in fixed.batches for r in batch}) == 1
    # The evaluation leaves out the test queries shown as examples.
    kept = without_fewshot_queries(data.qrels, out.parent)
    assert set(record["query_ids"]) & set(data.qrels) and not set(record["query_ids"]) & set(kept)
    assert set(kept) == set(data.qrels) - set(record["query_ids"])
