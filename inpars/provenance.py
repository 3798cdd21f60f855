"""What every stage writes beside its output: the resolved config, library versions, the seed, the git commit.

The commit names the code that ran. A git checkout (an editable install) says it live. An installed copy has no git
(a wheel, the image), so the build records it: ``setup.py`` writes ``inpars/_commit.txt`` into every wheel it builds,
from ``$INPARS_COMMIT`` where that is set (the image's build passes it, since its context has no ``.git``), else from
the checkout being built, else from the file an sdist carries.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

_LIBRARIES = (
    "inpars", "torch", "transformers", "sentence-transformers", "bm25s", "ir-measures", "ir-datasets", "pyserini", "vllm",
)

COMMIT_FILE = "_commit.txt"
"""Beside this module in a built copy of inpars: the commit it was built from."""
COMMIT_ENV = "INPARS_COMMIT"
"""Read by the build only: the commit to record where the source tree has no git (the image's build context)."""
_COMMIT = re.compile(r"[0-9a-f]{7,64}(-dirty)?")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def checkout_commit(folder: str | Path, tracked: str | None = None) -> str | None:
    """The commit checked out where ``folder`` lies, with ``-dirty`` when tracked files differ from it; None without git.

    ``tracked``: a file in ``folder`` that must belong to that checkout, so that a copy of inpars that merely lies
    inside another project's checkout (a virtual environment there, an unpacked sdist) is not given that project's commit.
    """
    folder = Path(folder)
    head = _git(folder, "rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return None
    if tracked is not None:
        owned = _git(folder, "ls-files", "--error-unmatch", "--", tracked)
        if owned is None or owned.returncode != 0:
            return None
    dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return head.stdout.strip() + ("-dirty" if dirty is not None and dirty.stdout.strip() else "")


def recorded_commit(package: str | Path | None = None) -> str | None:
    """The commit that the build of this copy of inpars recorded (``package``: the folder of another copy)."""
    path = Path(package or Path(__file__).resolve().parent) / COMMIT_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text if _COMMIT.fullmatch(text) else None


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the inpars code that runs: the one its build recorded, else that of the git checkout it lies in.

    ``path``: the checkout of that folder instead. None when nothing says (a copy built without git and without
    ``$INPARS_COMMIT``).
    """
    if path is not None:
        return checkout_commit(path)
    here = Path(__file__).resolve().parent
    return recorded_commit(here) or checkout_commit(here, tracked=Path(__file__).name)


def build_commit(source: str | Path) -> str | None:
    """The commit that a build of the source tree ``source`` records: ``$INPARS_COMMIT``, else the checkout's, else the
    one recorded in the tree (an unpacked sdist)."""
    source = Path(source)
    given = os.environ.get(COMMIT_ENV, "").strip()
    if given:
        if not _COMMIT.fullmatch(given):
            raise ValueError(f"{COMMIT_ENV}={given!r} is not a commit: give 'git rev-parse HEAD', '-dirty' added if need be")
        return given
    return checkout_commit(source, tracked="inpars/provenance.py") or recorded_commit(source / "inpars")


def record_commit(package: str | Path, source: str | Path) -> str | None:
    """Write the build commit of ``source`` into the built package folder ``package`` (removing a stale one when none)."""
    commit = build_commit(source)
    target = Path(package) / COMMIT_FILE
    if commit:
        target.write_text(commit + "\n", encoding="utf-8")
    else:
        target.unlink(missing_ok=True)
    return commit
