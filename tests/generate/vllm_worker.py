"""The vllm backend in a process of its own, for tests/generate/test_vllm_backend.py.

vLLM starts its engine in a spawned process, which re-imports the main module: that works from a script with a
``__main__`` guard, not from inside pytest. This script builds the generator the way ``inpars generate`` does
(``from_config``), prepares the prompts with the generator's own tokenizer, generates greedily for all documents
in one call, again for one request alone, and through the generation stage (``generate_queries``), then samples
them twice (one batch, and reversed in batches of four) to check per-request seeds, and writes everything, with
timings, as JSON.

Usage: python vllm_worker.py SPEC.json OUT.json, where SPEC holds ``documents`` (texts), ``prompt``,
``max_doc_tokens``, ``max_new_tokens``, ``dtype``, ``stage_output`` (where the stage writes its queries) and,
optionally, ``model`` (the embedded SmolLM2 where it is absent).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path


def _rows(generations) -> list[dict]:
    return [{"text": g.text, "log_probs": list(g.log_probs), "finished": g.finished} for g in generations]


def run(spec: dict) -> dict:
    from inpars.config import GenerateConfig
    from inpars.data import Doc
    from inpars.generate import GenerationRequest, generate_queries, generators
    from inpars.generate.base import request_seed
    from inpars.prompt import load_prompt

    config = GenerateConfig(
        backend="vllm", model=spec.get("model", "embedded:smollm2-135m"), dtype=spec["dtype"],
        max_new_tokens=spec["max_new_tokens"], max_doc_tokens=spec["max_doc_tokens"],
    )
    started = time.perf_counter()
    generator = generators.get("vllm").from_config(config)
    engine_seconds = time.perf_counter() - started

    prompt = load_prompt(spec["prompt"])
    suffixes = [prompt.suffix(generator.truncate(text, config.max_doc_tokens)) for text in spec["documents"]]
    requests = [GenerationRequest(prompt.prefix, suffix, request_seed(0, f"d{i}")) for i, suffix in enumerate(suffixes)]

    started = time.perf_counter()
    greedy = generator.generate(requests, max_new_tokens=config.max_new_tokens)
    greedy_seconds = time.perf_counter() - started
    alone = generator.generate(requests[2:3], max_new_tokens=config.max_new_tokens)

    docs = [Doc(doc_id=f"d{i:02d}", text=text, title="") for i, text in enumerate(spec["documents"])]
    output = Path(spec["stage_output"])
    summary = generate_queries(docs, config, output, generator=generator)

    sampled = generator.generate(requests, max_new_tokens=config.max_new_tokens, temperature=1.0)
    reordered = list(reversed(requests))
    resampled: list = []
    for start in range(0, len(reordered), 4):
        resampled.extend(generator.generate(reordered[start : start + 4], max_new_tokens=config.max_new_tokens, temperature=1.0))
    resampled.reverse()

    return {
        "first_ids": generator.prompt_ids(requests[0])[:2],
        "bos_id": generator.tokenizer.bos_token_id,
        "suffixes": suffixes,
        "prompt_lengths": [generator.prompt_length(r) for r in requests],
        "max_length": generator.max_length,
        "greedy": _rows(greedy),
        "alone": _rows(alone),
        "stage": [json.loads(line) for line in output.read_text().splitlines()],
        "stage_summary": summary.as_dict(),
        "sampled": _rows(sampled),
        "resampled": _rows(resampled),
        "engine_seconds": engine_seconds,
        "greedy_seconds": greedy_seconds,
    }


def spawn(spec: dict, folder: Path, timeout: float) -> dict:
    """Run this worker on ``spec`` in a subprocess (files in ``folder``) and return its output, with
    ``process_seconds``; a failed worker fails the calling test with the end of its stderr."""
    import os
    import subprocess

    import pytest

    (folder / "spec.json").write_text(json.dumps(spec))
    # On the CPU build, vLLM reserves a fraction of all memory for its KV cache unless told a size (in GiB).
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, str(folder / "spec.json"), str(folder / "out.json")],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"the vllm worker failed (exit {done.returncode}):\n{done.stderr[-6000:]}")
    out = json.loads((folder / "out.json").read_text())
    out["process_seconds"] = time.perf_counter() - started
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    spec_file, out_file = sys.argv[1:3]
    Path(out_file).write_text(json.dumps(run(json.loads(Path(spec_file).read_text()))))
