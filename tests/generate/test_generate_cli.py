"""The generation commands as a user runs them: a real kill and resume, sharding and merge, errors as one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from generate_helpers import assert_same_rows, make_docs
from typer.testing import CliRunner

import inpars.cli
from inpars.cli import app
from inpars.config import GenerateConfig
from inpars.data import Query
from inpars.generate import generate_queries
from inpars.io import write_beir_folder

ROOT = Path(inpars.cli.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kill-corpus")
    docs = make_docs(80, seed=3)
    write_beir_folder(folder, docs, [Query("q0", "x")], {"q0": {docs[0].doc_id: 1}})
    return folder


def _command(corpus: Path, model: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "inpars.cli", "generate", "--dataset", str(corpus), "--model", str(model), "--device", "cpu",
        "--batch-size", "1", "--max-new-tokens", "8", "--output", str(output), *extra,
    ]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_a_killed_run_resumes_without_losing_or_repeating_a_query(corpus, random_lm, tmp_path):
    out = tmp_path / "q.jsonl"
    partial = out.with_name("q.jsonl.partial")
    process = subprocess.Popen(_command(corpus, random_lm, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if partial.is_file() and partial.read_bytes().count(b"\n") >= 10:
            break
        time.sleep(0.01)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()[-2000:]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    written = partial.read_bytes().count(b"\n")
    assert 10 <= written < 80 and not out.exists()

    resumed = subprocess.run(
        _command(corpus, random_lm, out), env=_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (
        f"{written} resumed" in resumed.stdout or f"{written + 1} resumed" in resumed.stdout
    )  # +1: a row landing as it was killed

    reference = tmp_path / "reference.jsonl"
    from inpars.datasets import load_dataset

    config = GenerateConfig(model=str(random_lm), device="cpu", batch_size=1, max_new_tokens=8)
    generate_queries(load_dataset(str(corpus)).docs.values(), config, reference)
    assert_same_rows(out, reference)


def test_shards_and_merge_from_the_command_line(corpus, random_lm, tmp_path):
    runner = CliRunner()
    common = ["--dataset", str(corpus), "--model", str(random_lm), "--device", "cpu", "--max-new-tokens", "4", "--num-docs", "12"]
    for shard in range(2):
        result = runner.invoke(
            app, ["generate", *common, "--shard", str(shard), "--num-shards", "2", "--output", str(tmp_path / f"s{shard}.jsonl")]
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["merge", str(tmp_path / "s0.jsonl"), str(tmp_path / "s1.jsonl"), "--output", str(tmp_path / "all.jsonl")]
    )
    assert result.exit_code == 0, result.output
    assert "12 queries for 12 documents from 2 shards" in result.output
    result = runner.invoke(app, ["merge", str(tmp_path / "s0.jsonl"), "--output", str(tmp_path / "bad.jsonl")])
    assert result.exit_code == 2 and "shard(s) 1 of 2 missing" in result.output


def test_generate_errors_are_one_line(corpus, random_lm, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "generate", "--dataset", str(corpus), "--model", str(random_lm), "--prompt", "inpar", "--output",
            str(tmp_path / "q.jsonl"),
        ],
    )
    assert result.exit_code == 2
    assert "error: unknown prompt 'inpar'; did you mean 'inpars'?" in result.output


def test_the_openai_flags_set_the_openai_block(corpus, completion_server, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-flag")
    out = tmp_path / "q.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "generate", "--dataset", str(corpus), "--backend", "openai", "--model", "served-model", "--num-docs", "3",
            "--api-base", completion_server.url, "--api-key-env", "MY_KEY", "--concurrency", "2", "--output", str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 3 and completion_server.authorizations == ["Bearer sk-flag"] * 3
    # Flags of a backend that is not the one chosen are refused in one line, not ignored.
    result = CliRunner().invoke(
        app, ["generate", "--dataset", str(corpus), "--concurrency", "2", "--output", str(tmp_path / "hf.jsonl")]
    )
    assert result.exit_code == 2
    refusal = "error: command line: 'generate.openai' is set, but backend is 'hf'; use backend: openai, or leave the block out"
    assert refusal in result.output


def test_evaluate_leaves_out_the_fewshot_queries(tiny_beir, tmp_path):
    from inpars.io import write_json, write_trec_run

    # A run that ranks q12's relevant document first and fails every other query.
    write_trec_run(tmp_path / "run.trec", {"q12": {"d012": 2.0}, **{f"q{i}": {"d059": 1.0} for i in range(13, 20)}})
    write_json(tmp_path / "fewshot_query_ids.json", {"query_ids": [f"q{i}" for i in range(13, 20)]})
    runner = CliRunner()
    plain = runner.invoke(app, ["evaluate", str(tmp_path / "run.trec"), "--dataset", str(tiny_beir), "-m", "RR@10"])
    excluded = runner.invoke(
        app,
        ["evaluate", str(tmp_path / "run.trec"), "--dataset", str(tiny_beir), "-m", "RR@10", "--exclude-fewshot", str(tmp_path)],
    )
    assert "0.1250" in plain.output and "1.0000" in excluded.output
    (tmp_path / "fewshot_query_ids.json").write_text('{"query_ids": [1]}')
    bad = runner.invoke(
        app, ["evaluate", str(tmp_path / "run.trec"), "--dataset", str(tiny_beir), "--exclude-fewshot", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "fewshot_query_ids.json: expected an object with 'query_ids', a list of strings" in bad.output
