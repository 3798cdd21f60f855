"""The image, used as a researcher would use it: its listing, its own versions under the test suite, the offline
regression and the rehearsal of a paper condition through 'make', as a user who is not root, with the caches mounted.

Needs a Docker engine and the image named by $INPARS_IMAGE (default inpars:latest): 'make docker-test' builds it on the
bootstrapped twin of its base and runs this module. A missing engine or image fails here: this tier is only selected
where Docker can be installed, and CI installs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("INPARS_IMAGE", "inpars:latest")
USER = "1234:1234"
"""A uid and gid that own nothing here: what the container writes must come out readable and owned by the caller."""


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("docker") is None:
        pytest.fail("no docker client; 'make docker-test' needs Docker (Debian: apt-get install docker.io)")
    found = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, text=True, timeout=60, check=False)
    if found.returncode != 0:
        pytest.fail(
            f"no image {IMAGE} ({found.stderr.strip()[:200]}); build it with 'make docker-build' or run 'make docker-test'"
        )
    return IMAGE


def docker_run(
    image: str,
    *args: str,
    user: str | None = USER,
    mounts: dict[Path, str] | None = None,
    network: str = "host",
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    command = ["docker", "run", "--rm", "--network", network]
    if user:
        command += ["--user", user]
    for source, target in (mounts or {}).items():
        command += ["-v", f"{source}:{target}"]
    command += [image, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def open_folder(path: Path) -> Path:
    """A folder that the container's user can write, as a user's own folder would be."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def test_the_image_lists_its_tables_and_targets(image):
    listing = docker_run(image, "reproduce", "--list")
    assert listing.returncode == 0, listing.stderr
    assert (
        "scifact bm25-flat" in listing.stdout
        and "faq-construction demo" in listing.stdout
        and "mini-faq rehearsal-bm25-flat" in listing.stdout
    )
    targets = docker_run(image, "make", "help")
    assert targets.returncode == 0, targets.stderr
    assert "reproduce-scifact" in targets.stdout and "reproduce-mini-faq" in targets.stdout and "regression" in targets.stdout


def test_the_image_runs_what_its_lock_says(image):
    installed = docker_run(
        image, "python", "/opt/inpars/docker/check_pins.py", "--installed", "--lock", "/opt/inpars/docker/requirements.lock"
    )
    assert installed.returncode == 0 and installed.stdout.startswith("ok: "), installed.stdout + installed.stderr
    probe = docker_run(
        image,
        "python",
        "-c",
        "import os, shutil, sys, sysconfig, importlib.metadata as m; "
        "print(sys.version_info[:2] == (3, 13), bool(shutil.which('gcc')), "
        "os.path.isfile(os.path.join(sysconfig.get_paths()['include'], 'Python.h')), "
        "m.version('vllm'), m.version('triton') != '', m.version('pyserini'))",
    )
    assert probe.returncode == 0, probe.stderr
    # Python 3.13, and what triton needs to compile its launcher at run time: a C compiler and the Python headers.
    assert probe.stdout.split() == ["True", "True", "True", _locked("vllm"), "True", _locked("pyserini")]
    java = docker_run(image, "java", "--list-modules")
    assert java.returncode == 0 and any(line.startswith("jdk.incubator.vector@21") for line in java.stdout.splitlines()), (
        java.stdout[:300]
    )


def test_the_lock_is_what_the_resolver_makes(tmp_path):
    """uv re-resolves a copy of the lock from docker/requirements.in and pyproject.toml: a consistent lock comes back
    unchanged (a hand edit that breaks a requirement, or a requirement changed without 'make lock', does not)."""
    import sys

    copy = tmp_path / "requirements.lock"
    shutil.copy(ROOT / "docker" / "requirements.lock", copy)
    result = subprocess.run(
        ["make", "-s", "lock", f"LOCK_OUT={copy}", f"PYTHON={sys.executable}"], cwd=ROOT, capture_output=True, text=True,
        timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert copy.read_text() == (ROOT / "docker" / "requirements.lock").read_text(), (
        "the lock is not what the resolver makes: run 'make lock'"
    )


def _locked(package: str) -> str:
    spec = importlib.util.spec_from_file_location("check_pins", ROOT / "docker" / "check_pins.py")
    check_pins = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_pins)
    pins, problems = check_pins.read_lock(ROOT / "docker" / "requirements.lock")
    assert not problems and package in pins, problems or f"{package} is not in the lock"
    return pins[package]


def test_the_suite_passes_on_the_image_versions(image, tmp_path):
    """The default tier, run by the image's interpreter on the image's packages, in a copy of the source that the
    container's user owns (some tests write beside themselves)."""
    source = open_folder(tmp_path / "source")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    subprocess.run(["chmod", "-R", "a+rwX", str(source)], check=True)
    result = docker_run(
        image, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", mounts={source: "/workspace"}, timeout=1800
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]


def _owned_and_readable(path: Path) -> None:
    info = path.stat()
    assert (info.st_uid, info.st_gid) == (1234, 1234), f"{path} is owned by {info.st_uid}:{info.st_gid}"
    assert stat.S_IMODE(info.st_mode) & 0o044 == 0o044, (
        f"{path} is {oct(stat.S_IMODE(info.st_mode))}: not readable by group and others"
    )


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[Path, str]:
    """The caches the Makefile mounts (HF hub, pyserini, inpars under /cache; ir_datasets under /cache/ir_datasets)."""
    root = tmp_path_factory.mktemp("cache")
    return {open_folder(root / "cache"): "/cache", open_folder(root / "ir_datasets"): "/cache/ir_datasets"}


def test_the_offline_regression_runs_through_make(image, caches, tmp_path):
    workspace = open_folder(tmp_path / "workspace")
    result = docker_run(image, "make", "regression", mounts={workspace: "/workspace", **caches}, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    report = workspace / "runs" / "reproduce" / "faq-construction"
    for name in ("report.md", "report.png", "results.json"):
        _owned_and_readable(report / name)
    results = json.loads((report / "results.json").read_text())
    assert results and "OK: " in result.stdout


def test_the_paper_rehearsal_runs_through_make_and_reuses_the_caches(image, caches, tmp_path):
    workspace = open_folder(tmp_path / "workspace")
    mounts = {workspace: "/workspace", **caches}
    result = docker_run(image, "make", "reproduce-mini-faq", mounts=mounts, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "OK: 3 cells within their tolerance" in result.stdout
    report = workspace / "runs" / "reproduce" / "mini-faq"
    for name in ("report.md", "report.png", "results.json"):
        _owned_and_readable(report / name)
    # The image has no git: the commit it was built from is recorded at build time, and the report names it.
    from inpars.provenance import git_commit

    assert f"inpars commit `{git_commit()}`" in (report / "report.md").read_text()
    for stage in ("generate", "filter", "negatives", "train", "retrieve", "rerank", "evaluate"):
        assert (report / "rehearsal-inpars-v2" / stage / "stage.json").is_file(), stage
    # The Lucene index and the converted models live in the mounted cache: a fresh run folder, with no network at
    # all, finds them there.
    assert any((next(iter(caches)) / "inpars" / "indexes").iterdir())
    again = open_folder(tmp_path / "again")
    shutil.copytree(workspace / "runs" / "mini-faq", again / "runs" / "mini-faq")
    subprocess.run(["chmod", "-R", "a+rwX", str(again)], check=True)
    offline = docker_run(
        image, "make", "reproduce-mini-faq", "CONDITION=rehearsal-bm25-flat", mounts={again: "/workspace", **caches},
        network="none",
    )
    assert offline.returncode == 0, offline.stdout[-3000:] + offline.stderr[-2000:]
    assert "index: cached in" in offline.stdout + offline.stderr
