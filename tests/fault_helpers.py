"""What the fault-injection tests run in a child process: one ``inpars`` command, as a user runs it, optionally
paused half-way through writing one file so that a kill lands there and nowhere else.

Children are forked from a server that has imported inpars, torch and transformers once, so a kill point costs
the stage's work and not a fresh interpreter's imports.
"""

from __future__ import annotations

import contextlib
import io as memory
import os
import time
from pathlib import Path

PRELOAD = [
    "fault_helpers",
    "inpars.cli",
    "inpars.pipeline",
    "inpars.generate.hf",
    "inpars.rerank.monot5",
    "inpars.retrieve.bm25s",
    "inpars.reproduce",
    "inpars.evaluate",
    "transformers.models.llama.modeling_llama",
    "transformers.models.t5.modeling_t5",
]


def pause_mid_write(name: str, marker: str) -> None:
    """Stop this process half-way through its first write of a file called ``name``.

    Every output goes through ``inpars.io.atomic_write``; for that one file, what the writer produces is collected,
    the first half of its bytes goes to the real temporary file (flushed to disk), ``marker`` is created, and the
    process sleeps until it is killed. Nothing else about the write changes: the temporary file, its name and the
    rename that would follow are the library's own.
    """
    from inpars import io

    real = io.atomic_write
    paused = False

    @contextlib.contextmanager
    def atomic_write(path, mode: str = "w"):
        nonlocal paused
        if paused or Path(path).name != name:
            with real(path, mode) as handle:
                yield handle
            return
        paused = True
        with real(path, mode) as handle:
            collected = memory.BytesIO() if "b" in mode else memory.StringIO()
            yield collected
            content = collected.getvalue()
            handle.write(content[: len(content) // 2])
            handle.flush()
            os.fsync(handle.fileno())
            Path(marker).touch()
            while True:
                time.sleep(60)

    io.atomic_write = atomic_write


def run_command(args: list[str], log: str, pause: tuple[str, str] | None = None) -> None:
    """Run ``inpars ARGS`` in this process, its output going to ``log``; exit with the command's status.

    ``pause``: (file name, marker path) for :func:`pause_mid_write`.
    """
    import torch

    torch.set_num_threads(1)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if pause is not None:
        pause_mid_write(*pause)
    from inpars.cli import app

    try:
        app(args, prog_name="inpars")
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    os._exit(0)


def write_tiny_recipe(folder: Path, t5: Path, train_extra: str = "", tail: str = "") -> Path:
    """A whole recipe with tiny models on 40 made-up documents (a random Llama writes, a tiny T5 reranks): seconds
    a run, for tests that run, kill or force every stage. ``train_extra`` adds keys to the train section, ``tail`` lines."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "generate"))
    from generate_helpers import WORDS, make_docs, save_random_llama

    from inpars.data import Query
    from inpars.io import write_beir_folder

    docs = make_docs(40, seed=5)
    queries = [Query(f"q{i}", f"what is {WORDS[i]} {WORDS[i + 3]}") for i in range(12)]
    write_beir_folder(folder / "data", docs, queries, {f"q{i}": {docs[i].doc_id: 1} for i in range(12)})
    llama = save_random_llama(folder / "llama")
    path = folder / "recipe.yaml"
    path.write_text(f"""name: f
dataset: {folder / "data"}
generate: {{model: {llama}, device: cpu, max_new_tokens: 8, batch_size: 4}}
filter: {{method: mean_log_probs, top_k: 30}}
negatives: {{depth: 10, num_negatives: 1}}
train:
  {{reranker: monot5, model: {t5}, max_steps: 8, batch_size: 8, learning_rate: 1.0e-3, max_length: 48,
   warmup_ratio: 0.0{train_extra}}}
retrieve: {{top_k: 10}}
rerank: {{top_k: 5, batch_size: 16}}
{tail}""")
    return path


def stage_rows(output: str, stages: tuple[str, ...]) -> dict[str, bool]:
    """The stage table ``inpars run`` prints: stage -> whether it was shown as cached (skipped)."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        if cells and cells[0].split(" ")[0] in stages:
            rows[cells[0].split(" ")[0]] = cells[0].endswith("(cached)")
    return rows
