from __future__ import annotations

from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.data import SyntheticQuery

runner = CliRunner()


def test_help_lists_every_stage():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("generate", "filter", "negatives", "train", "retrieve", "rerank", "evaluate", "run", "demo", "reproduce", "datasets"):
        assert name in result.output


def test_datasets_lists_counts():
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 0, result.output
    assert "faq-construction" in result.output and "503" in result.output
    assert "beir/scifact" in result.output


def test_retrieve_then_evaluate(tmp_path):
    run = tmp_path / "bm25.trec"
    result = runner.invoke(app, ["retrieve", "--dataset", "faq-construction", "--output", str(run), "--top-k", "100"])
    assert result.exit_code == 0, result.output
    assert len(io.read_trec_run(run)) == 503
    result = runner.invoke(app, ["evaluate", str(run), "-m", "nDCG@10", "-m", "R@100"])
    assert result.exit_code == 0, result.output
    # bm25s with Lucene scoring, k1=0.9, b=0.4: the reference figure on faq-construction is 0.538.
    assert "0.537" in result.output or "0.538" in result.output


def test_filter_command(tmp_path):
    source = tmp_path / "q.jsonl"
    io.write_synthetic(source, [SyntheticQuery("a", "d", "x", (-0.1,)), SyntheticQuery("b", "d", "y", (-2.0,))])
    out = tmp_path / "kept.jsonl"
    result = runner.invoke(app, ["filter", str(source), "--output", str(out), "--top-k", "1"])
    assert result.exit_code == 0, result.output
    assert [q.query_id for q in io.read_synthetic(out)] == ["a"]


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"query_id": "a", "doc_id": "d", "text": "x"}\nnot json\n')
    result = runner.invoke(app, ["filter", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {bad}:2: invalid JSON (Expecting value); each line must be one JSON object"]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("generate:\n  modle: x\n")
    result = runner.invoke(app, ["run", str(recipe)])
    assert result.exit_code == 2
    assert f"error: {recipe}:2: unknown key 'generate.modle'; did you mean 'model'?" in result.output
