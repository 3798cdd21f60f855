from __future__ import annotations

from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.data import SyntheticQuery

runner = CliRunner()


def test_help_lists_every_stage():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in (
        "generate", "filter", "negatives", "train", "retrieve", "rerank", "evaluate", "run", "demo", "reproduce", "datasets",
    ):
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
    assert result.output.strip().splitlines() == [
        f"error: {bad}:2: invalid JSON (Expecting value); each line must be one JSON object"
    ]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("generate:\n  modle: x\n")
    result = runner.invoke(app, ["run", str(recipe)])
    assert result.exit_code == 2
    assert f"error: {recipe}:2: unknown key 'generate.modle'; did you mean 'model'?" in result.output


def _two_runs(tmp_path):
    """Ten judged queries; run 'good' finds the relevant document first for all, 'poor' only for three."""
    qrels = tmp_path / "qrels.tsv"
    io.write_qrels_tsv(qrels, {f"q{i}": {f"d{i}": 1} for i in range(10)})
    good, poor = tmp_path / "good.trec", tmp_path / "poor.trec"
    io.write_trec_run(good, {f"q{i}": {f"d{i}": 2.0, "dx": 1.0} for i in range(10)})
    io.write_trec_run(poor, {f"q{i}": {f"d{i}": 2.0 if i < 3 else 0.5, "dx": 1.0} for i in range(10)})
    return qrels, good, poor


def test_evaluate_two_runs_tests_against_the_baseline(tmp_path):
    qrels, good, poor = _two_runs(tmp_path)
    out = tmp_path / "stats.json"
    result = runner.invoke(
        app,
        [
            "evaluate", str(poor), str(good), "--qrels", str(qrels), "-m", "RR@10", "--baseline", str(poor), "--resamples",
            "2000", "-o", str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tests against" in result.output and "Holm" in result.output
    stats = io.read_json(out)
    assert stats["baseline"] == str(poor) and stats["confidence"] == 0.95
    assert stats["runs"][str(poor)]["RR@10"]["mean"] == 0.65 and stats["runs"][str(poor)]["RR@10"]["p_t"] is None
    row = stats["runs"][str(good)]["RR@10"]
    assert row["mean"] == 1.0 and row["diff"] == 0.35 and row["ci"] == [1.0, 1.0]
    # 7 of 10 queries gain 0.5 and none loses: the sign-flip test's exact p is 2/2^7 = 0.0156.
    assert 0.005 < row["p_randomization"] < 0.03 and row["p_t"] < 0.01


def test_evaluate_refuses_a_baseline_that_is_not_a_run_and_a_bad_level(tmp_path):
    qrels, good, poor = _two_runs(tmp_path)
    result = runner.invoke(
        app, ["evaluate", str(poor), str(good), "--qrels", str(qrels), "--baseline", str(tmp_path / "other.trec")]
    )
    assert result.exit_code == 2
    assert (
        result.output.strip()
        == f"error: --baseline {tmp_path / 'other.trec'} is not one of the runs given; add it to the runs or name one of them"
    )
    result = runner.invoke(app, ["evaluate", str(poor), str(good), "--qrels", str(qrels), "--confidence", "1.5"])
    assert result.exit_code == 2 and "'confidence' is 1.5; it must be above 0 and at most 0.999" in result.output
    result = runner.invoke(app, ["run", "recipe.yaml", "--seeds", "0,one"])
    assert result.exit_code == 2 and "--seeds 0,one: give whole numbers, e.g. --seeds 0,1,2" in result.output


def _commands(group, path=()):
    """Every command and subcommand of the app, as the words that invoke it."""
    import click

    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_and_subcommand_has_help_and_verbose():
    """Help text is plain text: 'beir/<name>[/<split>]' must not be read as markup (it crashed --help once)."""
    from typer.main import get_command

    commands = list(_commands(get_command(app)))
    assert {
        ("generate",), ("negatives",), ("retrieve",), ("rerank",), ("evaluate",), ("reproduce",), ("export",), ("merge",),
    } <= set(commands)
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "--version" in result.output
    for words in commands:
        result = runner.invoke(app, [*words, "--help"], terminal_width=1000)
        assert result.exit_code == 0, f"{' '.join(words)} --help: {result.output[-500:]}"
        assert "Usage" in result.output and "--verbose" in result.output, f"{' '.join(words)} --help has no --verbose"


def _option_help(words: list[str], option: str) -> str:
    result = runner.invoke(app, [*words, "--help"], terminal_width=1000)
    assert result.exit_code == 0, result.output
    return next(line for line in result.output.splitlines() if line.lstrip().startswith(option))


def test_choices_in_help_come_from_the_registries():
    from inpars.config import NEGATIVE_STRATEGIES, TRAIN_PRESETS
    from inpars.filter.lm_score import SCORES
    from inpars.generate import generators
    from inpars.pipeline import STAGES
    from inpars.rerank import rerankers
    from inpars.retrieve import retrievers

    wanted = {
        ("generate", "--backend"): generators.names(),
        ("retrieve", "--backend"): retrievers.names(),
        ("train", "--reranker"): rerankers.names(),
        ("rerank", "--reranker"): rerankers.names(),
        ("train", "--preset"): list(TRAIN_PRESETS),
        ("negatives", "--strategy"): list(NEGATIVE_STRATEGIES),
        ("filter", "--method"): list(SCORES),
        ("reproduce", "--stage"): list(STAGES),
    }
    assert "bi-encoder" in rerankers.names() and "dense" in retrievers.names()
    for (command, option), names in wanted.items():
        shown = _option_help([command], option)
        missing = [name for name in names if name not in shown]
        assert not missing, f"inpars {command} --help: {option} does not show {missing}"


def test_version_is_the_package_version():
    import inpars

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"inpars {inpars.__version__}\n"
    assert inpars.__version__.count(".") == 2


def test_verbose_logs_debug_messages():
    import logging

    assert runner.invoke(app, ["datasets", "--no-counts", "--verbose"]).exit_code == 0
    assert logging.getLogger().level == logging.DEBUG
    assert runner.invoke(app, ["datasets", "--no-counts"]).exit_code == 0
    assert logging.getLogger().level == logging.INFO
