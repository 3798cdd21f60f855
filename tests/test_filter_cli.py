"""The ``inpars filter`` command: the shorthand, recipe steps, the report folder and its one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.data import SyntheticQuery

QUERIES = [
    SyntheticQuery("q1", "d1", "what is a permit", (-0.1, -0.2)),
    SyntheticQuery("q2", "d1", "What is a permit?", (-0.3,)),
    SyntheticQuery("q3", "d2", "how tall", (-2.0, -2.0)),
    SyntheticQuery("q4", "d2", "", ()),
]


def write_queries(tmp_path):
    path = tmp_path / "queries.jsonl"
    io.write_synthetic(path, QUERIES)
    return path


def test_shorthand_flags(tmp_path):
    out = tmp_path / "kept.jsonl"
    result = CliRunner().invoke(
        app, ["filter", str(write_queries(tmp_path)), "-o", str(out), "--method", "sum_log_probs", "--top-k", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "kept 2 of 4" in result.output and "dropped by empty: 1, lm_score: 1" in result.output
    assert [q.query_id for q in io.read_synthetic(out)] == ["q1", "q2"]
    summary = json.loads((tmp_path / "kept-report" / "summary.json").read_text())
    assert summary["dropped"] == {"empty": 1, "lm_score": 1}
    assert (tmp_path / "kept-report" / "scores.png").is_file()


def test_recipe_steps_and_report_dir(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("filter:\n  steps:\n    - name: dedup\n    - name: min_length\n      min_words: 3\n")
    out, report = tmp_path / "k.jsonl", tmp_path / "rep"
    result = CliRunner().invoke(
        app, ["filter", str(write_queries(tmp_path)), "-o", str(out), "-c", str(recipe), "--report-dir", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert [q.query_id for q in io.read_synthetic(out)] == ["q1"]
    reasons = [(r["query_id"], r["step"], r["reason"]) for _, r in io.iter_jsonl(report / "dropped.jsonl")]
    assert reasons == [("q4", "empty", "empty"), ("q2", "dedup", "normalised duplicate"), ("q3", "min_length", "too short")]


def test_a_step_reading_documents_needs_the_dataset(tmp_path):
    result = CliRunner().invoke(app, ["filter", str(write_queries(tmp_path)), "--set", "filter.steps=[{name: consistency}]"])
    assert result.exit_code == 2
    assert (
        "a filter step reads the documents (consistency, reranker or copied); give the collection with --dataset" in result.output
    )


def test_a_bad_step_is_one_line_naming_the_recipe_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("filter:\n  steps:\n    - name: lm_scor\n")
    result = CliRunner().invoke(app, ["filter", str(write_queries(tmp_path)), "-c", str(recipe)])
    assert result.exit_code == 2
    assert f"error: {recipe}:3: unknown filter 'lm_scor'; did you mean 'lm_score'?" in " ".join(result.output.split())
