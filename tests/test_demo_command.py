"""``inpars demo``: the bundled recipe (``inpars/recipes/demo.yaml``) run by its own command, into ``--output-dir``,
with ``--set`` on top of it. The quick test keeps every setting of the recipe but the collection and the generator
(a tiny random Llama on 40 documents: every one of its eight stages runs, the embedded MiniLM trains and reranks);
the slow one runs it on faq-construction with the embedded models and only its scale cut down."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "generate"))

from fault_helpers import stage_rows
from generate_helpers import WORDS, make_docs, save_random_llama

from inpars.cli import app
from inpars.config import load_pipeline_config
from inpars.data import Query
from inpars.io import write_beir_folder

STAGES = ("generate", "filter", "negatives", "train", "retrieve", "select", "rerank", "evaluate")
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def recipe():
    """The demo recipe as the package ships it."""
    return load_pipeline_config(text=resources.files("inpars.recipes").joinpath("demo.yaml").read_text(encoding="utf-8"))


def _stage_rows(output: str) -> dict[str, bool]:
    return stage_rows(output, STAGES)


def _manifests(run_dir: Path) -> dict[str, dict]:
    return {stage: json.loads((run_dir / stage / "stage.json").read_text()) for stage in STAGES}


def _demo(out: Path, *settings: str):
    args = ["demo", "--output-dir", str(out)]
    for item in settings:
        args += ["--set", item]
    return runner.invoke(app, args)


def _is_the_demo(run_dir: Path, recipe) -> None:
    """Every stage is done, with the demo recipe's settings where the command was given none."""
    config = {stage: manifest["config"] for stage, manifest in _manifests(run_dir).items()}
    assert all(m["status"] == "done" for m in _manifests(run_dir).values())
    assert (config["generate"]["prompt"], config["generate"]["max_doc_tokens"]) == ("inpars", recipe.generate.max_doc_tokens)
    assert config["filter"]["filter"]["method"] == recipe.filter.method == "mean_log_probs"
    negatives = config["negatives"]["negatives"]
    assert (negatives["depth"], negatives["num_negatives"]) == (recipe.negatives.depth, recipe.negatives.num_negatives)
    train = config["train"]
    assert (train["reranker"], train["model"], train["learning_rate"]) == ("bi-encoder", recipe.train.model, 2.0e-5)
    assert (config["retrieve"]["backend"], config["retrieve"]["model"]) == ("dense", recipe.retrieve.model)
    assert config["select"]["select"]["validation"] == recipe.select.validation == 0.2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["baseline"] == "dense" and list(metrics["systems"]) == ["bm25", "dense", "bi-encoder"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """A 40-document BEIR folder (12 judged queries) and a tiny random Llama that writes queries for it."""
    folder = tmp_path_factory.mktemp("demo-tiny")
    docs = make_docs(40, seed=5)
    queries = [Query(f"q{i}", f"what is {WORDS[i]} {WORDS[i + 3]}") for i in range(12)]
    write_beir_folder(folder / "data", docs, queries, {f"q{i}": {docs[i].doc_id: 1} for i in range(12)})
    return folder / "data", save_random_llama(folder / "llama")


def test_demo_runs_its_recipe_into_the_output_dir_with_settings_on_top(tiny, recipe, tmp_path):
    data, llama = tiny
    settings = (f"dataset={data}", f"generate.model={llama}", "generate.device=cpu", "evaluate.resamples=500")
    result = _demo(tmp_path, *settings)
    assert result.exit_code == 0, result.output[-4000:]
    run_dir = tmp_path / recipe.name
    assert _stage_rows(result.output) == dict.fromkeys(STAGES, False)
    assert f"metrics -> {run_dir / 'metrics.json'}" in result.output.replace("\n", "")
    _is_the_demo(run_dir, recipe)
    assert _manifests(run_dir)["generate"]["config"]["model"] == str(llama)
    held = (run_dir / "negatives" / "validation.jsonl").read_text().splitlines()
    assert len(held) == 8  # the recipe's select.validation: 0.2 of the 40 queries
    # The same command again finds every stage done; --force computes every one again.
    assert _stage_rows(_demo(tmp_path, *settings).output) == dict.fromkeys(STAGES, True)
    forced = runner.invoke(app, ["demo", "--output-dir", str(tmp_path), "--force", *(f"--set={s}" for s in settings)])
    assert forced.exit_code == 0, forced.output[-4000:]
    assert _stage_rows(forced.output) == dict.fromkeys(STAGES, False)


def test_demo_refuses_a_bad_setting_in_one_line(tmp_path):
    result = _demo(tmp_path, "generate.modle=x")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and line.endswith(": unknown key 'generate.modle'; did you mean 'model'?")
    assert not (tmp_path / "demo").exists()


@pytest.mark.slow
def test_demo_on_faq_construction_with_the_embedded_models(recipe, tmp_path):
    """The demo as a user runs it, on a tenth of the collection's answers and one training step: the embedded SmolLM2
    writes the queries, the embedded MiniLM is trained, and all 503 questions are scored for the three systems."""
    settings = ("generate.num_docs=50", "generate.max_new_tokens=16", "retrieve.top_k=20", "rerank.top_k=20")
    result = _demo(tmp_path, *settings)
    assert result.exit_code == 0, result.output[-4000:]
    run_dir = tmp_path / recipe.name
    assert _stage_rows(result.output) == dict.fromkeys(STAGES, False)
    for system in ("bm25", "dense", "bi-encoder"):
        assert f"│ {system} " in result.output
    _is_the_demo(run_dir, recipe)
    generate = _manifests(run_dir)["generate"]
    assert generate["config"]["model"] == recipe.generate.model == "embedded:smollm2-135m"
    assert generate["summary"]["documents"] == 50 and generate["summary"]["generated"] == 50
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["queries"] == 503
    # The zero-shot first stage's nDCG@10 on the top 20 is the README's 0.7155 (recall is cut at 20, not the ranking).
    assert metrics["systems"]["dense"]["nDCG@10"]["mean"] == pytest.approx(0.7155, abs=5e-4)
    assert metrics["systems"]["bi-encoder"]["nDCG@10"]["p_randomization_holm"] is not None
