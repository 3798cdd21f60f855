"""The reproduction tables ship in the wheel: installed into a fresh environment, `inpars reproduce --list` finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_the_tables_and_the_installed_cli_lists_them(tmp_path):
    source = tmp_path / "source"  # built from a copy, so the checkout gets no build/ or egg-info
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "inpars", source / "inpars", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "reproduce", source / "reproduce", ignore=ignore)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
        check=True,
    )
    (wheel,) = dist.glob("inpars-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
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
    listed = subprocess.run(
        [python, "-c", "import sys; from inpars.cli import main; sys.argv = ['inpars', 'reproduce', '--list']; main()"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=False,
    )
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any(line.startswith("scifact bm25-flat ") for line in lines) and any(
        line.startswith("faq-construction ") for line in lines
    )
