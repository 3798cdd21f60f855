"""How many CPU threads inpars and torch run, and how idle ones wait.

A process may use fewer cores than the machine has: its affinity mask (taskset, SLURM's or Docker's cpuset), SLURM's
``--cpus-per-task``, a cgroup CPU quota (``docker run --cpus``, a Kubernetes CPU limit). :func:`usable_cpus` takes the
smallest of them. torch's intra-op pool and inpars' own pools (``retrieve.threads: 0``) are sized from it: a pool
sized to the machine under a quota of two CPUs spends most of its time throttled.

torch's CPU build runs that pool on GNU OpenMP, whose idle threads spin before they sleep. Alone on its cores that
saves a wake-up; beside another busy process the spinning threads take the time slices that the other's working
threads (and their own process's) need, and both crawl. ``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep at once.
OpenMP reads it when its library loads, so :func:`configure` runs before anything imports torch (the CLI calls it first).
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

WAIT_POLICY = "PASSIVE"
"""The ``OMP_WAIT_POLICY`` that :func:`configure` sets where the environment has none."""
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def affinity_cpus() -> int:
    """The CPUs of this process's affinity mask (``os.cpu_count()`` where the platform has no masks)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def slurm_cpus(environ: Mapping[str, str] | None = None) -> int | None:
    """SLURM's ``--cpus-per-task`` for this job step (``SLURM_CPUS_PER_TASK``), None outside such a job."""
    value = (os.environ if environ is None else environ).get("SLURM_CPUS_PER_TASK", "").strip()
    if not value:
        return None
    try:
        return max(1, int(value))
    except ValueError:
        logger.warning("SLURM_CPUS_PER_TASK=%r is not a number; ignored", value)
        return None


def _quota(text: str) -> int | None:
    """Whole CPUs of a quota written as ``QUOTA PERIOD`` (cgroup v2 ``cpu.max``; ``max`` is none). Rounded down: an
    OpenMP region waits for its slowest thread, so a thread beyond the quota stalls every other one when throttled."""
    parts = text.split()
    if len(parts) != 2 or parts[0] in ("max", "-1"):
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, quota // period) if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _v2_limit(folder: Path) -> int | None:
    return _quota(_read(folder / "cpu.max") or "")


def _v1_limit(folder: Path) -> int | None:
    quota, period = (_read(folder / name) or "" for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
    return _quota(f"{quota.strip()} {period.strip()}")


def cgroup_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """The smallest CPU quota on this process's cgroup and its ancestors (v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us``
    over ``cpu.cfs_period_us``), None where there is none or no cgroup file system."""
    limits = []
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:  # v2: the one unified hierarchy
            base, limit_of = root, _v2_limit
        elif "cpu" in controllers.split(","):
            base, limit_of = root / controllers, _v1_limit
            if not base.is_dir():
                base = root / "cpu"
        else:
            continue
        # Inside a container the mount's root is the container's own cgroup, whatever path the host gives it.
        folder = base / path.strip().lstrip("/")
        if not folder.is_dir():
            folder = base
        while True:
            limit = limit_of(folder)
            if limit is not None:
                limits.append(limit)
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return min(limits, default=None)


def usable_cpus(environ: Mapping[str, str] | None = None) -> int:
    """The CPUs this process may use: its affinity mask, narrowed by SLURM's ``--cpus-per-task`` and a cgroup quota."""
    return min(n for n in (affinity_cpus(), slurm_cpus(environ), cgroup_cpus()) if n is not None)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` right after ``name`` is first imported, without importing it now: torch takes seconds to
    import and many commands never need it. A look-up alone (``importlib.util.find_spec``, as transformers does to see
    whether torch is installed) runs nothing and keeps the hook."""

    def __init__(self, name: str, then: Callable) -> None:
        self.name, self.then = name, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        others = (finder for finder in sys.meta_path if finder is not self and hasattr(finder, "find_spec"))
        spec = next((found for finder in others if (found := finder.find_spec(fullname, path, target)) is not None), None)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            execute = spec.loader.exec_module

            def exec_module(module) -> None:
                execute(module)
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                self.then(module)

            spec.loader.exec_module = exec_module
        return spec


def _set_torch_threads(torch, threads: int) -> None:
    if torch.get_num_threads() != threads:
        logger.debug("torch: %d threads (was %d)", threads, torch.get_num_threads())
        torch.set_num_threads(threads)


def configure() -> None:
    """Size torch's CPU threads to :func:`usable_cpus` and let idle OpenMP threads sleep.

    ``OMP_WAIT_POLICY`` and ``OMP_NUM_THREADS`` that the environment already has are kept (and torch keeps the threads
    ``OMP_NUM_THREADS`` gives it). Call it before torch is imported; torch imported already gets its threads now, but
    its OpenMP has read its wait policy already.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    if "OMP_NUM_THREADS" in os.environ:
        return
    threads = usable_cpus()
    if "torch" in sys.modules:
        _set_torch_threads(sys.modules["torch"], threads)
    elif not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport("torch", lambda torch: _set_torch_threads(torch, threads)))
