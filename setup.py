"""The build hook of inpars (everything else is in pyproject.toml): a built copy records the commit it was built from,
for an installed copy has no git to ask (inpars.provenance says where the commit comes from)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def _provenance():
    # Loaded from its file: the build must not import the package (and its dependencies) it is building.
    spec = importlib.util.spec_from_file_location("_inpars_provenance", ROOT / "inpars" / "provenance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyRecordingTheCommit(build_py):
    def run(self) -> None:
        super().run()
        # An editable install runs the checkout itself, whose git gives the commit live.
        if not self.editable_mode:
            _provenance().record_commit(Path(self.build_lib) / "inpars", ROOT)


class SdistRecordingTheCommit(sdist):
    def make_release_tree(self, base_dir, files) -> None:
        super().make_release_tree(base_dir, files)
        _provenance().record_commit(Path(base_dir) / "inpars", ROOT)


setup(cmdclass={"build_py": BuildPyRecordingTheCommit, "sdist": SdistRecordingTheCommit})
