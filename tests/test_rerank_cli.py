"""``inpars train`` and ``inpars rerank`` with a seq2seq reranker, end to end on the tiny T5."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.data import TrainingExample
from inpars.rerank.training import METADATA


def test_train_then_rerank_with_monot5(tiny_t5, faq, tmp_path):
    ids = sorted(faq.docs)[:12]
    examples = [TrainingExample(q, faq.queries[q].text, q, faq.docs[q].text, 1) for q in ids]
    examples += [TrainingExample(q, faq.queries[q].text, ids[i - 1], faq.docs[ids[i - 1]].text, 0) for i, q in enumerate(ids)]
    io.write_training(tmp_path / "train.jsonl", examples)
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "train", str(tmp_path / "train.jsonl"), "-o", str(tmp_path / "reranker"), "--reranker", "monot5", "--model",
            str(tiny_t5), "--max-steps", "2", "--batch-size", "4", "--set", "train.max_length=64", "--set",
            "train.template=Q: {query} D: {document} Relevant:",
        ],
    )
    assert result.exit_code == 0, result.output
    model_dir = tmp_path / "reranker" / "model"
    assert io.read_json(model_dir / METADATA)["template"] == "Q: {query} D: {document} Relevant:"

    first = {q: {d: float(-rank) for rank, d in enumerate(ids)} for q in ids[:3]}
    io.write_trec_run(tmp_path / "bm25.trec", first)
    result = runner.invoke(
        app,
        [
            "rerank", str(tmp_path / "bm25.trec"), "--model", str(model_dir), "--reranker", "monot5", "--top-k", "5", "-o",
            str(tmp_path / "out.trec"),
        ],
    )
    assert result.exit_code == 0, result.output
    run = io.read_trec_run(tmp_path / "out.trec")
    assert set(run) == set(ids[:3])
    for q in ids[:3]:
        ranked = sorted(run[q], key=lambda d: -run[q][d])
        assert set(ranked[:5]) == set(ids[:5]) and ranked[5:] == ids[5:]


def test_bad_preset_on_the_command_line(tmp_path):
    io.write_training(tmp_path / "train.jsonl", [TrainingExample("q", "a", "d", "b", 1)])
    result = CliRunner().invoke(app, ["train", str(tmp_path / "train.jsonl"), "--preset", "inpars-papers"])
    assert result.exit_code == 2
    assert "'train.preset' is unknown: 'inpars-papers'; did you mean 'inpars-paper'?" in result.output


def test_too_few_examples_on_the_command_line(tmp_path):
    io.write_training(tmp_path / "train.jsonl", [TrainingExample("q", "a", "d", "b", 1), TrainingExample("q", "a", "e", "c", 0)])
    result = CliRunner().invoke(app, ["train", str(tmp_path / "train.jsonl"), "--batch-size", "4"])
    assert result.exit_code == 2
    assert "2 examples x 1 epoch(s) are fewer than one effective batch of 4" in result.output


def test_a_recipe_with_rerank_model_trains_nothing_and_reranks_with_it(tiny_t5, faq_slice, tmp_path):
    """rerank.model (with rerank.reranker) replaces the trained model: the run has no generation, filtering, mining or
    training, its reranker is scored under its own kind, and 'inpars rerank -c' takes the model from the recipe."""
    from inpars.config import load_pipeline_config
    from inpars.pipeline import run_pipeline

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"name: given\noutput_dir: {tmp_path / 'runs'}\nretrieve: {{top_k: 10}}\n"
        f"rerank: {{reranker: monot5, model: {tiny_t5}, top_k: 3, max_length: 64}}\n"
    )
    result = run_pipeline(load_pipeline_config(recipe), dataset=faq_slice)
    assert [s.name for s in result.stages] == ["retrieve", "rerank", "evaluate"]
    assert set(result.metrics) == {"bm25", "monot5"}
    run_dir = tmp_path / "runs" / "given"
    first = io.read_trec_run(run_dir / "retrieve" / "run.trec")
    io.write_trec_run(tmp_path / "first.trec", {q: first[q] for q in sorted(first)[:5]})
    folder = tmp_path / "collection"
    from inpars.datasets import export_beir

    export_beir(faq_slice, folder, {"test": 1.0})
    out = CliRunner().invoke(app, ["rerank", str(tmp_path / "first.trec"), "-c", str(recipe), "-d", str(folder), "-o",
                                   str(tmp_path / "out.trec")])
    assert out.exit_code == 0, out.output
    reranked, whole = io.read_trec_run(tmp_path / "out.trec"), io.read_trec_run(run_dir / "rerank" / "run.trec")
    assert all(reranked[q] == pytest.approx(whole[q], abs=1e-6) for q in reranked)
    missing = CliRunner().invoke(app, ["rerank", str(tmp_path / "first.trec"), "-d", str(folder)])
    assert missing.exit_code == 2 and "no reranker to rerank with: give --model" in missing.output
