"""A reproduction plan submitted to SLURM: one job script per step (an array for the shards of generation and
reranking), written next to the run folders, submitted with ``sbatch --dependency=afterok:...``.

Each script runs the step's ``inpars reproduce ... --stage S`` command, so a job does exactly what the plain run
does for that stage. Submitting again submits only the steps (and array tasks) that are not done, waits on the
jobs of an earlier submission still in the queue, and submits nothing when everything is done. Scripts carry
``--requeue``: a job that SLURM kills and requeues reruns its command, which resumes (generation keeps the rows of
the batches it finished; a finished stage or shard is skipped).
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inpars import io
from inpars.errors import InparsError
from inpars.plan import Plan, Step, shell_command

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlurmOptions:
    """What every job asks of SLURM; GPU steps also get ``gpus_per_task``."""

    partition: str | None = None
    account: str | None = None
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    time: str | None = None
    mem: str | None = None
    extra: tuple[str, ...] = ()
    """Further ``#SBATCH`` options, written as given (e.g. ``--qos=high``)."""


@dataclass(frozen=True)
class Submitted:
    step: str
    job_id: str | None
    """None: the step is done, nothing was submitted."""
    tasks: tuple[int, ...]
    script: Path
    reused: bool = False
    """The job of an earlier submission, still queued or running, was waited on instead of submitting again."""


def slurm_folder(plan: Plan, step: Step) -> Path:
    """Where a dataset's scripts go: ``<output-dir>/<dataset>/slurm/`` (beside its run folders)."""
    return plan.options.output_dir / step.dataset / "slurm"


def script_path(plan: Plan, step: Step) -> Path:
    return slurm_folder(plan, step) / f"{step.run}.{step.step}.sbatch"


def job_name(step: Step) -> str:
    return f"inpars:{step.key}"


def script(plan: Plan, step: Step, options: SlurmOptions, workdir: Path) -> str:
    """The job script of one step: its SBATCH options, then the step's command (one inpars command)."""
    logs = slurm_folder(plan, step).resolve() / "logs"
    lines = [
        "#!/bin/bash",
        f"# {step.key}: written by 'inpars reproduce --slurm'; edit the options freely, the command is the plain run's stage.",
        f"#SBATCH --job-name={job_name(step)}",
        f"#SBATCH --output={logs}/{step.run}.{step.step}-%A" + ("_%a.log" if step.tasks > 1 else ".log"),
        "#SBATCH --open-mode=append",
        "#SBATCH --requeue",
    ]
    if step.tasks > 1:
        lines.append(f"#SBATCH --array=0-{step.tasks - 1}")
    for flag, value in (
        ("partition", options.partition), ("account", options.account), ("cpus-per-task", options.cpus_per_task),
        ("time", options.time), ("mem", options.mem),
    ):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={value}")
    if step.gpu and options.gpus_per_task:
        lines.append(f"#SBATCH --gpus-per-task={options.gpus_per_task}")
    lines += [f"#SBATCH {item}" for item in options.extra]
    lines += ["set -euo pipefail", f"cd {shlex.quote(str(workdir))}", f"exec {shell_command(step.argv)}", ""]
    return "\n".join(lines)


def write_scripts(plan: Plan, options: SlurmOptions, workdir: Path | None = None) -> dict[str, Path]:
    """Write every step's script (done steps too, so that a user can rerun one by hand); step key -> path."""
    workdir = (workdir or Path.cwd()).resolve()
    paths = {}
    for step in plan.steps:
        path = script_path(plan, step)
        (path.parent / "logs").mkdir(parents=True, exist_ok=True)
        with io.atomic_write(path) as handle:
            handle.write(script(plan, step, options, workdir))
        path.chmod(0o755)
        paths[step.key] = path
    return paths


def _run(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InparsError(
            f"'{argv[0]}' not found: --slurm needs SLURM's commands (sbatch, squeue) on PATH; use --slurm-dry-run to only "
            "write the scripts"
        ) from None
    if done.returncode != 0:
        raise InparsError(
            f"{' '.join(argv[:2])} failed ({done.returncode}): "
            f"{(done.stderr or done.stdout).strip().splitlines()[-1] if (done.stderr or done.stdout).strip() else 'no message'}"
        )
    return done.stdout


def queued_jobs(run: Callable[[Sequence[str]], str] = _run) -> dict[str, str]:
    """The jobs (array jobs by their parent id) that SLURM still holds, pending, running or requeued: id -> reason."""
    jobs: dict[str, str] = {}
    for line in run(["squeue", "--noheader", "--format=%F %r"]).splitlines():
        parts = line.split(maxsplit=1)
        if parts:
            jobs.setdefault(parts[0], parts[1].strip() if len(parts) > 1 else "")
    return jobs


def state_path(plan: Plan, dataset: str) -> Path:
    return plan.options.output_dir / dataset / "slurm" / "jobs.json"


def submit(
    plan: Plan,
    options: SlurmOptions,
    *,
    dry_run: bool = False,
    run: Callable[[Sequence[str]], str] = _run,
    workdir: Path | None = None,
) -> list[Submitted]:
    """Write the scripts, then submit the steps not done, in order, each after the jobs of the steps it waits for.

    A step whose job from an earlier submission is still queued is not submitted again: later steps wait on that job.
    ``dry_run``: write the scripts and return what would be submitted (job ids None).
    """
    paths = write_scripts(plan, options, workdir)
    states = {
        dataset: (io.read_json(state_path(plan, dataset)) if state_path(plan, dataset).is_file() else {})
        for dataset in dict.fromkeys(s.dataset for s in plan.steps)
    }
    alive: set[str] = set()
    if not dry_run:
        held = queued_jobs(run)
        ours = {entry.get("job_id") for state in states.values() for entry in state.values()}
        # Jobs of an earlier submission that wait on a job that failed will never start: they are cancelled and
        # their steps submitted again.
        stale = sorted(job for job, reason in held.items() if job in ours and reason == "DependencyNeverSatisfied")
        if stale:
            logger.info("cancelling jobs %s of an earlier submission: they wait on a job that failed", ", ".join(stale))
            run(["scancel", *stale])
        alive = {job for job in held if job not in stale}
    job_of: dict[str, str] = {}
    out: list[Submitted] = []
    for step in plan.steps:
        waits = [step_key for step_key in step.after if step_key in job_of]
        todo = step.todo
        if step.step == "report" and not todo and waits:
            todo = (0,)  # something it reports on runs again, so the report is written again after it
        if not todo:
            out.append(Submitted(step.key, None, (), paths[step.key]))
            continue
        earlier = states[step.dataset].get(step.key)
        if earlier and earlier.get("job_id") in alive:
            job_of[step.key] = earlier["job_id"]
            out.append(Submitted(step.key, earlier["job_id"], tuple(earlier.get("tasks", ())), paths[step.key], reused=True))
            continue
        argv = ["sbatch", "--parsable"]
        if step.tasks > 1:
            argv.append(f"--array={','.join(map(str, todo))}")
        if waits:
            argv.append("--dependency=afterok:" + ":".join(job_of[k] for k in waits))
        argv.append(str(paths[step.key]))
        if dry_run:
            logger.info("would submit: %s", " ".join(shlex.quote(a) for a in argv))
            out.append(Submitted(step.key, None, todo, paths[step.key]))
            job_of[step.key] = f"<{step.key}>"
            continue
        job_id = run(argv).strip().split(";")[0]
        if not job_id.isdigit():
            raise InparsError(
                f"sbatch answered {job_id!r} for {paths[step.key]}, not a job id; check the script's #SBATCH options"
            )
        logger.info(
            "submitted %s as job %s%s", step.key, job_id, f" (tasks {','.join(map(str, todo))})" if step.tasks > 1 else ""
        )
        job_of[step.key] = job_id
        states[step.dataset][step.key] = {"job_id": job_id, "tasks": list(todo), "script": str(paths[step.key])}
        out.append(Submitted(step.key, job_id, todo, paths[step.key]))
    if not dry_run:
        for dataset, state in states.items():
            io.write_json(state_path(plan, dataset), state)
    return out
