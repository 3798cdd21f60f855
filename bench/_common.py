"""What the effectiveness benches share: quiet logging and a finished run to start from."""

from __future__ import annotations

import logging
from pathlib import Path

from inpars import io
from inpars.datasets import load_dataset

NOISY = ("httpx", "urllib3", "filelock", "transformers", "sentence_transformers", "bm25s")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def generated_run(folder: Path):
    """The recipe (as recorded in ``folder/config.json``) and the collection of a run whose generate stage is done."""
    source = io.read_json(folder / "config.json")
    if io.read_json(folder / "generate" / "stage.json").get("status") != "done":
        raise SystemExit(f"{folder}: its generate stage is not done")
    return source, load_dataset(source["dataset"])
