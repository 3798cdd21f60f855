"""``inpars reproduce mini-faq --slurm`` on a real one-node cluster (``make test-slurm`` starts one with
tests/slurm/cluster.sh): generation in 2 shards, reranking in 2, a cancel mid-way and a resubmission, then the report
against the same run without SLURM, and a generation shard requeued by SLURM while it runs; and the offline demo
condition (faq-construction, ~5 minutes) as SLURM jobs against the same condition run plainly. The miniature runs at a
smaller scale than its table (12 documents get a query, 2 per batch, so that a shard runs long enough to be requeued)
to fit CI's time, so both runs are compared with each other, not with the table."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inpars import io

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
INPARS = [sys.executable, "-m", "inpars.cli"]
SMALL = ["--set", "generate.num_docs=12", "--set", "generate.batch_size=2"]
WAIT_S = 900
"""How long the jobs of one condition may take on the one-node cluster: the demo alone takes about 5 minutes on 2 quiet
cores; a busy machine doubles that."""


def inpars(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*INPARS, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"inpars {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def held_jobs() -> set[str]:
    out = subprocess.run(["squeue", "--noheader", "--format=%F"], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def our_jobs(out: Path) -> set[str]:
    state = out / "mini-faq" / "slurm" / "jobs.json"
    return {entry["job_id"] for entry in io.read_json(state).values()} if state.is_file() else set()


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {WAIT_S} s for {what}")
        time.sleep(2)


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("sbatch") is None:
        pytest.skip("no SLURM here: 'make test-slurm' starts a one-node cluster (tests/slurm/cluster.sh)")
    idle = subprocess.run(["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, check=False).stdout.split()
    if "idle" not in idle and "mix" not in idle:
        pytest.skip(f"the SLURM node is not up ({' '.join(idle) or 'no node'}): 'make test-slurm' starts one")
    if not (ROOT / "runs" / "mini-faq" / "corpus.jsonl").is_file():
        inpars(
            "export", "faq-construction", "runs/mini-faq", "--force", "--max-docs", "120", "--split", "train=0.5",
            "--split", "dev=0.25", "--split", "test=0.25",
        )


@pytest.fixture(scope="module")
def plain(cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    started = time.monotonic()
    inpars("reproduce", "mini-faq", *SMALL, "--output-dir", str(out), check=False)
    return out, time.monotonic() - started


def running_shard(out: Path) -> tuple[str, int] | None:
    """The array job id and task of a running generation shard that has written some rows, if one has."""
    jobs = io.read_json(out / "mini-faq" / "slurm" / "jobs.json") if (out / "mini-faq" / "slurm" / "jobs.json").is_file() else {}
    entry = next((e for key, e in jobs.items() if key.endswith("rehearsal-inpars-v2/generate")), None)
    if entry is None:
        return None
    squeue = ["squeue", "--noheader", "--states=RUNNING", "--format=%i", "--jobs", entry["job_id"]]
    listed = subprocess.run(squeue, capture_output=True, text=True, check=False).stdout.split()
    shards = out / "mini-faq" / "rehearsal-inpars-v2" / "generate" / "shards"
    for task in range(2):
        partial = shards / f"{task}-of-2" / "queries.jsonl.partial"
        if f"{entry['job_id']}_{task}" in listed and partial.is_file() and partial.read_text().count("\n") >= 1:
            return entry["job_id"], task
    return None


@pytest.fixture(scope="module")
def on_slurm(cluster, tmp_path_factory):
    """Submit; requeue a generation shard (scontrol requeue) once it has written rows; cancel every job once generation
    is merged; resubmit; wait. Returns what was done before the cancel, the requeued shard and the output."""
    out = tmp_path_factory.mktemp("slurm")
    command = ["reproduce", "mini-faq", *SMALL, "--output-dir", str(out), "--slurm", "--shards", "2", "--rerank-shards", "2"]
    started = time.monotonic()
    first = inpars(*command)
    run_dir = out / "mini-faq" / "rehearsal-inpars-v2"
    deadline = time.monotonic() + WAIT_S
    found = None
    while found is None and time.monotonic() < deadline and not (run_dir / "generate" / "queries.jsonl").is_file():
        found = running_shard(out)
        time.sleep(0.2)
    if found is not None:
        subprocess.run(["scontrol", "requeue", f"{found[0]}_{found[1]}"], check=True)
    wait_until(
        lambda: (
            (run_dir / "generate" / "stage.json").is_file()
            and io.read_json(run_dir / "generate" / "stage.json")["status"] == "done"
        ),
        "the merge of the generation shards",
    )
    subprocess.run(["scancel", *sorted(our_jobs(out))], check=True)
    wait_until(lambda: not (held_jobs() & our_jobs(out)), "the cancelled jobs to leave the queue")
    manifests = sorted(out.glob("mini-faq/*/**/stage.json"))
    done_before = {path: path.read_bytes() for path in manifests if io.read_json(path)["status"] == "done"}
    second = inpars(*command)
    wait_until(lambda: not (held_jobs() & our_jobs(out)), "the resubmitted jobs")
    return out, first.stdout, second.stdout, done_before, time.monotonic() - started, found


def checks(folder: Path) -> list[dict]:
    return [{k: v for k, v in check.items()} for check in io.read_json(folder / "mini-faq" / "results.json")["checks"]]


def test_the_report_on_slurm_equals_the_plain_run(plain, on_slurm):
    out, first = on_slurm[0], on_slurm[1]
    assert "rehearsal-inpars-v2/generate: job" in first and "tasks 0,1" in first
    assert (out / "mini-faq" / "report.md").is_file(), "the report job did not write the report; see mini-faq/slurm/logs/"
    assert checks(out) == checks(plain[0])


def test_a_resubmission_after_a_cancel_redoes_nothing_finished(on_slurm):
    out, second, done_before = on_slurm[0], on_slurm[2], on_slurm[3]
    assert any("/generate/shards/" in str(path) for path in done_before) and any(
        path.parent.name == "generate" for path in done_before
    )
    assert not (out / "mini-faq" / "rehearsal-inpars-v2" / "evaluate" / "stage.json").is_file() or (
        out / "mini-faq" / "rehearsal-inpars-v2" / "evaluate"
    ) not in [p.parent for p in done_before]
    assert "rehearsal-inpars-v2/generate: done" in second and "rehearsal-inpars-v2/merge-generate: done" in second
    for path, before in done_before.items():
        assert path.read_bytes() == before, f"{path} was redone after the resubmission"
    assert io.read_json(out / "mini-faq" / "rehearsal-inpars-v2" / "evaluate" / "stage.json")["status"] == "done"


def test_a_requeued_generation_shard_takes_over_its_rows(on_slurm):
    out, found = on_slurm[0], on_slurm[5]
    assert found is not None, "no generation shard was seen running with rows written, so none was requeued"
    job_id, task = found
    log = (out / "mini-faq" / "slurm" / "logs" / f"rehearsal-inpars-v2.generate-{job_id}_{task}.log").read_text()
    starts = re.findall(r"(\d+) queries to generate for (\d+) documents \((\d+) taken over", log)
    assert len(starts) >= 2, f"the shard did not start twice (requeued):\n{log[-3000:]}"
    assert int(starts[-1][2]) >= 1, f"the requeued shard took over no rows:\n{log[-3000:]}"
    manifest = io.read_json(out / "mini-faq" / "rehearsal-inpars-v2" / "generate" / "shards" / f"{task}-of-2" / "stage.json")
    assert manifest["status"] == "done"


def test_submitting_a_finished_run_submits_nothing(on_slurm):
    out = on_slurm[0]
    again = inpars("reproduce", "mini-faq", *SMALL, "--output-dir", str(out), "--slurm", "--shards", "2", "--rerank-shards", "2")
    assert "nothing to do: every step is done" in again.stdout


@pytest.fixture(scope="module")
def demo(cluster, tmp_path_factory):
    """The offline demo condition (faq-construction, the demo recipe) run plainly and as SLURM jobs."""
    out = tmp_path_factory.mktemp("demo")
    started = time.monotonic()
    inpars("reproduce", "faq-construction", "--condition", "demo", "--output-dir", str(out / "plain"), check=False)
    plain_s = time.monotonic() - started
    started = time.monotonic()
    submitted = inpars("reproduce", "faq-construction", "--condition", "demo", "--output-dir", str(out / "slurm"), "--slurm")
    state = out / "slurm" / "faq-construction" / "slurm" / "jobs.json"
    ids = {entry["job_id"] for entry in io.read_json(state).values()}
    wait_until(lambda: not (held_jobs() & ids), "the demo's jobs")
    return out, submitted.stdout, plain_s, time.monotonic() - started


def test_the_demo_condition_on_slurm_equals_the_plain_run(demo):
    out, submitted, plain_s, slurm_s = demo
    assert "demo/select: job" in submitted and "demo/train: job" in submitted
    folder = out / "slurm" / "faq-construction"
    assert (folder / "report.md").is_file(), f"the report job did not write the report; see {folder / 'slurm' / 'logs'}"
    results = {name: io.read_json(out / name / "faq-construction" / "results.json")["checks"] for name in ("plain", "slurm")}
    assert results["slurm"] == results["plain"]
    print(f"demo condition: plain run {plain_s:.0f} s; as SLURM jobs {slurm_s:.0f} s")


def test_timing(plain, on_slurm, record_property):
    record_property("plain_s", round(plain[1], 1))
    record_property("slurm_with_cancel_and_resubmit_s", round(on_slurm[4], 1))
    print(f"plain run {plain[1]:.0f} s; on SLURM, with a cancel and a resubmission, {on_slurm[4]:.0f} s")
