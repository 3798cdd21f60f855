"""The generation stage: options, skipping long prompts, resuming, refusing mixed settings, shards and merge."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from generate_helpers import assert_same_rows, make_docs
from generate_helpers import read_rows as _rows

from inpars.config import GenerateConfig
from inpars.errors import InparsError, InputError
from inpars.generate import GenerationRequest, generate_queries, merge_shards
from inpars.generate.hf import HFGenerator
from inpars.generate.stage import in_shard, meta_path, partial_meta_path, partial_path
from inpars.io import read_json, read_synthetic
from inpars.prompt import load_prompt


@pytest.fixture(scope="module")
def generator(random_lm):
    return HFGenerator(str(random_lm), device="cpu")


@pytest.fixture(scope="module")
def config(random_lm) -> GenerateConfig:
    return GenerateConfig(model=str(random_lm), device="cpu", max_new_tokens=6, batch_size=4)


def test_samples_documents_with_the_seed(generator, config, tmp_path):
    docs = make_docs(30)
    generate_queries(docs, replace(config, num_docs=7, seed=1), tmp_path / "a.jsonl", generator=generator)
    generate_queries(docs, replace(config, num_docs=7, seed=1), tmp_path / "b.jsonl", generator=generator)
    generate_queries(docs, replace(config, num_docs=7, seed=2), tmp_path / "c.jsonl", generator=generator)
    a, b, c = (sorted(r["doc_id"] for r in _rows(tmp_path / f"{n}.jsonl")) for n in "abc")
    assert len(a) == 7 and a == b and a != c


def test_several_sampled_queries_per_document(generator, config, tmp_path):
    summary = generate_queries(
        make_docs(3), replace(config, queries_per_doc=3, temperature=1.0, top_p=0.9), tmp_path / "q.jsonl", generator=generator
    )
    rows = _rows(tmp_path / "q.jsonl")
    assert summary.generated == 9 and [r["query_id"] for r in rows[:3]] == ["d000-q0", "d000-q1", "d000-q2"]
    assert len({r["text"] for r in rows}) > 3
    assert all(len(r["log_probs"]) <= 6 for r in rows)


def test_several_queries_need_sampling(generator, config, tmp_path):
    with pytest.raises(
        InparsError,
        match="'queries_per_doc' is 2 with temperature 0; greedy decoding repeats the same query: set temperature > 0",
    ):
        generate_queries(make_docs(2), replace(config, queries_per_doc=2), tmp_path / "q.jsonl", generator=generator)


def test_prompts_longer_than_the_context_are_skipped_and_counted(generator, config, tmp_path):
    docs = make_docs(12)
    lengths = {d.doc_id: len(d.text.split()) for d in docs}
    base = generator.prompt_length(GenerationRequest(load_prompt("inpars").prefix, ""))
    limit = sorted(lengths.values())[6]
    context = base + limit + 12 + config.max_new_tokens  # the template adds a few tokens around the document
    summary = generate_queries(docs, replace(config, context_length=context), tmp_path / "q.jsonl", generator=generator)
    assert 0 < summary.skipped_too_long < len(docs)
    assert summary.generated + summary.skipped_too_long == len(docs)
    skipped = read_json(meta_path(tmp_path / "q.jsonl"))["skipped_doc_ids"]
    assert len(skipped) == summary.skipped_too_long and not set(skipped) & {r["doc_id"] for r in _rows(tmp_path / "q.jsonl")}
    # Truncating documents to a few tokens brings every prompt under the same context.
    truncated = generate_queries(
        docs, replace(config, context_length=context, max_doc_tokens=3), tmp_path / "t.jsonl", generator=generator
    )
    assert truncated.skipped_too_long == 0 and truncated.generated == len(docs)


def test_rerun_resumes_from_the_partial_rows(generator, config, tmp_path):
    docs = make_docs(10)
    full = tmp_path / "full.jsonl"
    generate_queries(docs, config, full, generator=generator)
    out = tmp_path / "q.jsonl"
    generate_queries(docs, config, out, generator=generator)
    # Simulate an interruption: the final file gone, the meta back to running, 4 rows and a torn line left.
    lines = full.read_text().splitlines(keepends=True)
    out.unlink()
    meta = read_json(meta_path(out))
    meta_path(out).write_text(json.dumps({**meta, "status": "running"}))
    partial_path(out).write_text("".join(lines[:4]) + lines[4][:10])
    summary = generate_queries(docs, config, out, generator=generator)
    assert summary.resumed == 4 and summary.generated == 10
    assert_same_rows(out, full)
    assert not partial_path(out).exists()


def test_rerun_of_a_finished_output_does_nothing(generator, config, tmp_path):
    out = tmp_path / "q.jsonl"
    generate_queries(make_docs(5), config, out, generator=generator)
    before = out.stat().st_mtime_ns
    summary = generate_queries(make_docs(5), config, out, generator=generator)
    assert summary.resumed == summary.generated == 5 and out.stat().st_mtime_ns == before


def test_partial_rows_of_other_settings_are_refused(generator, config, tmp_path):
    out = tmp_path / "q.jsonl"
    generate_queries(make_docs(5), config, out, generator=generator)
    # What a run with the first settings leaves when it is killed: a few rows and what they were made with.
    partial_path(out).write_text(out.read_text().splitlines(keepends=True)[0])
    partial_meta_path(out).write_text(json.dumps({**read_json(meta_path(out)), "status": "running"}))
    with pytest.raises(InparsError, match="holds queries made with other settings \\(changed: max_new_tokens\\).*--restart"):
        generate_queries(make_docs(5), replace(config, max_new_tokens=3), out, generator=generator)
    summary = generate_queries(make_docs(5), replace(config, max_new_tokens=3), out, generator=generator, restart=True)
    assert summary.resumed == 0 and summary.generated == 5
    # Settings that only change speed may differ on resume.
    assert generate_queries(make_docs(5), replace(config, max_new_tokens=3, batch_size=1), out, generator=generator).resumed == 5


def test_partial_rows_without_their_meta_are_refused(generator, config, tmp_path):
    out = tmp_path / "q.jsonl"
    partial_path(out).write_text('{"query_id": "d000-q", "doc_id": "d000", "text": "x"}\n')
    with pytest.raises(InparsError, match="has no q.jsonl.partial.meta.json beside it"):
        generate_queries(make_docs(3), config, out, generator=generator)


def test_a_repeated_row_in_the_partial_file_is_reported(generator, config, tmp_path):
    out = tmp_path / "q.jsonl"
    generate_queries(make_docs(3), config, out, generator=generator)
    row = out.read_text().splitlines(keepends=True)[0]
    meta = read_json(meta_path(out))
    meta_path(out).write_text(json.dumps({**meta, "status": "running"}))
    partial_path(out).write_text(row + row)
    with pytest.raises(InputError, match="q.jsonl.partial:2: duplicate query_id 'd000-q'"):
        generate_queries(make_docs(3), config, out, generator=generator)


def test_bad_shard_numbers_are_refused(generator, config, tmp_path):
    with pytest.raises(InparsError, match="shard 3 does not exist among 3 shard\\(s\\): use --shard 0..2"):
        generate_queries(make_docs(3), config, tmp_path / "q.jsonl", generator=generator, shard=3, num_shards=3)


def test_shards_split_by_document_id_and_merge_into_the_unsharded_output(generator, config, tmp_path):
    docs = make_docs(20)
    generate_queries(docs, replace(config, num_docs=15), tmp_path / "all.jsonl", generator=generator)
    shards = [tmp_path / f"s{i}.jsonl" for i in range(3)]
    for i, path in enumerate(shards):
        generate_queries(docs, replace(config, num_docs=15), path, generator=generator, shard=i, num_shards=3)
    owners = [{r["doc_id"] for r in _rows(p)} for p in shards]
    assert all(owners) and sum(map(len, owners)) == 15
    assert all(in_shard(d, i, 3) for i, ids in enumerate(owners) for d in ids)
    summary = merge_shards(shards, tmp_path / "merged.jsonl")
    assert summary.generated == summary.documents == 15
    assert_same_rows(tmp_path / "merged.jsonl", tmp_path / "all.jsonl")
    # The merged file counts as the finished unsharded run.
    assert generate_queries(docs, replace(config, num_docs=15), tmp_path / "merged.jsonl", generator=generator).resumed == 15


def test_merge_refuses_missing_repeated_unfinished_or_foreign_shards(generator, config, tmp_path):
    docs = make_docs(12)
    shards = [tmp_path / f"s{i}.jsonl" for i in range(3)]
    for i, path in enumerate(shards):
        generate_queries(docs, config, path, generator=generator, shard=i, num_shards=3)
    out = tmp_path / "m.jsonl"
    with pytest.raises(InparsError, match="shard\\(s\\) 2 of 3 missing"):
        merge_shards(shards[:2], out)
    with pytest.raises(InputError, match="shard 1 is given twice"):
        merge_shards([shards[0], shards[1], shards[1]], out)
    other = tmp_path / "other.jsonl"
    generate_queries(docs, replace(config, seed=5), other, generator=generator, shard=2, num_shards=3)
    with pytest.raises(InputError, match="made with other settings than"):
        merge_shards([shards[0], shards[1], other], out)
    meta = read_json(meta_path(shards[2]))
    meta_path(shards[2]).write_text(json.dumps({**meta, "status": "running"}))
    with pytest.raises(InputError, match="shard 2 is not finished"):
        merge_shards(shards, out)
    meta_path(shards[2]).write_text(json.dumps(meta))
    shards[2].write_text(shards[2].read_text().splitlines(keepends=True)[0])
    with pytest.raises(InputError, match="holds 1 queries, its meta says"):
        merge_shards(shards, out)
    with pytest.raises(InputError, match="missing: cannot tell which shard this is"):
        merge_shards([tmp_path / "nowhere.jsonl"], out)
    assert not out.exists()


def test_promptagator_examples_come_from_the_train_split_and_are_recorded(generator, config, tiny_beir, tmp_path):
    from inpars.datasets import load_dataset

    data = load_dataset(str(tiny_beir))
    cfg = replace(config, prompt="promptagator-fiqa", num_examples=2, num_docs=10)
    generate_queries(data.docs.values(), cfg, tmp_path / "gen" / "q.jsonl", generator=generator, dataset=str(tiny_beir))
    record = read_json(tmp_path / "gen" / "fewshot_query_ids.json")
    assert record["split"] == "train" and len(record["query_ids"]) == 2
    assert all(int(q[1:]) < 12 for q in record["query_ids"])  # train queries are q0..q11
    rows = read_synthetic(tmp_path / "gen" / "q.jsonl")
    assert all(r.extra["fewshot_query_ids"] == record["query_ids"] for r in rows)
    assert not {e["doc_id"] for e in record["examples"]} & {r.doc_id for r in rows}  # example documents are not targets
    with pytest.raises(InparsError, match="draws its few-shot examples from the dataset; pass the dataset"):
        generate_queries(data.docs.values(), cfg, tmp_path / "x.jsonl", generator=generator)


def test_evaluation_judgements_leave_out_the_fewshot_queries(generator, config, tiny_beir, tmp_path):
    from inpars.datasets import load_dataset
    from inpars.generate.fewshot import without_fewshot_queries

    data = load_dataset(str(tiny_beir))
    assert without_fewshot_queries(data.qrels, tmp_path) == data.qrels  # no few-shot examples used: nothing left out
    # A collection with only a test split: the examples are test queries, so the evaluation must drop them.
    faq = load_dataset("faq-construction")
    cfg = replace(config, prompt="promptagator-scifact", num_examples=3, num_docs=5, max_doc_tokens=32)
    generate_queries(faq.docs.values(), cfg, tmp_path / "q.jsonl", generator=generator, dataset="faq-construction")
    used = read_json(tmp_path / "fewshot_query_ids.json")["query_ids"]
    assert read_json(tmp_path / "fewshot_query_ids.json")["split"] == "test"
    kept = without_fewshot_queries(faq.qrels, tmp_path)
    assert set(faq.qrels) - set(kept) == set(used) and len(used) == 3
