"""``inpars run --force``: every stage of a finished run is computed again and its outputs rewritten, and a run folder
broken in any of the ways a kill, a full disk or a hand edit leaves one (a torn or reshaped ``stage.json``, a deleted
or half-written output) is recovered. The recipe is the fault tests' one: tiny random models on 40 documents, all
seven stages in a few seconds."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from fault_helpers import stage_rows, write_tiny_recipe
from typer.testing import CliRunner

from inpars.cli import app

STAGES = ("generate", "filter", "negatives", "train", "retrieve", "rerank", "evaluate")
OUTPUTS = (
    "generate/queries.jsonl", "filter/kept.jsonl", "filter/dropped.jsonl", "negatives/train.jsonl",
    "train/model/model.safetensors", "train/model/config.json", "retrieve/run.trec", "rerank/run.trec",
    "evaluate/metrics.json", "evaluate/per_query.json", "metrics.json",
)
"""What each stage writes (and the run's own metrics.json); none of them names the run folder, so a copy compares."""
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, tiny_t5) -> Path:
    return write_tiny_recipe(tmp_path_factory.mktemp("force"), tiny_t5, tail="evaluate: {resamples: 500}\n")


def _run(recipe: Path, out: Path, *more: str):
    result = runner.invoke(app, ["run", str(recipe), "--set", f"output_dir={out}", *more])
    assert result.exit_code == 0, result.output[-4000:]
    return result


@pytest.fixture(scope="module")
def finished(recipe, tmp_path_factory) -> Path:
    """A finished run of the recipe: its run folder."""
    out = tmp_path_factory.mktemp("finished")
    _run(recipe, out)
    return out / "f"


def _copy(finished: Path, tmp_path: Path) -> Path:
    shutil.copytree(finished, tmp_path / "f")
    return tmp_path / "f"


def _manifest(run_dir: Path, stage: str) -> dict:
    return json.loads((run_dir / stage / "stage.json").read_text())


def _stage_rows(output: str) -> dict[str, bool]:
    return stage_rows(output, STAGES)


def _recovered(run_dir: Path, finished: Path) -> None:
    """Every stage is done for the finished run's config, and every output is the finished run's, byte for byte."""
    for stage in STAGES:
        manifest = _manifest(run_dir, stage)
        assert isinstance(manifest, dict) and manifest["status"] == "done", (stage, manifest)
        assert manifest["fingerprint"] == _manifest(finished, stage)["fingerprint"], stage
    for name in OUTPUTS:
        assert (run_dir / name).read_bytes() == (finished / name).read_bytes(), f"{name} differs from the finished run's"


def test_force_recomputes_every_stage_of_a_finished_run(recipe, finished, tmp_path):
    run_dir = _copy(finished, tmp_path)
    plain = _run(recipe, tmp_path)
    assert _stage_rows(plain.output) == dict.fromkeys(STAGES, True)  # without --force, nothing runs again
    written = [*(f"{stage}/stage.json" for stage in STAGES), *OUTPUTS]
    for name in written:
        os.utime(run_dir / name, ns=(10**9, 10**9))  # 1970: any rewrite moves it
    forced = _run(recipe, tmp_path, "--force")
    assert _stage_rows(forced.output) == dict.fromkeys(STAGES, False)
    old = [name for name in written if (run_dir / name).stat().st_mtime_ns == 10**9]
    assert not old, f"--force left these as they were: {old}"
    _recovered(run_dir, finished)  # the same config computes the same bytes


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _write(text: str):
    return lambda path: path.write_text(text)


def _without(*keys: str):
    def edit(path: Path) -> None:
        record = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in record.items() if k not in keys}))

    return edit


def _retyped(path: Path) -> None:
    record = json.loads(path.read_text())
    record.update(status=["done"], fingerprint=12345, summary="none", seconds="slow", upstream="x", outputs=[])
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("generate/stage.json", _truncate),
        ("filter/stage.json", _write("[]\n")),
        ("negatives/stage.json", _write('"done"\n')),
        ("train/stage.json", _write("{}\n")),
        ("retrieve/stage.json", _without("status", "outputs")),
        ("rerank/stage.json", _without("fingerprint")),
        ("evaluate/stage.json", _retyped),
        ("train/stage.json", _write("null\n")),
        ("rerank/run.trec", Path.unlink),
        ("train/model/model.safetensors", Path.unlink),
        ("generate/queries.jsonl", _truncate),
        ("train/model/model.safetensors", _truncate),
        ("evaluate/metrics.json", _truncate),
    ],
    ids=[
        "torn-stage-json", "stage-json-a-list", "stage-json-a-string", "stage-json-an-empty-dict", "stage-json-no-status",
        "stage-json-no-fingerprint", "stage-json-wrong-types", "stage-json-null", "deleted-run", "deleted-model",
        "half-written-queries", "half-written-model", "half-written-metrics",
    ],
)
def test_force_recovers_a_broken_run_folder(recipe, finished, tmp_path, name, damage):
    run_dir = _copy(finished, tmp_path)
    damage(run_dir / name)
    forced = _run(recipe, tmp_path, "--force")
    assert _stage_rows(forced.output) == dict.fromkeys(STAGES, False)
    _recovered(run_dir, finished)
