"""A reproduction as a plan, before anything runs: the steps of every condition of every dataset, each with the exact
command that runs it, what it downloads, its estimated GPU hours (the tables' rates times the tables' counts, each
rate with its source), what its stage folder says is done already, and the steps it waits for.

``--rates FILE`` replaces the quoted rates with the ones ``bench/gpu_rehearsal.py`` (``make gpu-rehearsal``) measured on
a GPU; each estimate names the rate it used. A file of the rehearsal's CPU twin is taken too, with a warning on every
estimate from it: its tiny models say nothing about GPU hours.

The plan is what ``inpars reproduce --plan`` prints and what ``--slurm`` submits: a step is one ``inpars reproduce
... --stage S`` command (an array of shards for generation and reranking, then their merge), the last step of a
dataset writes its report with the plain ``inpars reproduce`` command, which finds every stage done. Nothing here
needs the network: counts and sizes come from the tables, what is cached is looked up on disk.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inpars.errors import InparsError, InputError
from inpars.pipeline import (
    NEEDS,
    SHARDED,
    StageSpec,
    read_manifest,
    recorded_data_fingerprint,
    shard_fingerprint,
    shard_folder,
    stage_done,
    stage_specs,
)
from inpars.reproduce import Tables, condition_config, runnable_cell
from inpars.reproduce import plan as conditions_to_run
from inpars.reproduce.tables import RATE_UNITS, Rate

GPU_STAGES = ("generate", "filter", "train", "select", "rerank")
"""Stages that run a large model; the others (BM25, mining, scoring) run on CPUs."""


@dataclass(frozen=True)
class PlanOptions:
    """How a reproduction runs: what ``inpars reproduce`` was given, and how many shards the sharded stages take."""

    conditions: tuple[str, ...] = ()
    released: str | None = None
    output_dir: Path = Path("runs/reproduce")
    overrides: tuple[str, ...] = ()
    tables: Path | None = None
    generate_shards: int = 1
    rerank_shards: int = 1
    command: tuple[str, ...] = ("inpars",)
    """How a job calls inpars (``inpars``, or ``python -m inpars.cli`` of a given interpreter)."""
    rates: Path | None = None
    """A rates file of the GPU rehearsal (``bench/gpu_rehearsal.py``): its measured rates replace the quoted ones."""

    def __post_init__(self) -> None:
        for name, value in (("--shards", self.generate_shards), ("--rerank-shards", self.rerank_shards)):
            if value < 1:
                raise InparsError(f"{name} is {value}; give 1 or more")


@dataclass(frozen=True)
class Estimate:
    gpu_hours: float
    units: int
    unit: str
    model: str
    seconds_per_unit: float
    upper_bound: bool
    source: str
    """The source's name in the tables."""
    citation: str
    """The source's text."""
    note: str


@dataclass(frozen=True)
class Download:
    name: str
    kind: str
    """model, dataset, index or released data."""
    size_bytes: int | None
    size_source: str | None
    """The name of the size's source (a tables source, or ``pyserini``), or how the item comes without a download."""
    size_citation: str | None
    cached: bool | None
    """None where it cannot be told without the network."""
    needed_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    key: str
    """``<dataset>/<run>/<step>``: unique in a plan; jobs and scripts are named after it."""
    dataset: str
    run: str
    """The run folder's name: the condition, and ``-from-<mode>`` when it starts from released data or a checkpoint."""
    step: str
    """The pipeline stage, ``merge-<stage>`` for the merge of its shards, or ``report``."""
    argv: tuple[str, ...]
    """The command; in an array, ``{shard}`` stands for the task's index."""
    tasks: int
    """1, or the number of shards of an array."""
    todo: tuple[int, ...]
    """The array indices (or ``(0,)``) that are not done."""
    after: tuple[str, ...]
    status: str
    """done, todo, partial (some shards done), running, failed or interrupted (what the stage's manifest says)."""
    gpu: bool
    run_dir: Path
    estimate: Estimate | None = None
    measured_seconds: float | None = None
    downloads: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return not self.todo


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    downloads: tuple[Download, ...]
    options: PlanOptions
    notes: tuple[str, ...] = field(default_factory=tuple)

    def step(self, key: str) -> Step:
        return next(s for s in self.steps if s.key == key)

    @property
    def gpu_hours(self) -> float:
        return sum(s.estimate.gpu_hours for s in self.steps if s.estimate and not s.done)

    def as_dict(self) -> dict:
        def plain(value):
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return {
            "steps": [plain({**asdict(s), "command": shell_command(s.argv)}) for s in self.steps],
            "downloads": [plain(asdict(d)) for d in self.downloads],
            "gpu_hours_left": round(self.gpu_hours, 3),
            "notes": list(self.notes),
        }


def shell_command(argv: Sequence[str]) -> str:
    """The command as a shell line; ``{shard}`` becomes the array task's index."""
    import shlex

    return " ".join('"$SLURM_ARRAY_TASK_ID"' if arg == "{shard}" else shlex.quote(arg) for arg in argv)


def default_command() -> tuple[str, ...]:
    """This interpreter running the CLI module: a job then uses the very environment that planned it."""
    return (sys.executable, "-m", "inpars.cli")


def build_plan(tables: Tables, datasets: Sequence[str], options: PlanOptions) -> Plan:
    """Every step of every planned condition of ``datasets``, with its status read from the run folders."""
    if not datasets:
        raise InparsError(f"name a dataset: inpars reproduce DATASET --plan; runnable: {', '.join(tables.runnable_datasets())}")
    steps: list[Step] = []
    downloads: dict[tuple[str, str], Download] = {}
    notes: list[str] = []
    if options.rates is not None:
        measured = load_measured_rates(options.rates)
        tables = measured.apply(tables)
        notes += measured.notes()
    for dataset in dict.fromkeys(datasets):
        entry = tables.dataset(dataset)
        if entry.forums:
            raise InparsError(
                f"dataset '{dataset}' is scored over its forums, which run one after the other in one process; plan or submit "
                f"it without it, and run it with 'inpars reproduce {dataset}'"
            )
        evaluations: list[str] = []
        pairs = conditions_to_run(tables, dataset, options.conditions, options.released)
        for condition, mode in pairs:
            planned, run_downloads = _condition_steps(tables, dataset, condition, mode, options)
            steps.extend(planned)
            evaluations.append(planned[-1].key)
            for download in run_downloads:
                key = (download.kind, download.name)
                known = downloads.get(key)
                needed = (known.needed_by if known else ()) + download.needed_by
                downloads[key] = Download(
                    download.name, download.kind, download.size_bytes, download.size_source, download.size_citation,
                    download.cached, tuple(dict.fromkeys(needed)),
                )
        steps.append(_report_step(dataset, [name for name, _ in pairs], options, [s for s in steps if s.key in evaluations]))
    if any(s.estimate is None and s.gpu and not s.done for s in steps):
        notes.append(
            "a GPU step without an estimate runs a model the tables have no rate for (a stand-in, or a model the papers did "
            "not time)"
        )
    return Plan(tuple(steps), tuple(downloads.values()), options, tuple(notes))


def _base_argv(dataset: str, condition: str | None, mode: str | None, options: PlanOptions) -> list[str]:
    argv = [*options.command, "reproduce", dataset]
    if condition is not None:
        argv += ["--condition", condition]
    if mode not in (None, "full"):
        argv += ["--from-released", mode]
    argv += ["--output-dir", str(options.output_dir)]
    if options.tables is not None:
        argv += ["--tables", str(options.tables)]
    for item in options.overrides:
        argv += ["--set", item]
    return argv


def _report_step(dataset: str, conditions: list[str], options: PlanOptions, evaluations: list[Step]) -> Step:
    argv = [*options.command, "reproduce", dataset]
    for name in dict.fromkeys(conditions):
        argv += ["--condition", name]
    if options.released:
        argv += ["--from-released", options.released]
    argv += ["--output-dir", str(options.output_dir)]
    if options.tables is not None:
        argv += ["--tables", str(options.tables)]
    for item in options.overrides:
        argv += ["--set", item]
    folder = options.output_dir / dataset
    results = folder / "results.json"
    manifests = [s.run_dir / "evaluate" / "stage.json" for s in evaluations]
    done = (
        results.is_file()
        and all(e.done for e in evaluations)
        and all(m.is_file() and m.stat().st_mtime <= results.stat().st_mtime for m in manifests)
    )
    return Step(
        f"{dataset}/report", dataset, "report", "report", tuple(argv), 1, () if done else (0,), tuple(e.key for e in evaluations),
        "done" if done else "todo", False, folder,
    )


def _condition_steps(
    tables: Tables, dataset: str, condition: str, mode: str, options: PlanOptions
) -> tuple[list[Step], list[Download]]:
    entry, cond, cell = runnable_cell(tables, dataset, condition, mode)
    config, _, _ = condition_config(entry, cond, cell, mode, options.output_dir, options.overrides)
    run_dir = config.run_dir
    run = run_dir.name
    assert entry.counts is not None and entry.dataset is not None
    model = None
    queries_fp = None
    downloads: list[Download] = []
    if cond.kind == "rerank":
        model = config.rerank.model
    elif mode == "checkpoint":
        model = cond.checkpoint(dataset).model
    elif mode == "data":
        from inpars.io import file_sha256
        from inpars.reproduce.run import _fill

        url = _fill(cond.released["data"], entry)
        converted = run_dir / f"released-{Path(url.rstrip('/').rsplit('/', 1)[-1]).stem}.jsonl"
        # Not downloaded yet: no fingerprint can match, so the generate stage and everything after it show as to do.
        queries_fp = file_sha256(converted) if converted.is_file() else "not downloaded yet"
        downloads.append(Download(url, "released data", None, None, None, converted.is_file(), (f"{dataset}/{run}/generate",)))
    specs = stage_specs(
        config, recorded_data_fingerprint(run_dir, entry.dataset, dict(entry.counts)), queries_fp=queries_fp, model=model,
        rerank=cond.kind != "retrieval",
    )
    base = _base_argv(dataset, condition, mode, options)
    last: dict[str, str] = {}
    steps: list[Step] = []
    for name, spec in specs.items():
        shards = _shards(name, spec, options, mode)
        key = f"{dataset}/{run}/{name}"
        after = tuple(last[need] for need in NEEDS[name] if need in last)
        stage_downloads = _stage_downloads(tables, name, config, entry, model, mode, cond.kind)
        for download in stage_downloads:
            downloads.append(
                Download(
                    download.name, download.kind, download.size_bytes, download.size_source, download.size_citation,
                    download.cached, (key,),
                )
            )
        names = tuple(d.name for d in stage_downloads)
        status, measured = _status(run_dir, spec)
        estimate = _estimate(tables, name, config, entry, model, cond.kind)
        gpu = (
            name in GPU_STAGES
            and not (name == "generate" and (mode == "data" or config.generate.backend in ("openai",)))
            and not (name == "filter" and not _filter_models(config))
        )
        if shards == 1:
            argv = (*base, "--stage", name)
            steps.append(
                Step(
                    key, dataset, run, name, argv, 1, () if status == "done" else (0,), after, status, gpu, run_dir, estimate,
                    measured, names,
                )
            )
            last[name] = key
            continue
        todo = (
            ()
            if status == "done"
            else tuple(
                i
                for i in range(shards)
                if stage_done(
                    shard_folder(run_dir, name, i, shards), shard_fingerprint(spec.fingerprint, i, shards), list(spec.outputs)
                )
                is None
            )
        )
        array_status = "done" if not todo else ("partial" if len(todo) < shards else status)
        argv = (*base, "--stage", name, "--shard", "{shard}", "--num-shards", str(shards))
        steps.append(Step(key, dataset, run, name, argv, shards, todo, after, array_status, gpu, run_dir, estimate, None, names))
        merge_key = f"{dataset}/{run}/merge-{name}"
        merge_argv = (*base, "--stage", name, "--num-shards", str(shards))
        steps.append(
            Step(
                merge_key, dataset, run, f"merge-{name}", merge_argv, 1, () if status == "done" else (0,), (key,),
                "done" if status == "done" else "todo", False, run_dir, None, measured,
            )
        )
        last[name] = merge_key
    return steps, downloads


def _shards(stage: str, spec: StageSpec, options: PlanOptions, mode: str) -> int:
    if stage not in SHARDED:
        return 1
    if stage == "generate":
        return options.generate_shards if mode == "full" else 1
    return options.rerank_shards


def _status(run_dir: Path, spec: StageSpec) -> tuple[str, float | None]:
    """What the stage's manifest says for this fingerprint, and the seconds it took when done (measured here)."""
    done = stage_done(run_dir / spec.name, spec.fingerprint, list(spec.outputs))
    if done is not None:
        return "done", float(done.get("seconds", 0.0))
    data = read_manifest(run_dir / spec.name)
    unfinished = ("running", "failed", "interrupted")
    if data is not None and data.get("fingerprint") == spec.fingerprint and data.get("status") in unfinished:
        return str(data["status"]), None
    return "todo", None


def _filter_models(config) -> list[str]:
    from inpars.filter.base import resolved_steps

    return [step.model for step in resolved_steps(config.filter) if isinstance(getattr(step, "model", None), str)]


def _estimate(tables: Tables, stage: str, config, entry, model: str | None, kind: str | None) -> Estimate | None:
    counts = entry.counts
    if stage == "generate":
        documents = min(config.generate.num_docs or counts["docs"], counts["docs"])
        return _rate(tables, stage, config.generate.model, documents * config.generate.queries_per_doc, config.generate.backend)
    if stage == "filter":
        documents = min(config.generate.num_docs or counts["docs"], counts["docs"])
        found = [_rate(tables, stage, name, documents * config.generate.queries_per_doc) for name in _filter_models(config)]
        return next((e for e in found if e is not None), None)
    if stage == "train":
        return _rate(tables, stage, config.train.model, config.train.max_steps) if config.train.max_steps else None
    if stage == "rerank":
        # A released or given checkpoint is costed as the model it was fine-tuned from (the same architecture).
        pairs = counts["queries"] * min(config.rerank.top_k, config.retrieve.top_k)
        return _rate(tables, stage, config.rerank.model or config.train.model, pairs)
    return None


def _rate(tables: Tables, stage: str, model: str, units: int, backend: str | None = None) -> Estimate | None:
    rate = tables.rate(stage, model, backend)
    if rate is None:
        return None
    return Estimate(
        round(rate.seconds * units / 3600, 3), units, rate.per, model, rate.seconds, rate.upper_bound, rate.source,
        tables.sources[rate.source], rate.note,
    )


# ---------------------------------------------------------------------------------------------- measured rates

RATES_FORMAT = "inpars-gpu-rates/1"
"""The ``format`` of a rates file written by ``bench/gpu_rehearsal.py``."""
REGENERATE = "write it with 'make gpu-rehearsal' (bench/gpu_rehearsal.py) on a GPU machine and pass that file"


@dataclass(frozen=True)
class MeasuredRates:
    """The rates of a GPU rehearsal's file, and where they were measured."""

    path: Path
    device: str
    twin: bool
    created: str
    rates: tuple[Rate, ...]
    """Each with :attr:`source` as its source."""
    missing: tuple[str, ...] = ()
    """The rates the file could not give (their measurement failed or was skipped), each with the reason."""

    @property
    def source(self) -> str:
        """The name every estimate from this file shows."""
        return _measured_source(self.path, self.device, self.twin)

    @property
    def citation(self) -> str:
        if self.twin:
            return (
                f"bench/gpu_rehearsal.py --cpu-twin on {self.device} ({self.created}): tiny models on a CPU, run to keep the "
                "rehearsal working; they say nothing about GPU hours: measure with 'make gpu-rehearsal' on a GPU"
            )
        return (
            f"bench/gpu_rehearsal.py on {self.device} ({self.created}): random weights in the papers' architectures (GPT-J-6B, "
            "T5-3B), every query generated to its max_new_tokens and every pair at its max_length, so the rates are upper bounds"
        )

    def apply(self, tables: Tables) -> Tables:
        """``tables`` with these rates ahead of the quoted ones (a stage and model this file lacks keeps its quoted rate)."""
        sources = {**tables.sources, self.source: self.citation}
        return dataclasses.replace(tables, rates=self.rates + tuple(tables.rates), sources=sources)

    def notes(self) -> list[str]:
        notes = []
        if self.twin:
            notes.append(
                f"{self.path} holds the CPU twin's rates (tiny models on a CPU): the estimates that use them are no GPU hours; "
                "measure on a GPU with 'make gpu-rehearsal'"
            )
        notes += [f"{self.path} has no rate of {item}; the tables' quoted rate, if any, is used instead" for item in self.missing]
        return notes


def load_measured_rates(path: str | os.PathLike) -> MeasuredRates:
    """Read and check a rates file of the GPU rehearsal; any problem is one :class:`InputError` naming the file."""
    import json

    from inpars.io import read_text

    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "rates file not found", REGENERATE)
    try:
        data = json.loads(read_text(path, "rates file"))
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not JSON ({exc.msg})", REGENERATE) from None
    if not isinstance(data, dict) or data.get("format") != RATES_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(
            path, None, f"not a rates file of the GPU rehearsal (format {found!r}, expected {RATES_FORMAT!r})", REGENERATE
        )
    device = data.get("device")
    if not isinstance(device, dict) or not isinstance(device.get("name"), str) or not device["name"]:
        raise InputError(path, None, "'device.name' is missing", REGENERATE)
    if not isinstance(data.get("twin"), bool):
        raise InputError(path, None, "'twin' should be true or false", REGENERATE)
    items = data.get("rates")
    if not isinstance(items, list):
        raise InputError(path, None, "'rates' should be a list", REGENERATE)
    source = _measured_source(path, device["name"], data["twin"])
    rates = tuple(_measured_rate(path, index, item, source) for index, item in enumerate(items))
    lacking = data.get("missing_rates", [])
    if not isinstance(lacking, list) or not all(isinstance(m, dict) and isinstance(m.get("stage"), str) for m in lacking):
        raise InputError(path, None, "'missing_rates' should be a list of {stage, model, reason}", REGENERATE)
    missing = tuple(
        f"{m['stage']} ({', '.join(str(v) for v in (m.get('model'), m.get('backend')) if v)}): {m.get('reason', 'no reason')}"
        for m in lacking
    )
    if not rates:
        why = f": {'; '.join(missing)}" if missing else ""
        raise InputError(path, None, f"holds no rates (no measurement succeeded{why})", REGENERATE)
    return MeasuredRates(path, device["name"], data["twin"], str(data.get("created", "date unknown")), rates, missing)


def _measured_source(path: Path, device: str, twin: bool) -> str:
    return f"CPU-twin rates, not GPU hours: {path}" if twin else f"measured on {device}, {path}"


def _measured_rate(path: Path, index: int, item: Any, source: str) -> Rate:
    key = f"rates[{index}]"
    if not isinstance(item, dict):
        raise InputError(path, None, f"'{key}' should be a mapping", REGENERATE)
    stage, model, per, seconds = item.get("stage"), item.get("model"), item.get("per"), item.get("seconds")
    if stage not in RATE_UNITS:
        raise InputError(path, None, f"'{key}.stage' is {stage!r}; a rate is of one of {', '.join(RATE_UNITS)}", REGENERATE)
    if not isinstance(model, str) or not model:
        raise InputError(path, None, f"'{key}.model' should name the model, e.g. EleutherAI/gpt-j-6b", REGENERATE)
    if per != RATE_UNITS[stage]:
        raise InputError(path, None, f"'{key}.per' is {per!r}, but {stage} is counted per {RATE_UNITS[stage]}", REGENERATE)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise InputError(
            path, None, f"'{key}.seconds' should be a positive finite number of seconds per {per}, got {seconds!r}", REGENERATE
        )
    backend = item.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise InputError(path, None, f"'{key}.backend' should be a backend name or absent", REGENERATE)
    return Rate(
        stage, model, float(seconds), per, source, str(item.get("note") or ""), bool(item.get("upper_bound", False)),
        f"{path}: {key}", backend,
    )


def _stage_downloads(tables: Tables, stage: str, config, entry, model: str | None, mode: str, kind: str | None) -> list[Download]:
    names: list[tuple[str, str]] = []
    if stage == "generate" and mode == "full" and config.generate.backend in ("hf", "vllm"):
        names.append(("model", config.generate.model))
    elif stage == "filter":
        names += [("model", name) for name in _filter_models(config)]
    elif stage == "train":
        names.append(("model", config.train.model))
    elif stage == "retrieve":
        names.append(("dataset", entry.dataset))
        if config.retrieve.backend == "pyserini" and config.retrieve.prebuilt_index:
            names.append(("index", config.retrieve.prebuilt_index))
        if config.retrieve.backend == "dense" and config.retrieve.model:
            names.append(("model", config.retrieve.model))
    elif stage == "rerank" and model is not None:
        names.append(("model", model))
    return [_download(tables, kind_, name) for kind_, name in names]


def _download(tables: Tables, kind: str, name: str) -> Download:
    size = tables.sizes.get(name)
    size_bytes, source, citation = (size.bytes, size.source, tables.sources[size.source]) if size else (None, None, None)
    if name.startswith("embedded:"):
        return Download(name, kind, None, "installed with the package", None, True)
    if kind == "model":
        if Path(name).expanduser().exists():
            return Download(name, kind, None, "a local folder", None, True)
        from inpars.models import _in_hub_cache

        return Download(name, kind, size_bytes, source, citation, _in_hub_cache(name))
    if kind == "index":
        size_bytes, source, citation = _index_size(name) or (size_bytes, source, citation)
        cache = Path(os.environ.get("PYSERINI_CACHE") or Path.home() / ".cache" / "pyserini") / "indexes"
        return Download(name, kind, size_bytes, source, citation, any(cache.glob(f"*{name}*")) if cache.is_dir() else False)
    if name.startswith("beir/"):
        home = Path(os.environ.get("IR_DATASETS_HOME") or Path.home() / ".ir_datasets")
        return Download(name, kind, size_bytes, source, citation, (home / "beir" / name.split("/")[1]).is_dir())
    if name.startswith("irds:"):
        # ir_datasets keeps each collection under its home in a folder of its own naming: cached or not is unknown here.
        return Download(name, kind, size_bytes, source or "ir_datasets; downloads on first use", citation, None)
    return Download(name, kind, None, "a local folder", None, Path(name).exists())


def _index_size(name: str) -> tuple[int, str, str] | None:
    """pyserini's own record of a prebuilt index's compressed size, where pyserini is installed."""
    try:
        from pyserini.prebuilt_index_info import TF_INDEX_INFO
    except ImportError:  # pyserini is an extra: without it the size is unknown, which the plan says
        return None
    info = TF_INDEX_INFO.get(name, {})
    size = info.get("size compressed (bytes)")
    return (
        (int(size), "pyserini", "pyserini's table of its prebuilt indexes (pyserini.prebuilt_index_info), compressed size")
        if size
        else None
    )


# ---------------------------------------------------------------------------------------------- printing


def _size(num: int | None) -> str:
    if num is None:
        return "size unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num < 1000 or unit == "TB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1000
    return ""


UNITS = {"document": "documents", "query": "queries", "step": "steps", "pair": "pairs"}


def render(plan: Plan) -> str:
    """The plan as text: per run its steps (status, GPU hours and their rate, command), then downloads and sources."""
    lines: list[str] = []
    cited: dict[str, str] = {}
    current = None
    for step in plan.steps:
        if (step.dataset, step.run) != current:
            current = (step.dataset, step.run)
            lines += ["", f"{step.dataset} / {step.run}  ({step.run_dir})"]
        status = step.status if step.tasks == 1 else f"{step.status}, {step.tasks - len(step.todo)} of {step.tasks} shards done"
        cost = ""
        if step.estimate is not None:
            e = step.estimate
            cited[e.source] = e.citation
            cost = (
                f"{'up to ' if e.upper_bound else ''}{e.gpu_hours:,.2f} GPU h "
                f"({e.units:,} {UNITS[e.unit]} x {e.seconds_per_unit:g} s, {e.model}, [{e.source}])"
            )
        elif step.gpu:
            cost = "GPU; no rate for its model"
        if step.measured_seconds is not None and step.done:
            cost = (cost + "; " if cost else "") + f"took {step.measured_seconds:.1f} s here"
        after = f"  after: {', '.join(a.rsplit('/', 1)[-1] for a in step.after)}" if step.after else ""
        lines.append(f"  {step.step:<16} [{status}] {cost}{after}")
        if step.downloads:
            lines.append(f"    downloads: {', '.join(step.downloads)}")
        array = f"  (array 0-{step.tasks - 1})" if step.tasks > 1 else ""
        lines.append(f"    $ {shell_command(step.argv).replace(chr(34) + '$SLURM_ARRAY_TASK_ID' + chr(34), 'I')}{array}")
    if plan.downloads:
        lines += ["", "downloads:"]
        for d in plan.downloads:
            cached = "cached" if d.cached else "not cached" if d.cached is False else "cache unknown"
            if d.size_bytes is not None:
                size = f"{_size(d.size_bytes)} [{d.size_source}]"
                cited[str(d.size_source)] = str(d.size_citation)
            else:
                size = d.size_source or "size unknown"
            lines.append(f"  {d.kind:<14} {d.name}: {size}, {cached}")
    lines += ["", f"GPU hours left (estimated): {plan.gpu_hours:,.2f}"]
    if cited:
        lines += ["", "sources:"] + [f"  [{name}] {text}" for name, text in cited.items()]
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines).lstrip("\n") + "\n"
