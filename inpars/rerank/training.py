"""Reranker training shared by every backend: the step plan, its checks, the Trainer arguments, checkpoints and resume.

The Hugging Face Trainer runs the loop, so ``torchrun --nproc_per_node N -m inpars.cli train ...`` (or
``accelerate launch``) trains on N GPUs; ``effective_batch_size`` counts examples over all processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpars import io
from inpars.config import TrainConfig, fingerprint, identity, to_dict
from inpars.data import TrainingExample
from inpars.errors import InparsError
from inpars.models import device_of, dtype_name, pick_dtype
from inpars.stage import Stage

logger = logging.getLogger(__name__)

METADATA = "inpars-reranker.json"
"""Written beside a trained model: the reranker kind, its input format and how it was trained."""

SNAPSHOTS = "snapshots"
"""The folder beside ``model`` where a training keeps its snapshots (``train.snapshots``), one ``step-N`` each."""


def world_size() -> int:
    """Processes training together (set by torchrun or accelerate; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


@dataclass(frozen=True)
class TrainingPlan:
    examples: int
    processes: int
    batch_size: int
    accumulation: int
    effective_batch_size: int
    steps: int

    @property
    def epochs(self) -> float:
        return self.steps * self.effective_batch_size / self.examples


def plan_training(
    examples: Sequence[TrainingExample], config: TrainConfig, processes: int | None = None, items: int | None = None
) -> TrainingPlan:
    """Check that the settings train on something and work out the optimiser steps and gradient accumulation.

    ``items`` is what one batch slot holds when that is not one example (a query with its positive and negatives).
    """
    processes = processes or world_size()
    if not examples:
        raise InparsError("no training examples: the filter or negative mining kept nothing; check their settings")
    labels = {e.label for e in examples}
    if labels != {0, 1}:
        raise InparsError(f"training needs positive and negative examples; found only label(s) {sorted(labels)}")
    count, unit = (len(examples), "examples") if items is None else (items, "training items")
    per_step = config.batch_size * processes
    accumulation = config.gradient_accumulation_steps
    if config.effective_batch_size is not None:
        if config.effective_batch_size % per_step:
            raise InparsError(
                f"effective_batch_size {config.effective_batch_size} is not a multiple of batch_size {config.batch_size} x "
                f"{processes} process(es); "
                "change batch_size so that it divides the effective batch"
            )
        derived = config.effective_batch_size // per_step
        if accumulation not in (1, derived):
            raise InparsError(
                f"gradient_accumulation_steps {accumulation} contradicts effective_batch_size {config.effective_batch_size} "
                f"(batch_size {config.batch_size} x {processes} process(es) needs {derived}); set only one of them"
            )
        accumulation = derived
    effective = per_step * accumulation
    if config.max_steps is not None:
        steps = config.max_steps
        if steps * effective > count:
            logger.info(
                "%d steps x %d %s repeat the %d %s %.1f times", steps, effective, unit, count, unit, steps * effective / count
            )
    else:
        seen = count * config.epochs
        if seen < effective:
            raise InparsError(
                f"{count} {unit} x {config.epochs:g} epoch(s) are fewer than one effective batch of {effective} "
                f"(batch_size {config.batch_size} x accumulation {accumulation} x {processes} process(es)), so no step would "
                "be taken; "
                "lower effective_batch_size or batch_size, or set max_steps"
            )
        steps = math.ceil(seen / effective)
    return TrainingPlan(count, processes, config.batch_size, accumulation, effective, steps)


def mixed_precision(precision: str, device: str, seq2seq: bool) -> tuple[bool, bool]:
    """``(bf16, fp16)`` for the Trainer. T5 overflows in fp16, so ``auto`` never picks fp16 for seq2seq models."""
    name = dtype_name(precision)
    if name in ("bfloat16", "float16") and not device.startswith("cuda"):
        raise InparsError(f"precision {precision} needs a CUDA GPU and the device is {device}; use precision auto or fp32")
    if name == "bfloat16":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise InparsError("this GPU has no bf16; use precision fp16 (encoders) or fp32")
    chosen = pick_dtype(precision, device, half=not seq2seq)
    return chosen == "bfloat16", chosen == "float16"


def _examples_digest(examples: Sequence[TrainingExample]) -> str:
    digest = hashlib.sha256()
    for e in examples:
        digest.update(json.dumps([e.query, e.doc, e.label]).encode())
    return digest.hexdigest()[:16]


def _signature(config: TrainConfig, examples: Sequence[TrainingExample], plan: TrainingPlan) -> str:
    learned = identity(config)
    return fingerprint(learned, dataclasses.asdict(plan), _examples_digest(examples))


def _checkpoints(folder: Path) -> list[Path]:
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def _complete(checkpoint: Path) -> bool:
    """Whether the Trainer finished writing ``checkpoint``: it writes trainer_state.json after the weights, optimizer
    and RNG states."""
    try:
        state = io.read_json(checkpoint / "trainer_state.json")
    except (OSError, InparsError):
        return False
    return isinstance(state, dict) and isinstance(state.get("global_step"), int)


def resume_point(config: TrainConfig, checkpoint_dir: Path, signature: str) -> Path | None:
    """The checkpoint to continue from, or None to start afresh; stale checkpoints of another config are removed."""
    if config.resume not in ("auto", "never"):
        path = Path(config.resume)
        if not (path / "trainer_state.json").is_file():
            raise InparsError(
                f"resume: '{path}' is not a training checkpoint (no trainer_state.json); use auto, never or a checkpoint-N folder"
            )
        return path
    marker = checkpoint_dir / "signature.json"
    same = marker.is_file() and io.read_json(marker).get("signature") == signature
    found = _checkpoints(checkpoint_dir)
    # A kill during a save leaves a checkpoint folder without its state: it is removed, and the one before is used.
    partial = [path for path in found if not _complete(path)]
    if partial and is_main_process():
        logger.info(
            "removing %d checkpoint(s) left half-written in %s: %s", len(partial), checkpoint_dir,
            ", ".join(p.name for p in partial),
        )
        for path in partial:
            shutil.rmtree(path)
    found = [path for path in found if path not in partial]
    if config.resume == "auto" and same and found:
        return found[-1]
    if found and is_main_process():
        reason = "resume is never" if config.resume == "never" else "they were written for another config or other data"
        logger.info("removing %d old checkpoint(s) in %s: %s", len(found), checkpoint_dir, reason)
        for path in found:
            shutil.rmtree(path)
    return None


def fit(
    *,
    model: Any,
    tokenizer: Any,
    dataset: Any,
    collator: Any,
    examples: Sequence[TrainingExample],
    config: TrainConfig,
    plan: TrainingPlan,
    output_dir: str | Path,
    device: str,
    seq2seq: bool,
    metadata: dict,
    save: Callable[[Path], None] | None = None,
) -> Path:
    """Train with the Hugging Face Trainer; save the model, its tokenizer and ``inpars-reranker.json`` in ``output_dir/model``.

    ``save(folder)`` replaces the Trainer's own saving, for a model that is a training wrapper around what is kept.
    """
    import transformers

    output_dir = Path(output_dir)
    checkpoint_dir = output_dir / "checkpoints"
    # Built first: its checks (optimizer, scheduler, precision, checkpointing) fail before anything is written.
    trainer = build_trainer(
        model=model, dataset=dataset, collator=collator, config=config, plan=plan, checkpoint_dir=checkpoint_dir, device=device,
        seq2seq=seq2seq, reranker=metadata["reranker"],
    )
    precision = "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32"
    signature = _signature(config, examples, plan)
    resume = resume_point(config, checkpoint_dir, signature)
    if is_main_process():
        io.write_json(checkpoint_dir / "signature.json", {"signature": signature})
    snapshot_dir = output_dir / SNAPSHOTS
    if resume is None and is_main_process():
        shutil.rmtree(snapshot_dir, ignore_errors=True)  # a fresh start: snapshots of an earlier training are stale
    points = snapshot_steps(plan.steps, config.snapshots)
    if points:

        def keep(step: int, trained: Any) -> None:
            folder = snapshot_dir / f"step-{step}"
            if folder.is_dir():
                return  # written before an interruption this training resumed from
            staging = snapshot_dir / f".step-{step}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            if save is not None:
                save(staging)
            else:
                trained.save_pretrained(str(staging))
                tokenizer.save_pretrained(str(staging))
            io.write_json(staging / METADATA, {**metadata, "max_length": config.max_length, "step": step, "of_steps": plan.steps})
            os.replace(staging, folder)
            logger.info("snapshot of step %d of %d in %s", step, plan.steps, folder)

        trainer.add_callback(_Snapshots(transformers.TrainerCallback, points, keep))
    logger.info(
        "training %s (%s) on %d examples: %d steps x effective batch %d (%d per device x %d accumulation x %d process(es)) = "
        "%.2f epochs; "
        "lr %g %s, %s, %s%s",
        config.model,
        metadata["reranker"],
        plan.examples,
        plan.steps,
        plan.effective_batch_size,
        plan.batch_size,
        plan.accumulation,
        plan.processes,
        plan.epochs,
        config.learning_rate,
        config.lr_scheduler,
        config.optimizer,
        precision,
        f", resuming from {resume}" if resume else "",
    )
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    model_dir = output_dir / "model"
    # The model is saved beside its final name and renamed into place: a killed save never looks like a model.
    staging = output_dir / ".model.partial"
    if trainer.is_world_process_zero():
        shutil.rmtree(staging, ignore_errors=True)
    if save is None:
        trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        if save is not None:
            save(staging)
        else:
            tokenizer.save_pretrained(str(staging))
        record = {
            **metadata,
            "max_length": config.max_length,
            "training": {
                "config": to_dict(config),
                "plan": dataclasses.asdict(plan),
                "precision": precision,
                "train_loss": result.training_loss,
                "resumed_from": resume.name if resume else None,
                "seconds": round(time.perf_counter() - started, 3),
            },
        }
        io.write_json(staging / METADATA, record)
        shutil.rmtree(model_dir, ignore_errors=True)
        os.replace(staging, model_dir)
    # Every process returns once the model is in place, so none reads a missing folder or exits while rank 0 still saves.
    wait_for_every_process()
    return model_dir


def _check_trainer_names(config: TrainConfig) -> None:
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    if config.lr_scheduler not in {s.value for s in SchedulerType}:
        raise InparsError(f"unknown lr_scheduler '{config.lr_scheduler}'; use one of {', '.join(s.value for s in SchedulerType)}")
    if config.optimizer not in {o.value for o in OptimizerNames}:
        raise InparsError(
            f"unknown optimizer '{config.optimizer}'; use one of the Trainer's optim names, e.g. adamw_torch or adafactor"
        )


def build_trainer(
    *,
    model: Any,
    dataset: Any,
    collator: Any,
    config: TrainConfig,
    plan: TrainingPlan,
    checkpoint_dir: str | Path,
    device: str,
    seq2seq: bool,
    reranker: str,
) -> Any:
    """The Hugging Face Trainer that :func:`fit` runs: its arguments from ``config`` and ``plan``, gradient checkpointing
    when asked; the GPU rehearsal (``bench/gpu_rehearsal.py``) times its steps."""
    import transformers

    _check_trainer_names(config)
    device = device_of(device)
    bf16, fp16 = mixed_precision(config.precision, device, seq2seq)
    arguments = transformers.Seq2SeqTrainingArguments if seq2seq else transformers.TrainingArguments
    args = arguments(
        output_dir=str(checkpoint_dir),
        max_steps=plan.steps,
        per_device_train_batch_size=plan.batch_size,
        gradient_accumulation_steps=plan.accumulation,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=int(config.warmup_ratio * plan.steps),
        weight_decay=config.weight_decay,
        optim=config.optimizer,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        fp16=fp16,
        use_cpu=not device.startswith("cuda"),
        logging_steps=max(1, plan.steps // 10),
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        save_total_limit=config.save_total_limit,
        report_to=[],
        dataloader_num_workers=0,
        remove_unused_columns=False,
        ddp_find_unused_parameters=False if seq2seq else None,
        disable_tqdm=False,
    )
    if config.gradient_checkpointing:
        enable = getattr(model, "gradient_checkpointing_enable", None)
        if enable is None:
            raise InparsError(
                f"gradient_checkpointing: the {reranker} model cannot recompute its activations; set "
                "train.gradient_checkpointing=false"
            )
        # Non-reentrant checkpointing works when the inputs do not require gradients (token ids never do).
        enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainer_class = transformers.Seq2SeqTrainer if seq2seq else transformers.Trainer
    trainer = trainer_class(model=model, args=args, train_dataset=dataset, data_collator=collator)
    # The models average their own loss over the batch. Left to guess from their **kwargs, the Trainer takes them for
    # models that normalise by the item count across accumulation steps and processes, and so neither divides the
    # loss by the accumulation steps nor leaves it unmultiplied by the process count: gradients would grow with both.
    trainer.model_accepts_loss_kwargs = False
    return trainer


def snapshot_steps(steps: int, count: int) -> list[int]:
    """``count`` evenly spaced steps strictly inside ``1..steps`` (the end is the final model itself)."""
    return sorted({round(steps * k / (count + 1)) for k in range(1, count + 1)} - {0, steps})


def snapshot_candidates(train_folder: Path) -> dict[str, Path]:
    """The snapshots a training kept (``train.snapshots``) by the name the select stage gives them
    (``reranker@step-N``), in step order."""
    folder = Path(train_folder) / SNAPSHOTS
    found = [p for p in folder.glob("step-*") if p.is_dir() and p.name.split("-")[-1].isdigit()] if folder.is_dir() else []
    return {f"reranker@{p.name}": p for p in sorted(found, key=lambda p: int(p.name.split("-")[-1]))}


def _Snapshots(base: type, points: list[int], keep: Callable[[int, Any], None]):
    """A Trainer callback (built on ``base``, transformers' ``TrainerCallback``) that keeps the model at ``points``."""

    class Snapshots(base):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in points and state.is_world_process_zero:
                keep(state.global_step, model)
            return control

    return Snapshots()


def wait_for_every_process() -> None:
    """A barrier across the processes of a distributed run (nothing in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def leave_process_group() -> None:
    """End a distributed run cleanly: a process that exits with its process group still open may abort at exit
    (its communication threads are still running) while another process is still saving."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


class ExampleDataset:
    """Training examples, each turned into model features by ``encode`` when the Trainer asks for it."""

    def __init__(self, examples: Sequence[TrainingExample], encode: Callable[[TrainingExample], dict]) -> None:
        self.examples = list(examples)
        self.encode = encode

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        return self.encode(self.examples[index])


class PaddingCollator:
    """Pads the tokenised inputs of a batch and stacks its labels (float targets for a logit, token ids for seq2seq)."""

    def __init__(self, tokenizer: Any, label_dtype: str) -> None:
        self.tokenizer = tokenizer
        self.label_dtype = label_dtype

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        labels = torch.tensor([row["labels"] for row in rows], dtype=getattr(torch, self.label_dtype))
        batch = dict(self.tokenizer.pad([{k: v for k, v in row.items() if k != "labels"} for row in rows], return_tensors="pt"))
        batch["labels"] = labels
        return batch


def read_metadata(model: str) -> dict:
    """The ``inpars-reranker.json`` of a local model folder, or ``{}`` (a hub id or a model trained elsewhere)."""
    path = Path(model) / METADATA
    return io.read_json(path) if path.is_file() else {}


def check_kind(model: str, metadata: dict, kind: str, compatible: tuple[str, ...]) -> None:
    """Refuse to load a model folder that inpars trained as another kind of reranker."""
    trained = metadata.get("reranker")
    if trained is not None and trained not in compatible:
        raise InparsError(f"{model} was trained as a '{trained}' reranker, not '{kind}'; rerank it with --reranker {trained}")


# ---------------------------------------------------------------------------------------------- the stage


def _run_stage(ctx, cfg, folder: Path) -> dict:
    from inpars.models import check as check_model
    from inpars.rerank.base import rerankers

    examples = io.read_training(ctx.input("negatives", "train.jsonl"))
    check_model(cfg.train.model)
    model_dir = rerankers.get(cfg.train.reranker).train(examples, cfg.train, folder)
    return {"examples": len(examples), "model": str(model_dir)}


STAGE = Stage("train", ("train",), ("negatives/train.jsonl",), ("model",), _run_stage)
