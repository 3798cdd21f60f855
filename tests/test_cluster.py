"""The cluster path without a cluster: reranking in shards of queries, one stage run on its own, the plan of a real
dataset from the tables alone, and the job scripts ``--slurm-dry-run`` writes. The real cluster: tests/slurm/."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.errors import InparsError
from inpars.pipeline import Selection
from inpars.rerank.base import merge_runs, shard_of_run

runner = CliRunner()


def test_reranking_in_shards_of_queries_merges_into_the_unsharded_run(faq, tmp_path):
    ids = sorted(faq.docs)[:10]
    first = {q: {d: float(-rank) for rank, d in enumerate(ids[i:] + ids[:i])} for i, q in enumerate(ids[:8])}
    io.write_trec_run(tmp_path / "bm25.trec", first)
    common = ["--model", "embedded:t5-tiny-random", "--reranker", "monot5", "--top-k", "6", "--batch-size", "4"]
    result = runner.invoke(app, ["rerank", str(tmp_path / "bm25.trec"), *common, "-o", str(tmp_path / "whole.trec")])
    assert result.exit_code == 0, result.output
    shards = []
    for shard in range(3):
        out = tmp_path / f"shard{shard}.trec"
        result = runner.invoke(
            app, ["rerank", str(tmp_path / "bm25.trec"), *common, "--shard", str(shard), "--num-shards", "3", "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        shards.append(out)
    parts = [io.read_trec_run(path) for path in shards]
    assert sum(len(p) for p in parts) == 8 and all(parts)  # every query in exactly one shard, no shard empty here
    assert merge_runs(shards) == io.read_trec_run(tmp_path / "whole.trec")  # the same scores, bit for bit


def test_a_query_in_two_shards_is_refused(tmp_path):
    io.write_trec_run(tmp_path / "a.trec", {"q1": {"d1": 1.0}})
    io.write_trec_run(tmp_path / "b.trec", {"q1": {"d2": 1.0}})
    with pytest.raises(InparsError, match=r"b.trec: query 'q1' is also in .*a.trec"):
        merge_runs([tmp_path / "a.trec", tmp_path / "b.trec"])


def test_query_shards_do_not_depend_on_order():
    run = {f"q{i}": {"d": 1.0} for i in range(20)}
    backwards = dict(reversed(list(run.items())))
    assert [sorted(shard_of_run(run, s, 3)) for s in range(3)] == [sorted(shard_of_run(backwards, s, 3)) for s in range(3)]


@pytest.mark.parametrize(("selection", "message"), [
    ({"stage": "score"}, "unknown stage 'score'; stages: generate, filter"),
    ({"stage": "filter", "num_shards": 2}, "stage 'filter' does not run in shards; only generate and rerank do"),
    ({"stage": "rerank", "shard": 2, "num_shards": 2}, "shard 2 does not exist among 2 shard(s): use --shard 0..1"),
])
def test_bad_stage_selections(selection, message):
    with pytest.raises(InparsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Selection(**selection)


def test_a_stage_whose_input_is_not_done_says_which_to_run_first(tmp_path):
    result = runner.invoke(
        app, ["reproduce", "faq-construction", "--condition", "demo", "--output-dir", str(tmp_path), "--stage", "filter"]
    )
    assert result.exit_code == 2
    assert (
        "stage 'generate' of" in result.output
        and "is not done for this config, and stage 'filter' reads it; run 'generate' first (--stage generate)" in result.output
    )


def test_merging_shards_that_are_not_done_names_them(tmp_path):
    result = runner.invoke(
        app,
        [
            "reproduce", "faq-construction", "--condition", "demo", "--output-dir", str(tmp_path), "--stage", "generate",
            "--num-shards", "3",
        ],
    )
    assert result.exit_code == 2
    assert (
        "shard(s) 0, 1, 2 of 3 of stage 'generate'" in result.output
        and "are not done; run them (--stage generate --shard I --num-shards 3), then merge" in result.output
    )


def test_the_plan_of_scifact_comes_from_the_tables_with_cited_rates(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(
        app, ["reproduce", "scifact", "--plan", "--json", "--shards", "4", "--rerank-shards", "2", "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    steps = {s["key"]: s for s in plan["steps"]}
    gen = steps["scifact/inpars-v2/generate"]
    assert gen["tasks"] == 4 and gen["status"] == "todo" and gen["todo"] == [0, 1, 2, 3]
    assert gen["estimate"]["units"] == 5183 and gen["estimate"]["gpu_hours"] == pytest.approx(5183 * 4.0 / 3600, abs=1e-3)
    assert gen["estimate"]["source"] == "papers-cost" and "2,000 GPU hours" in gen["estimate"]["citation"]
    assert gen["command"].endswith('--stage generate --shard "$SLURM_ARRAY_TASK_ID" --num-shards 4')
    rerank = steps["scifact/inpars-v2/rerank"]
    assert rerank["estimate"]["units"] == 300 * 1000 and rerank["estimate"]["upper_bound"] is True
    assert steps["scifact/inpars-v2/merge-rerank"]["after"] == ["scifact/inpars-v2/rerank"]
    assert steps["scifact/inpars-v2/evaluate"]["after"] == ["scifact/inpars-v2/retrieve", "scifact/inpars-v2/merge-rerank"]
    assert steps["scifact/bm25-flat/evaluate"]["after"] == ["scifact/bm25-flat/retrieve"]
    report = steps["scifact/report"]
    assert "scifact/inpars-v2/evaluate" in report["after"] and "--stage" not in report["command"]
    sizes = {d["name"]: d for d in plan["downloads"]}
    assert (
        sizes["EleutherAI/gpt-j-6b"]["size_bytes"] == 24213525376
        and sizes["EleutherAI/gpt-j-6b"]["size_source"] == "float32-parameters"
    )
    text = runner.invoke(app, ["reproduce", "scifact", "--plan", "-C", "inpars-v2", "--output-dir", str(tmp_path)]).output
    assert (
        "5,183 documents x 4 s, EleutherAI/gpt-j-6b, [papers-cost]" in text
        and "[papers-cost] the InPars papers' cost figures" in text
    )


def test_the_dry_run_writes_job_scripts_that_call_the_stage_commands(tmp_path):
    result = runner.invoke(
        app,
        [
            "reproduce", "scifact", "-C", "inpars-v2", "--slurm-dry-run", "--shards", "2", "--rerank-shards", "3", "--output-dir",
            str(tmp_path), "--partition", "gpu", "--gpus-per-task", "1", "--account", "ir", "--time", "12:00:00",
        ],
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "scifact" / "slurm"
    generate = (folder / "inpars-v2.generate.sbatch").read_text()
    assert "#SBATCH --array=0-1" in generate and "#SBATCH --requeue" in generate and "#SBATCH --gpus-per-task=1" in generate
    assert "#SBATCH --partition=gpu" in generate and "#SBATCH --account=ir" in generate and "#SBATCH --time=12:00:00" in generate
    assert (
        "reproduce scifact --condition inpars-v2 --output-dir" in generate
        and '--stage generate --shard "$SLURM_ARRAY_TASK_ID" --num-shards 2' in generate
    )
    negatives = (folder / "inpars-v2.negatives.sbatch").read_text()
    assert "--gpus-per-task" not in negatives and "--array" not in negatives and negatives.rstrip().endswith("--stage negatives")
    assert "#SBATCH --array=0-2" in (folder / "inpars-v2.rerank.sbatch").read_text()
    assert (folder / "inpars-v2.merge-rerank.sbatch").read_text().rstrip().endswith("--stage rerank --num-shards 3")
    assert "inpars-v2.generate: to submit tasks 0,1" in result.output.replace("scifact/", "").replace("/", ".")
    assert not (folder / "jobs.json").exists()  # nothing was submitted
