from __future__ import annotations

import json
import os
import stat

import pytest

from inpars import io
from inpars.data import Doc, Query, SyntheticQuery, TrainingExample
from inpars.errors import InparsError, InputError


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), io.atomic_write(target) as handle:
        handle.write("half a file")
        raise RuntimeError("crash")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_beir_folder_round_trip(tmp_path):
    docs = [Doc("d1", "text one", "Title"), Doc("d2", "text two")]
    queries = [Query("q1", "first"), Query("q2", "second")]
    io.write_beir_folder(tmp_path, docs, queries, {"q1": {"d1": 1}, "q2": {"d2": 2}})
    assert io.read_beir_corpus(tmp_path / "corpus.jsonl") == {d.doc_id: d for d in docs}
    assert io.read_beir_queries(tmp_path / "queries.jsonl") == {q.query_id: q for q in queries}
    assert io.read_qrels_tsv(tmp_path / "qrels" / "test.tsv") == {"q1": {"d1": 1}, "q2": {"d2": 2}}


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "x"}\n\n{"_id": "b", "text": \n')
    with pytest.raises(InputError, match=r"corpus.jsonl:3: invalid JSON"):
        io.read_beir_corpus(path)


def test_missing_field_and_duplicate_ids(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "x"}\n{"_id": "b"}\n')
    with pytest.raises(InputError, match=r"corpus.jsonl:2: missing field\(s\) text"):
        io.read_beir_corpus(path)
    path.write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    with pytest.raises(InputError, match=r"corpus.jsonl:2: duplicate document id 'a'"):
        io.read_beir_corpus(path)


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match=r"nope.jsonl: JSONL file not found; check the path"):
        io.read_synthetic(tmp_path / "nope.jsonl")


def test_qrels_errors(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(InputError, match=r"test.tsv:2: expected 3 tab-separated fields, found 2"):
        io.read_qrels_tsv(path)
    path.write_text("q1\td1\thigh\n")
    with pytest.raises(InputError, match=r"test.tsv:1: relevance 'high' is not an integer"):
        io.read_qrels_tsv(path)


def test_trec_run_round_trip_and_ranking(tmp_path):
    run = {"q1": {"d1": 0.5, "d2": 2.0, "d3": 0.5}}
    path = tmp_path / "run.trec"
    io.write_trec_run(path, run, tag="t")
    lines = path.read_text().splitlines()
    assert lines == ["q1 Q0 d2 1 2.0 t", "q1 Q0 d3 2 0.5 t", "q1 Q0 d1 3 0.5 t"]  # ties: greater id first, as trec_eval
    assert io.read_trec_run(path) == run
    path.write_text("q1 Q0 d1 1 x t\n")
    with pytest.raises(InputError, match=r"run.trec:1: score 'x' is not a finite number"):
        io.read_trec_run(path)


def test_trec_run_keeps_scores_1e9_apart(tmp_path):
    # monoT5 log P(true) of confident documents: all above -5e-7, one nanounit apart, ids in the opposite order
    scores = {f"d{i}": -5e-7 + i * 1e-9 for i in range(5)}
    scores["e"] = -1e-12
    scores["f"] = -1e-12 - 1e-21
    run = {"q1": scores}
    path = tmp_path / "run.trec"
    io.write_trec_run(path, run)
    lines = [line.split() for line in path.read_text().splitlines()]
    assert [parts[2] for parts in lines] == ["e", "f", "d4", "d3", "d2", "d1", "d0"]
    assert len({parts[4] for parts in lines}) == len(scores)
    assert io.read_trec_run(path) == run  # every float reads back exactly
    reread = tmp_path / "again.trec"
    io.write_trec_run(reread, io.read_trec_run(path))
    assert reread.read_text() == path.read_text()


def test_synthetic_round_trip_keeps_extra_fields(tmp_path):
    rows = [SyntheticQuery("q1", "d1", "what is x", (-0.5, -1.0), "inpars", "m", {"shard": 1})]
    path = tmp_path / "q.jsonl"
    io.write_synthetic(path, rows)
    back = io.read_synthetic(path)
    assert back == rows and back[0].extra == {"shard": 1}
    assert json.loads(path.read_text())["log_probs"] == [-0.5, -1.0]


def test_synthetic_bad_log_probs(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"query_id": "q", "doc_id": "d", "text": "t", "log_probs": "bad"}\n')
    with pytest.raises(InputError, match=r"q.jsonl:1: log_probs must be a list of numbers"):
        io.read_synthetic(path)


def test_training_round_trip_and_bad_label(tmp_path):
    path = tmp_path / "train.jsonl"
    examples = [TrainingExample("q", "query", "d", "doc", 1), TrainingExample("q", "query", "e", "other", 0)]
    io.write_training(path, examples)
    assert io.read_training(path) == examples
    path.write_text('{"query": "q", "doc": "d", "label": 3}\n')
    with pytest.raises(InputError, match=r"train.jsonl:1: label 3 is not 0 or 1"):
        io.read_training(path)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        with io.atomic_write(tmp_path / "out.txt") as handle:
            handle.write("x\n")
        with io.atomic_directory(tmp_path / "folder") as staging:
            (staging / "inside.txt").write_text("y\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o777 & ~mask


def test_parse_yaml_gives_the_data_and_the_line_of_every_key():
    text = "name: x\ngenerate:\n  model: m\nfilter:\n  steps:\n    - name: dedup\n    - name: lm_score\n      top_k: 3\n"
    data, lines = io.parse_yaml(text, "r.yaml", "fix the recipe")
    assert data["filter"]["steps"][1] == {"name": "lm_score", "top_k": 3}
    assert lines == {
        "name": 1, "generate": 2, "generate.model": 3, "filter": 4, "filter.steps": 5,
        "filter.steps.0": 6, "filter.steps.0.name": 6, "filter.steps.1": 7, "filter.steps.1.name": 7, "filter.steps.1.top_k": 8,
    }
    assert io.parse_yaml("", "r.yaml", "fix it") == (None, {})
    with pytest.raises(InputError, match=r"^r.yaml:2: invalid YAML \(mapping values are not allowed here\); fix it$"):
        io.parse_yaml("a: 1\n  b: 2\n", "r.yaml", "fix it")
    with pytest.raises(InputError, match=r"^r.yaml:1: invalid YAML \(could not determine a constructor"):
        io.parse_yaml("a: !!python/object/apply:os.system [ls]\n", "r.yaml", "fix it")


def test_download_streams_to_the_target_and_a_failure_says_where_to_put_the_file(tmp_path):
    source = tmp_path / "source.jsonl"
    source.write_bytes(b"x" * (3 << 20))
    target = tmp_path / "cache" / "copy.jsonl"
    headers = io.download(source.as_uri(), target, "the file")
    assert target.read_bytes() == source.read_bytes() and isinstance(headers, dict)
    missing = (tmp_path / "missing.jsonl").as_uri()
    with pytest.raises(InparsError) as caught:
        io.download(missing, tmp_path / "kept.jsonl", "the released queries", "run without them")
    message = str(caught.value)
    assert message.startswith(f"the released queries could not be downloaded from {missing} (")
    assert message.endswith(f"Offline, download it elsewhere and save it as {tmp_path / 'kept.jsonl'}, or run without them")
    assert not (tmp_path / "kept.jsonl").exists()


def test_a_checked_download_is_not_kept_when_the_check_fails(tmp_path):
    source = tmp_path / "source.yaml"
    source.write_bytes(b"a: 1\n")

    def refuse(data: bytes) -> None:
        raise InparsError(f"{len(data)} bytes, not the pinned file")

    with pytest.raises(InparsError, match="^5 bytes, not the pinned file$"):
        io.download(source.as_uri(), tmp_path / "pinned.yaml", "the pinned file", check=refuse)
    assert not (tmp_path / "pinned.yaml").exists() and not list(tmp_path.glob(".pinned.yaml.*"))
