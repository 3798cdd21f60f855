"""What the benches share: quiet logging, a finished run to start from, and the CPU flags beside every figure.

inpars is imported where it is used, so that a bench whose parent process stays light (scale.py) can import this."""

from __future__ import annotations

import logging
from pathlib import Path

NOISY = ("httpx", "urllib3", "filelock", "transformers", "sentence_transformers", "bm25s")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def generated_run(folder: Path):
    """The recipe (as recorded in ``folder/config.json``) and the collection of a run whose generate stage is done."""
    from inpars import io
    from inpars.datasets import load_dataset

    source = io.read_json(folder / "config.json")
    if io.read_json(folder / "generate" / "stage.json").get("status") != "done":
        raise SystemExit(f"{folder}: its generate stage is not done")
    return source, load_dataset(source["dataset"])


def cpu_flags() -> str:
    """The vector-instruction flags of this CPU that decide CPU inference speed, to print beside a timing."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return " ".join(shown) or "no AVX2"
