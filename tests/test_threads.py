"""Threads from the cores a process may use (affinity, SLURM, cgroup quota), for torch and for inpars' own pools, and
OpenMP's idle threads told to sleep unless the user says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from inpars import threads
from inpars.errors import InparsError
from inpars.retrieve.base import thread_count

# What a process reports after the CLI's entry point has run (--version: it exits before any command).
PROBE = """
import json, os, sys
from inpars.cli import main
sys.argv = ["inpars", "--version"]
try:
    main()
except SystemExit:
    pass
loaded = "torch" in sys.modules
import importlib.util
importlib.util.find_spec("torch")  # what transformers does to see whether torch is there, before importing it
import torch
from inpars.retrieve.base import thread_count
print(json.dumps({"usable": thread_count(0), "torch": torch.get_num_threads(), "torch_loaded_early": loaded,
                  "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))
"""


def probe(env: dict[str, str], cpus: set[int] | None = None) -> tuple[dict, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**base, **env}, capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_process_pinned_to_one_core_runs_one_thread():
    first = min(os.sched_getaffinity(0))
    seen, _ = probe({}, cpus={first})
    assert seen["usable"] == 1 and seen["torch"] == 1


def test_slurm_cpus_per_task_sizes_torch_and_our_pools():
    seen, _ = probe({"SLURM_CPUS_PER_TASK": "1"})
    # torch not loaded by the CLI's own imports: OpenMP reads the wait policy once, when torch loads it.
    assert seen == {"usable": 1, "torch": 1, "torch_loaded_early": False, "wait_policy": "PASSIVE"}
    assert threads.usable_cpus({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert threads.usable_cpus({"SLURM_CPUS_PER_TASK": "100000"}) == threads.usable_cpus({})
    assert threads.usable_cpus({"SLURM_CPUS_PER_TASK": "two"}) == threads.usable_cpus({})


def test_openmp_waits_passively_by_default_and_a_users_settings_are_kept():
    seen, stderr = probe({"OMP_DISPLAY_ENV": "verbose"})
    assert seen["wait_policy"] == "PASSIVE"
    if "GOMP_SPINCOUNT" in stderr:  # GNU OpenMP (torch's Linux wheels) says what it read: no spinning
        assert "GOMP_SPINCOUNT = '0'" in stderr, stderr
    seen, _ = probe({"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "1", "SLURM_CPUS_PER_TASK": "2"})
    assert seen["wait_policy"] == "ACTIVE" and seen["torch"] == 1 and seen["usable"] == min(2, threads.usable_cpus({}))


def test_cgroup_quotas_v2_take_the_smallest_on_the_path(tmp_path):
    membership = tmp_path / "cgroup"
    membership.write_text("0::/job/step\n")
    (tmp_path / "fs" / "job" / "step").mkdir(parents=True)
    (tmp_path / "fs" / "job" / "cpu.max").write_text("250000 100000\n")
    (tmp_path / "fs" / "job" / "step" / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpus(tmp_path / "fs", membership) == 2  # 2.5 CPUs: rounded down
    (tmp_path / "fs" / "cpu.max").write_text("50000 100000\n")
    assert threads.cgroup_cpus(tmp_path / "fs", membership) == 1  # half a CPU: still one thread
    membership.write_text("0::/\n")
    (tmp_path / "fs" / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpus(tmp_path / "fs", membership) is None


def test_cgroup_quotas_v1_inside_a_container(tmp_path):
    membership = tmp_path / "cgroup"
    membership.write_text("4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    folder = tmp_path / "fs" / "cpu,cpuacct"  # the container's own cgroup is the mount's root
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("300000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpus(tmp_path / "fs", membership) == 3
    (folder / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpus(tmp_path / "fs", membership) is None
    assert threads.cgroup_cpus(tmp_path / "fs", tmp_path / "missing") is None


def test_retrieve_threads():
    assert thread_count(0) == threads.usable_cpus() and thread_count(3) == 3
    with pytest.raises(InparsError, match="retrieve.threads must be 0 .every usable core. or a positive number, got -2"):
        thread_count(-2)
