"""What the fault-injection tests run in a child process: one ``inpars`` command, as a user runs it.

Children are forked from a server that has imported inpars, torch and transformers once, so a kill point costs
the stage's work and not a fresh interpreter's imports.
"""

from __future__ import annotations

import os

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


def run_command(args: list[str], log: str) -> None:
    """Run ``inpars ARGS`` in this process, its output going to ``log``; exit with the command's status."""
    import torch

    torch.set_num_threads(1)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from inpars.cli import app

    try:
        app(args, prog_name="inpars")
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    os._exit(0)
