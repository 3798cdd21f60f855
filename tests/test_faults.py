"""Fault injection: SIGKILL at random points of every stage that writes, then the same command again.

A whole recipe (generate, filter, negatives, train with checkpoints, retrieve, rerank, evaluate) runs with tiny
models on a small collection. Each kill point starts the command, waits until the chosen stage has begun, sleeps a
random share of that stage's time in an uninterrupted run and kills the process with SIGKILL. ``inpars reproduce``
is killed while it writes its report: the child pauses half-way through writing one report file (see
``fault_helpers.pause_mid_write``), so the kill lands there, every time. Then, before the rerun, every file under
its final name must be whole (byte for byte the uninterrupted run's output, or JSON that parses); after the rerun,
every output must be byte-identical to the uninterrupted run's. ``INPARS_FAULT_KILLS`` sets the kill points per
stage of the recipe (default 2).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "generate"))

from fault_helpers import PRELOAD, run_command, write_tiny_recipe
from test_reproduce import RECIPE, TINY

pytestmark = pytest.mark.faults
logger = logging.getLogger(__name__)

STAGES = ("generate", "filter", "negatives", "train", "retrieve", "rerank", "evaluate")
OUTPUTS = (
    "generate/queries.jsonl", "filter/kept.jsonl", "filter/dropped.jsonl", "negatives/train.jsonl",
    "train/model/model.safetensors", "train/model/config.json", "retrieve/run.trec", "rerank/run.trec", "evaluate/metrics.json",
    "metrics.json",
)
REPORT_OUTPUTS = ("report.md", "results.json", "report.png", "bm25/retrieve/run.trec", "bm25/metrics.json")
KILLS = int(os.environ.get("INPARS_FAULT_KILLS", "2"))


@pytest.fixture(scope="module")
def forkserver():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, tiny_t5) -> Path:
    return write_tiny_recipe(tmp_path_factory.mktemp("faults"), tiny_t5, train_extra=",\n   save_steps: 2")


def _start(context, args: list[str], log: Path, pause: tuple[str, str] | None = None):
    process = context.Process(target=run_command, args=(args, str(log), pause))
    process.start()
    return process


def _timeline(process, marks: dict[str, Path]) -> tuple[dict[str, float], float]:
    """When each marker file first appeared, in seconds after the start, and when the process ended."""
    started, seen = time.monotonic(), {}
    while process.is_alive():
        for name, path in marks.items():
            if name not in seen and path.exists():
                seen[name] = time.monotonic() - started
        time.sleep(0.002)
    process.join()
    return seen, time.monotonic() - started


def _same(folder: Path, reference: Path, name: str) -> bool:
    """Byte-identical, once the run folder's own path (which a report names) is written as the reference's."""
    here, there = str(folder.parent).encode(), str(reference.parent).encode()
    return (folder / name).read_bytes().replace(here, there) == (reference / name).read_bytes()


def _whole(folder: Path, reference: Path, outputs: tuple[str, ...]) -> None:
    """No file under its final name is partial: outputs equal the reference's bytes, JSON files parse."""
    for name in outputs:
        if (folder / name).exists():
            assert _same(folder, reference, name), f"{name} exists but differs from the uninterrupted run's"
    for path in folder.rglob("*"):
        if (
            path.is_file()
            and path.suffix in (".json", ".jsonl")
            and "checkpoints" not in path.parts
            and not path.name.startswith(".")
        ):
            text = path.read_text()
            rows = text.splitlines() if path.suffix == ".jsonl" and not path.name.endswith(".partial") else [text]
            for row in rows:
                json.loads(row)


def _kill_and_rerun(
    context, args: list[str], folder: Path, marker: Path, delay: float, reference: Path, outputs: tuple[str, ...]
) -> bool:
    """Start, wait for ``marker``, sleep ``delay``, SIGKILL; check that nothing partial looks whole; rerun; compare."""
    log = folder.parent.with_suffix(".log")
    process = _start(context, args, log)
    while process.is_alive() and not marker.exists():
        time.sleep(0.002)
    time.sleep(delay)
    killed = process.is_alive()
    if killed:
        os.kill(process.pid, signal.SIGKILL)
    process.join()
    assert killed or process.exitcode == 0, log.read_text()[-3000:]
    _whole(folder, reference, outputs)
    again = _start(context, args, log)
    again.join()
    assert again.exitcode == 0, log.read_text()[-3000:]
    for name in outputs:
        assert _same(folder, reference, name), f"{name} differs after a kill and a rerun"
    return killed


def test_kill_9_anywhere_in_a_recipe_then_rerun_gives_the_same_bytes(forkserver, recipe, tmp_path, record_property):
    def args(out: Path) -> list[str]:
        return ["run", str(recipe), "--set", f"output_dir={out}"]

    reference = tmp_path / "reference"
    process = _start(forkserver, args(reference), tmp_path / "reference.log")
    starts, end = _timeline(process, {s: reference / "f" / s / "stage.json" for s in STAGES})
    assert process.exitcode == 0, (tmp_path / "reference.log").read_text()[-3000:]
    ends = [starts[s] for s in STAGES[1:]] + [end]
    rng = random.Random(15)
    tried = killed = 0
    for stage, stop in zip(STAGES, ends):
        for k in range(KILLS):
            delay = rng.uniform(0, stop - starts[stage])
            out = tmp_path / f"{stage}-{k}"
            killed += _kill_and_rerun(
                forkserver, args(out), out / "f", out / "f" / stage / "stage.json", delay, reference / "f", OUTPUTS
            )
            tried += 1
    logger.info("recipe: %d kill points tried, %d landed before the process ended, all survived", tried, killed)
    record_property("kill_points", f"{tried} tried, {killed} killed, {tried} survived")
    assert killed >= tried // 2, f"only {killed} of {tried} kills landed before the run ended"


@pytest.fixture(scope="module")
def report_reference(forkserver, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny BM25 table and the folder of an uninterrupted ``inpars reproduce`` of it (run folder and report)."""
    folder = tmp_path_factory.mktemp("report")
    tables = folder / "tables"
    tables.mkdir()
    (tables / "t.yaml").write_text(TINY.replace("EXPECTED", "0.5375"))
    (tables / "bm25.yaml").write_text(RECIPE)
    reference = folder / "reference"
    process = _start(forkserver, _reproduce_args(tables / "t.yaml", reference), folder / "reference.log")
    process.join()
    assert process.exitcode == 0, (folder / "reference.log").read_text()[-3000:]
    return tables / "t.yaml", reference / "faq"


def _reproduce_args(tables: Path, out: Path) -> list[str]:
    return ["reproduce", "faq", "--tables", str(tables), "--output-dir", str(out)]


def _kill_mid_write(context, args: list[str], name: str, folder: Path, log: Path) -> Path:
    """Start ``args`` paused half-way through writing ``folder/name``; check that the write is under way; SIGKILL it.
    Returns the temporary file the write left."""
    marker = log.with_suffix(".paused")
    marker.unlink(missing_ok=True)
    before = set(folder.glob(f".{name}.*.tmp"))
    process = _start(context, args, log, pause=(name, str(marker)))
    deadline = time.monotonic() + 300
    while process.is_alive() and not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), f"the command never began to write {name}:\n" + log.read_text()[-3000:]
    assert process.is_alive(), log.read_text()[-3000:]
    written = set(folder.glob(f".{name}.*.tmp")) - before
    assert len(written) == 1, f"{name} is not being written: {written}"
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    assert process.exitcode == -signal.SIGKILL, f"the kill did not land: exit code {process.exitcode}"
    return written.pop()


@pytest.mark.parametrize("name", ["report.png", "report.md", "results.json"])
def test_kill_9_while_reproduce_writes_its_report(forkserver, report_reference, tmp_path, name):
    tables, reference = report_reference
    out = tmp_path / "out"
    folder = out / "faq"
    log = tmp_path / "killed.log"
    temporary = _kill_mid_write(forkserver, _reproduce_args(tables, out), name, folder, log)
    # Half of the file's bytes are on disk, under the temporary name only: nothing under a final name is partial.
    assert 0 < temporary.stat().st_size < (reference / name).stat().st_size
    assert not (folder / name).exists()
    _whole(folder, reference, REPORT_OUTPUTS)
    again = _start(forkserver, _reproduce_args(tables, out), log)
    again.join()
    assert again.exitcode == 0, log.read_text()[-3000:]
    for output in REPORT_OUTPUTS:
        assert _same(folder, reference, output), f"{output} differs after a kill and a rerun"
    # Killed while rewriting a finished report, the report stays the one that was there, whole.
    _kill_mid_write(forkserver, _reproduce_args(tables, out), name, folder, log)
    for output in REPORT_OUTPUTS:
        assert _same(folder, reference, output), f"{output} changed when a rewrite of {name} was killed"


def test_a_run_killed_in_generation_resumes_with_another_batch_size(forkserver, recipe, tmp_path):
    """Runtime-only settings (batch sizes, checkpoint cadence) are not part of a stage's fingerprint: a killed
    ``inpars run`` rerun with others takes over every finished query instead of throwing them away."""
    out = tmp_path / "out"
    partial = out / "f" / "generate" / "queries.jsonl.partial"
    command = ["run", str(recipe), "--set", f"output_dir={out}", "--set", "generate.batch_size=1"]
    first = _start(forkserver, command, tmp_path / "first.log")
    while first.is_alive() and not (partial.is_file() and partial.read_bytes().count(b"\n") >= 5):
        time.sleep(0.002)
    assert first.is_alive(), "the run ended before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.join()
    finished = [json.loads(line) for line in partial.read_text().splitlines(keepends=True) if line.endswith("\n")]
    assert len(finished) >= 5
    log = tmp_path / "second.log"
    other = ["--set", "generate.batch_size=8", "--set", "train.save_steps=4", "--set", "rerank.batch_size=4"]
    second = _start(forkserver, ["run", str(recipe), "--set", f"output_dir={out}", *other], log)
    second.join()
    assert second.exitcode == 0, log.read_text()[-3000:]
    summary = json.loads((out / "f" / "generate" / "stage.json").read_text())["summary"]
    assert summary["resumed"] >= len(finished), summary
    final = {row["query_id"]: row for row in map(json.loads, (out / "f" / "generate" / "queries.jsonl").read_text().splitlines())}
    for row in finished:
        assert final[row["query_id"]]["text"] == row["text"] and final[row["query_id"]]["log_probs"] == row["log_probs"]
