"""The wheel: built from a checkout it carries the reproduction tables and the commit it was built from; installed into a
fresh environment (no git there), `inpars reproduce --list` finds the tables and inpars.provenance reports the commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from inpars.provenance import COMMIT_ENV, COMMIT_FILE, build_commit, record_commit, recorded_commit

ROOT = Path(__file__).resolve().parent.parent


def _git(folder: Path, *args: str) -> str:
    identity = ("-c", "user.name=inpars tests", "-c", "user.email=tests@inpars.invalid", "-c", "commit.gpgsign=false")
    return subprocess.run(["git", *identity, *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


def _source_tree(folder: Path) -> None:
    """A copy at ``folder`` of what the build reads, so that the checkout gets no build/ or egg-info."""
    folder.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, folder / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", COMMIT_FILE)
    shutil.copytree(ROOT / "inpars", folder / "inpars", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "reproduce", folder / "reproduce", ignore=ignore)


def _source_checkout(folder: Path) -> str:
    """That copy made a git checkout of one commit; returns the commit."""
    _source_tree(folder)
    _git(folder, "init", "-q")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-q", "-m", "the tree under test")
    return _git(folder, "rev-parse", "HEAD")


def _build_wheel(source: Path, dist: Path, env: dict[str, str] | None = None) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
        check=True, env=env,
    )
    (wheel,) = dist.glob("inpars-*.whl")
    return wheel


def _without_commit_variable() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != COMMIT_ENV}


def test_the_wheel_carries_the_tables_and_the_commit_and_the_installed_copy_reports_them(tmp_path):
    source = tmp_path / "source"
    env = _without_commit_variable()
    if shutil.which("git"):
        commit = _source_checkout(source)
    else:  # as in the image: a tree without git, the commit given as the image's build gives it
        _source_tree(source)
        commit = env[COMMIT_ENV] = "0123456789abcdef0123456789abcdef01234567"
    wheel = _build_wheel(source, tmp_path / "dist", env=env)
    names = zipfile.ZipFile(wheel).namelist()
    assert zipfile.ZipFile(wheel).read(f"inpars/{COMMIT_FILE}").decode() == commit + "\n"
    tables = sorted(n for n in names if n.startswith("inpars/tables/"))
    assert (
        tables == sorted(f"inpars/tables/{p.name}" for p in (ROOT / "reproduce").glob("*.yaml"))
        and "inpars/tables/beir.yaml" in tables
    )

    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
            check=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheel)], check=True
    )
    # The dependencies (typer, rich, PyYAML, ...) come from this environment, after the wheel's own copy of inpars.
    (site / "zz-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("INPARS_REPRODUCE_TABLES", "PYTHONPATH")}
    where = subprocess.run(
        [python, "-c", "import inpars.reproduce; print(inpars.reproduce.__file__)"], capture_output=True, text=True, check=True,
        cwd=tmp_path, env=env,
    )
    assert where.stdout.strip().startswith(str(site))
    # The installed copy has no git checkout around it: the commit comes from the wheel.
    reported = subprocess.run(
        [python, "-c", "from inpars.provenance import git_commit; print(git_commit())"], capture_output=True, text=True,
        check=True, cwd=tmp_path, env=env,
    )
    assert reported.stdout.strip() == commit
    listed = subprocess.run(
        [python, "-c", "import sys; from inpars.cli import main; sys.argv = ['inpars', 'reproduce', '--list']; main()"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False,
    )
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any(line.startswith("scifact bm25-flat ") for line in lines) and any(
        line.startswith("faq-construction ") for line in lines
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_an_sdist_carries_the_commit_to_the_wheel_built_from_it(tmp_path):
    source = tmp_path / "source"
    commit = _source_checkout(source)
    dist = tmp_path / "sdist"
    env = _without_commit_variable()
    subprocess.run(
        [sys.executable, "-c", "import sys, setuptools.build_meta as b; b.build_sdist(sys.argv[1])", str(dist)], cwd=source,
        check=True, capture_output=True, env=env,
    )
    (sdist,) = dist.glob("inpars-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    assert (unpacked / "inpars" / COMMIT_FILE).read_text() == commit + "\n"
    # Unpacked where no git knows it, the sdist's record is all a build has.
    wheel = _build_wheel(unpacked, tmp_path / "dist", env=env)
    assert zipfile.ZipFile(wheel).read(f"inpars/{COMMIT_FILE}").decode() == commit + "\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_build_commit_comes_from_the_variable_else_the_checkout_with_dirty(tmp_path, monkeypatch):
    source = tmp_path / "source"
    commit = _source_checkout(source)
    monkeypatch.delenv(COMMIT_ENV, raising=False)
    assert build_commit(source) == commit
    readme = source / "README.md"
    readme.write_text(readme.read_text() + "\nan edit not committed\n")
    assert build_commit(source) == commit + "-dirty"
    # The image's build: no .git in its context, the commit given by 'make docker-build'.
    plain = tmp_path / "context"
    shutil.copytree(source, plain, ignore=shutil.ignore_patterns(".git"))
    assert build_commit(plain) is None
    monkeypatch.setenv(COMMIT_ENV, "0123456789abcdef0123456789abcdef01234567-dirty")
    assert build_commit(plain) == build_commit(source) == "0123456789abcdef0123456789abcdef01234567-dirty"
    package = tmp_path / "built"
    package.mkdir()
    assert record_commit(package, plain) == "0123456789abcdef0123456789abcdef01234567-dirty"
    assert recorded_commit(package) == "0123456789abcdef0123456789abcdef01234567-dirty"
    monkeypatch.setenv(COMMIT_ENV, "main")
    with pytest.raises(ValueError, match="INPARS_COMMIT='main' is not a commit: give 'git rev-parse HEAD'"):
        build_commit(plain)
    # A build that finds no commit leaves none behind from an earlier build into the same folder.
    monkeypatch.delenv(COMMIT_ENV)
    assert record_commit(package, plain) is None and not (package / COMMIT_FILE).exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_copy_inside_another_projects_checkout_is_not_given_its_commit(tmp_path):
    """A virtual environment inside a user's project: git answers there, but with the project's commit, not inpars's."""
    project = tmp_path / "project"
    project.mkdir()
    (project / ".gitignore").write_text(".venv/\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "a user's project")
    site = project / ".venv" / "site-packages"
    shutil.copytree(ROOT / "inpars", site / "inpars", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", COMMIT_FILE))
    ask = [sys.executable, "-c", "from inpars.provenance import git_commit; print(git_commit())"]
    env = {**os.environ, "PYTHONPATH": str(site)}
    assert subprocess.run(ask, capture_output=True, text=True, check=True, cwd=tmp_path, env=env).stdout.strip() == "None"
    (site / "inpars" / COMMIT_FILE).write_text("89abcdef0123456789abcdef0123456789abcdef\n")
    assert (
        subprocess.run(ask, capture_output=True, text=True, check=True, cwd=tmp_path, env=env).stdout.strip()
        == "89abcdef0123456789abcdef0123456789abcdef"
    )
