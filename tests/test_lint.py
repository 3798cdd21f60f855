"""The project's ruff settings keep the line-length rule on: a line over 130 characters is an error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed (pip install \"inpars[dev]\")")


@pytest.mark.parametrize(("width", "flagged"), [(130, False), (131, True)])
def test_lines_over_130_characters_are_refused(width, flagged):
    line = "x = " + repr("a" * (width - 6)) + "\n"
    assert len(line) == width + 1
    command = [*_ruff(), "check", "--config", str(ROOT / "pyproject.toml"), "--stdin-filename", "inpars/example.py", "-"]
    result = subprocess.run(command, input=line, capture_output=True, text=True, check=False)
    assert ("E501" in result.stdout) == flagged, result.stdout + result.stderr
