"""The tables schema and its loader: a tables file (``reproduce/*.yaml``) holds ``sources`` (where numbers come from),
``datasets`` (the inpars dataset name, the sanity counts and their source, or why the dataset cannot run) and
``conditions``: each names a recipe (a bundled name such as ``inpars-v2`` or a YAML path), how much of it runs
(``kind``), the system whose scores are checked, ``--set`` overrides with ``{dataset}`` placeholders, tolerances with
their reasons per way of running (``full``, or from the ``data`` or ``checkpoint`` the authors released), and one cell
per dataset with its expected scores (and, optionally, the ``gain`` its system must show over the run's first stage);
a condition with ``reference`` is a row reported by a paper that nothing here can run. :func:`load_tables` reads and
checks them, naming ``file:line`` for every problem.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.errors import InparsError, InputError
from inpars.io import parse_yaml, read_text, show
from inpars.registry import did_you_mean, suggest

MODES = ("full", "data", "checkpoint")
"""How a condition is run: every stage here, from the released synthetic queries, or with the released model."""
KINDS = ("retrieval", "rerank", "pipeline")
"""retrieval: retrieve and evaluate; rerank: an existing model reranks (``rerank.model``); pipeline: the whole method."""
COUNT_KEYS = ("docs", "queries", "qrels")
TABLES_ENV = "INPARS_REPRODUCE_TABLES"


@dataclass(frozen=True)
class Tolerance:
    value: float
    reason: str
    metrics: Mapping[str, Tolerance] = field(default_factory=dict)
    """Tolerances of single metrics that differ from ``value``."""

    def for_metric(self, metric: str) -> Tolerance:
        return self.metrics.get(metric, self)


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    dataset: str | None
    """The name inpars loads (``beir/scifact``, ``faq-construction``); None when the dataset cannot run."""
    counts: Mapping[str, int] | None
    counts_source: str | None
    released_data: str | None
    """The stem of the released synthetic-queries file of this dataset, if there is one."""
    unavailable: str | None
    where: str
    forums: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """A dataset scored as the mean over its parts (CQADupStack's forums): forum -> its sanity counts. ``dataset``
    then names each forum's dataset with ``{forum}``; each forum runs apart and the cell is checked against the mean."""

    def forum_entries(self) -> list[DatasetEntry]:
        """One entry per forum, named ``<dataset>-<forum>`` (as pyserini names the forums' prebuilt indexes)."""
        assert self.dataset is not None
        return [
            DatasetEntry(
                f"{self.name}-{forum}",
                self.dataset.replace("{forum}", forum),
                dict(counts),
                self.counts_source,
                None,
                None,
                self.where,
            )
            for forum, counts in self.forums.items()
        ]


@dataclass(frozen=True)
class Gain:
    """What the checked system must show against the run's baseline (its first stage) on the same queries of the same
    run: a tolerance around the expected score can let through a run in which training did nothing, this cannot."""

    over: str
    """The system compared with: the run's baseline (``evaluate.baseline``, else the first stage), named as in its metrics."""
    metric: str
    more_than: float
    """The mean difference (system minus ``over``) must be larger than this."""
    min_changed_queries: int
    """At least this many queries must score differently from ``over`` on ``metric``."""
    max_p: float | None
    """The largest Holm-corrected p-value (paired randomization test) that passes; None: reported, not bounded."""
    reason: str
    where: str


@dataclass(frozen=True)
class Cell:
    dataset: str
    scores: Mapping[str, float]
    set: tuple[str, ...]
    tolerance: Mapping[str, Tolerance]
    source: str | None
    where: str
    gain: Gain | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A released fine-tuned model of one dataset: its hub name, or None where none was found, and where that is known from."""

    model: str | None
    source: str


AVERAGE_SLACK = 0.001
"""How far a printed average may lie from the mean of its printed cells: the papers round or truncate both to 3
decimals, so each lies within 0.001 of the true value on the same side; more than that is a typing error."""


@dataclass(frozen=True)
class Condition:
    name: str
    description: str
    recipe: str | None
    kind: str | None
    system: str | None
    set: tuple[str, ...]
    source: str
    average: float | None
    released: Mapping[str, str]
    tolerance: Mapping[str, Tolerance]
    reference: str | None
    cells: tuple[Cell, ...]
    where: str
    folder: Path
    """The folder of the tables file, against which a recipe path is resolved."""
    stand_ins: Mapping[str, str] = field(default_factory=dict)
    """Values (models, prompts) replaced by stand-ins wherever the config names them (the tables file's ``stand_ins``)."""
    checkpoints: Mapping[str, Checkpoint] = field(default_factory=dict)
    """dataset -> the released fine-tuned model (``released.checkpoint``), found or not, with its source."""
    average_note: str | None = None
    """Why the printed average differs from the mean of the printed cells (a paper's own inconsistency)."""

    def cell(self, dataset: str) -> Cell | None:
        return next((c for c in self.cells if c.dataset == dataset), None)

    def modes(self) -> list[str]:
        return ["full", *(mode for mode in MODES[1:] if mode in self.released or (mode == "checkpoint" and self.checkpoints))]

    def checkpoint(self, dataset: str) -> Checkpoint:
        """The released model of ``dataset``, or an error saying none is known and where that was looked up."""
        found = self.checkpoints.get(dataset)
        if found is None or found.model is None:
            why = f" ({found.source})" if found is not None else ""
            raise InparsError(
                f"{self.where}: no released checkpoint of '{self.name}' is known for '{dataset}'{why}; "
                "run it without --from-released, or with --from-released data where the condition has it"
            )
        return found

    def tolerance_for(self, cell: Cell, mode: str, metric: str) -> Tolerance:
        chosen = cell.tolerance.get(mode) or self.tolerance[mode]
        return chosen.for_metric(metric)


@dataclass(frozen=True)
class Rate:
    """What one unit of a stage costs with one model on the papers' hardware, and where that figure comes from."""

    stage: str
    model: str
    seconds: float
    per: str
    """The unit: ``document`` (a prompt), ``query`` (a synthetic query scored), ``step`` (an optimiser step), ``pair``."""
    source: str
    note: str
    upper_bound: bool = False
    where: str = ""
    backend: str | None = None
    """The generation backend the rate was measured with (``vllm``, ``hf``); None: any backend (the tables' quoted rates)."""


@dataclass(frozen=True)
class Size:
    """The download size of a model or file, and where that figure comes from."""

    bytes: int
    source: str


RATE_UNITS = {"generate": "document", "filter": "query", "train": "step", "rerank": "pair"}
"""The stages a rate can cost, and the unit each is counted in."""


@dataclass(frozen=True)
class Tables:
    sources: Mapping[str, str]
    datasets: Mapping[str, DatasetEntry]
    conditions: Mapping[str, Condition]
    files: tuple[Path, ...]
    rates: tuple[Rate, ...] = ()
    """GPU costs per unit, for the plan's estimates (the tables files' ``rates``)."""
    sizes: Mapping[str, Size] = field(default_factory=dict)
    """Download sizes by model or file name, for the plan (the tables files' ``sizes``)."""

    def rate(self, stage: str, model: str | None, backend: str | None = None) -> Rate | None:
        """The first rate of ``stage`` and ``model`` (measured rates come first, see ``inpars.plan``) whose backend is
        ``backend`` or unstated."""
        return next((r for r in self.rates if r.stage == stage and r.model == model and r.backend in (None, backend)), None)

    def dataset(self, name: str) -> DatasetEntry:
        if name not in self.datasets:
            raise InparsError(_unknown("dataset", name, self.datasets, f"in {', '.join(str(f) for f in self.files)}"))
        return self.datasets[name]

    def condition(self, name: str) -> Condition:
        if name not in self.conditions:
            raise InparsError(_unknown("condition", name, self.conditions, f"in {', '.join(str(f) for f in self.files)}"))
        return self.conditions[name]

    def runnable(self, dataset: str) -> list[Condition]:
        """The conditions with a cell for ``dataset`` that inpars can run, in table order."""
        entry = self.datasets.get(dataset)
        if entry is None or entry.unavailable:
            return []
        return [c for c in self.conditions.values() if c.reference is None and c.cell(dataset) is not None]

    def runnable_datasets(self) -> list[str]:
        return [name for name in self.datasets if self.runnable(name)]


def _unknown(kind: str, name: str, known: Iterable[str], where: str) -> str:
    return f"unknown {kind} '{name}' {where}; {suggest(name, known)}"


def default_tables_dir() -> Path:
    """``$INPARS_REPRODUCE_TABLES``, else the tables installed with the package (``inpars/tables``: in a source
    checkout a link to the top-level ``reproduce/`` folder, in a wheel a copy of it)."""
    env = os.environ.get(TABLES_ENV)
    folder = Path(env) if env else Path(__file__).resolve().parents[1] / "tables"
    if not folder.is_dir() or not any(folder.glob("*.yaml")):
        raise InparsError(
            f"no reproduction tables at {folder}; reinstall inpars, pass --tables with the reproduce/ folder of the inpars "
            f"source, or set ${TABLES_ENV}"
        )
    return folder


def load_tables(paths: str | Path | Sequence[str | Path] | None = None) -> Tables:
    """Load and check tables files (a folder means every ``*.yaml`` in it; None: :func:`default_tables_dir`)."""
    if paths is None:
        paths = default_tables_dir()
    if isinstance(paths, (str, Path)):
        folder = Path(paths)
        files = sorted(folder.glob("*.yaml")) if folder.is_dir() else [folder]
    else:
        files = [Path(p) for p in paths]
    if not files:
        raise InparsError(f"no tables (*.yaml) in {paths}; pass the reproduce/ folder of the inpars source")
    sources: dict[str, str] = {}
    datasets: dict[str, DatasetEntry] = {}
    conditions: dict[str, Condition] = {}
    rates: list[Rate] = []
    sizes: dict[str, Size] = {}
    for path in files:
        _TablesFile(path).load_into(sources, datasets, conditions, rates, sizes)
    for condition in conditions.values():  # cross-file references are checked once everything is loaded
        _check_references(condition, sources, datasets)
    for rate in rates:
        if rate.source not in sources:
            raise InparsError(f"{rate.where}: unknown source '{rate.source}'; {suggest(rate.source, sources)}")
    for name, size in sizes.items():
        if size.source not in sources:
            raise InparsError(f"sizes.{name}: unknown source '{size.source}'; {suggest(size.source, sources)}")
    return Tables(sources=sources, datasets=datasets, conditions=conditions, files=tuple(files), rates=tuple(rates), sizes=sizes)


class _TablesFile:
    """One YAML tables file, read with the line of every key so that every problem names ``file:line``."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise InputError(path, None, "tables file not found", "check the path")
        self.path = path
        data, self.lines = parse_yaml(read_text(path, "tables file"), path, "fix the file")
        self.data = data or {}

    def where(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.path}:{line}" if line else str(self.path)

    def fail(self, key: str, problem: str, hint: str) -> InputError:
        return InputError(self.path, self.lines.get(key), problem, hint)

    def mapping(self, value: Any, key: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"'{key}' should be a mapping", "indent its keys under it")
        for name in value:
            if name not in allowed:
                raise self.fail(
                    f"{key}.{name}",
                    f"unknown key '{key}.{name}'",
                    did_you_mean(str(name), allowed, f"known keys: {', '.join(allowed)}"),
                )
        for name in required:
            if value.get(name) in (None, ""):
                raise self.fail(key, f"'{key}' needs '{name}'", f"add {name}: ...")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"'{key}' should be a non-empty text", "write it as a string")
        return value

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
            raise self.fail(
                key,
                f"'{key}' should be a list of key=value overrides",
                'write e.g. ["retrieve.prebuilt_index=beir-v1.0.0-{dataset}.flat"]',
            )
        return tuple(value)

    def score(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise self.fail(
                key, f"'{key}' should be a score between 0 and 1, got {show(value)}", "write the number as the paper prints it"
            )
        return float(value)

    def tolerance(self, value: Any, key: str, metric_level: bool = False) -> Tolerance:
        allowed = ("value", "reason") if metric_level else ("value", "reason", "metrics")
        data = self.mapping(value, key, allowed, required=("value", "reason"))
        number = data["value"]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0.0 <= number < 1.0:
            raise self.fail(
                f"{key}.value",
                f"'{key}.value' should be a number in [0, 1), got {number!r}",
                "give the largest difference that still counts as reproduced",
            )
        metrics = {}
        if not metric_level and data.get("metrics") is not None:
            for metric, inner in self.mapping(data["metrics"], f"{key}.metrics", list(data["metrics"])).items():
                metrics[str(metric)] = self.tolerance(inner, f"{key}.metrics.{metric}", metric_level=True)
        return Tolerance(float(number), self.text(data["reason"], f"{key}.reason"), metrics)

    def tolerances(self, value: Any, key: str) -> dict[str, Tolerance]:
        if value is None:
            return {}
        data = self.mapping(value, key, MODES)
        return {mode: self.tolerance(inner, f"{key}.{mode}") for mode, inner in data.items()}

    # ------------------------------------------------------------------------------------------ sections

    def load_into(
        self, sources: dict, datasets: dict, conditions: dict, rates: list | None = None, sizes: dict | None = None
    ) -> None:
        data = self.mapping(self.data, "tables", ("sources", "stand_ins", "rates", "sizes", "datasets", "conditions"))
        rates = [] if rates is None else rates
        sizes = {} if sizes is None else sizes
        items = data.get("rates") or []
        if not isinstance(items, list):
            raise self.fail("rates", "'rates' should be a list", "write each rate as '- stage: ...'")
        for index, value in enumerate(items):
            rates.append(self.rate(value, f"rates.{index}"))
        for name, value in self.mapping(data.get("sizes") or {}, "sizes", list(data.get("sizes") or {})).items():
            entry = self.mapping(value, f"sizes.{name}", ("bytes", "source"), required=("bytes", "source"))
            if isinstance(entry["bytes"], bool) or not isinstance(entry["bytes"], int) or entry["bytes"] < 1:
                raise self.fail(
                    f"sizes.{name}.bytes",
                    f"'sizes.{name}.bytes' should be a positive whole number, got {entry['bytes']!r}",
                    "give the size in bytes",
                )
            sizes[str(name)] = Size(entry["bytes"], self.text(entry["source"], f"sizes.{name}.source"))
        stand_ins = self.mapping(data.get("stand_ins") or {}, "stand_ins", list(data.get("stand_ins") or {}))
        self.stand_ins = {str(model): self.text(stand_in, f"stand_ins.{model}") for model, stand_in in stand_ins.items()}
        for name, text in self.mapping(data.get("sources") or {}, "sources", list(data.get("sources") or {})).items():
            sources[str(name)] = self.text(text, f"sources.{name}")
        for name, value in (data.get("datasets") or {}).items():
            key = f"datasets.{name}"
            if name in datasets:
                raise self.fail(key, f"dataset '{name}' is defined twice (also at {datasets[name].where})", "keep one entry")
            datasets[str(name)] = self.dataset_entry(str(name), value, key)
        items = data.get("conditions") or []
        if not isinstance(items, list):
            raise self.fail("conditions", "'conditions' should be a list", "write each condition as '- name: ...'")
        for index, value in enumerate(items):
            condition = self.condition(value, f"conditions.{index}")
            if self.stand_ins:
                condition = dataclasses.replace(condition, stand_ins=dict(self.stand_ins))
            if condition.name in conditions:
                raise self.fail(
                    f"conditions.{index}.name",
                    f"condition '{condition.name}' is defined twice (also at {conditions[condition.name].where})",
                    "keep one",
                )
            conditions[condition.name] = condition

    def rate(self, value: Any, key: str) -> Rate:
        data = self.mapping(
            value,
            key,
            ("stage", "model", "seconds", "per", "upper_bound", "source", "note"),
            required=("stage", "model", "seconds", "per", "source", "note"),
        )
        stage = data["stage"]
        if stage not in RATE_UNITS:
            raise self.fail(f"{key}.stage", f"'{key}.stage' is '{stage}'", f"use one of {', '.join(RATE_UNITS)}")
        if data["per"] != RATE_UNITS[stage]:
            raise self.fail(
                f"{key}.per",
                f"'{key}.per' is '{data['per']}', but {stage} is counted per {RATE_UNITS[stage]}",
                f"write per: {RATE_UNITS[stage]}",
            )
        seconds = data["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
            raise self.fail(
                f"{key}.seconds", f"'{key}.seconds' should be a positive number, got {seconds!r}", "give the GPU seconds per unit"
            )
        return Rate(
            stage,
            self.text(data["model"], f"{key}.model"),
            float(seconds),
            RATE_UNITS[stage],
            self.text(data["source"], f"{key}.source"),
            self.text(data["note"], f"{key}.note"),
            bool(data.get("upper_bound", False)),
            self.where(key),
        )

    def dataset_entry(self, name: str, value: Any, key: str) -> DatasetEntry:
        data = self.mapping(value, key, ("dataset", "counts", "counts_source", "released_data", "unavailable", "forums"))
        released = data.get("released_data")
        if data.get("unavailable") is not None:
            return DatasetEntry(
                name, None, None, None, released, self.text(data["unavailable"], f"{key}.unavailable"), self.where(key)
            )
        if data.get("forums") is not None:
            return self.forums_entry(name, data, key)
        self.mapping(data, key, list(data), required=("dataset", "counts", "counts_source"))
        return DatasetEntry(
            name,
            self.text(data["dataset"], f"{key}.dataset"),
            self.counts(data["counts"], f"{key}.counts"),
            self.text(data["counts_source"], f"{key}.counts_source"),
            released,
            None,
            self.where(f"{key}.counts"),
        )

    def counts(self, value: Any, key: str) -> dict[str, int]:
        counts = self.mapping(value, key, COUNT_KEYS, required=COUNT_KEYS)
        for count_key, count in counts.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise self.fail(
                    f"{key}.{count_key}",
                    f"'{key}.{count_key}' should be a positive whole number, got {count!r}",
                    "copy it from the source named in counts_source",
                )
        return dict(counts)

    def forums_entry(self, name: str, data: dict, key: str) -> DatasetEntry:
        """A dataset scored as the mean over its forums: ``dataset`` with ``{forum}``, and each forum's counts."""
        if "counts" in data:
            raise self.fail(
                f"{key}.counts",
                f"dataset '{name}' has forums, so its counts are given per forum",
                "move them under forums.<forum>",
            )
        self.mapping(data, key, list(data), required=("dataset", "forums", "counts_source"))
        pattern = self.text(data["dataset"], f"{key}.dataset")
        if "{forum}" not in pattern:
            raise self.fail(
                f"{key}.dataset", f"'{key}.dataset' has no {{forum}} placeholder", "write e.g. beir/cqadupstack/{forum}"
            )
        forums = data["forums"]
        if not isinstance(forums, dict) or len(forums) < 2:
            raise self.fail(
                f"{key}.forums",
                f"'{key}.forums' should map at least two forums to their counts",
                "write e.g. android: {docs: ..., queries: ..., qrels: ...}",
            )
        return DatasetEntry(
            name,
            pattern,
            None,
            self.text(data["counts_source"], f"{key}.counts_source"),
            data.get("released_data"),
            None,
            self.where(f"{key}.forums"),
            forums={str(forum): self.counts(counts, f"{key}.forums.{forum}") for forum, counts in forums.items()},
        )

    def condition(self, value: Any, key: str) -> Condition:
        allowed = (
            "name",
            "description",
            "recipe",
            "kind",
            "system",
            "set",
            "source",
            "average",
            "average_note",
            "released",
            "tolerance",
            "reference",
            "datasets",
        )
        data = self.mapping(value, key, allowed, required=("name", "description", "source", "datasets"))
        name = self.text(data["name"], f"{key}.name")
        reference = data.get("reference")
        if reference is None:
            self.mapping(data, key, allowed, required=("recipe", "kind", "system", "tolerance"))
            if data["kind"] not in KINDS:
                raise self.fail(f"{key}.kind", f"'{key}.kind' is '{data['kind']}'", f"use one of {', '.join(KINDS)}")
        else:
            reference = self.text(reference, f"{key}.reference")
        released = dict(self.mapping(data.get("released") or {}, f"{key}.released", MODES[1:]))
        checkpoints = self.checkpoints(released.pop("checkpoint", None), f"{key}.released.checkpoint")
        tolerance = self.tolerances(data.get("tolerance"), f"{key}.tolerance")
        if reference is None:
            for mode in ("full", *released, *(["checkpoint"] if checkpoints else [])):
                if mode not in tolerance:
                    raise self.fail(
                        f"{key}.tolerance",
                        f"condition '{name}' has no '{mode}' tolerance",
                        f"add tolerance.{mode} with its value and reason",
                    )
        average = data.get("average")
        cells = data["datasets"]
        if not isinstance(cells, list) or not cells:
            raise self.fail(
                f"{key}.datasets",
                f"'{key}.datasets' should be a non-empty list",
                "write each cell as '- dataset: NAME' with its scores",
            )
        seen: set[str] = set()
        parsed = []
        for index, item in enumerate(cells):
            cell = self.cell(item, f"{key}.datasets.{index}")
            if cell.dataset in seen:
                raise self.fail(f"{key}.datasets.{index}", f"condition '{name}' has two cells for '{cell.dataset}'", "keep one")
            seen.add(cell.dataset)
            parsed.append(cell)
        condition = Condition(
            name=name,
            description=self.text(data["description"], f"{key}.description"),
            recipe=data.get("recipe"),
            kind=data.get("kind"),
            system=data.get("system"),
            set=self.strings(data.get("set"), f"{key}.set"),
            source=self.text(data["source"], f"{key}.source"),
            average=None if average is None else self.score(average, f"{key}.average"),
            released={mode: self.text(v, f"{key}.released.{mode}") for mode, v in released.items()},
            tolerance=tolerance,
            reference=reference,
            cells=tuple(parsed),
            where=self.where(key),
            folder=self.path.parent,
            checkpoints=checkpoints,
            average_note=None if data.get("average_note") is None else self.text(data["average_note"], f"{key}.average_note"),
        )
        self.check_average(condition, key)
        return condition

    def checkpoints(self, value: Any, key: str) -> dict[str, Checkpoint]:
        """``released.checkpoint``: one entry per dataset, ``{model: NAME or unknown, source: where it was found}``."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(
                key,
                f"'{key}' should map each dataset to its released model",
                "write e.g. scifact: {model: zeta-alpha-ai/monot5-3b-inpars-v2-scifact, source: ...}; a name pattern is not "
                "enough",
            )
        out = {}
        for dataset, entry in value.items():
            here = f"{key}.{dataset}"
            entry = self.mapping(entry, here, ("model", "source"), required=("model", "source"))
            model = self.text(entry["model"], f"{here}.model")
            out[str(dataset)] = Checkpoint(None if model == "unknown" else model, self.text(entry["source"], f"{here}.source"))
        return out

    def check_average(self, condition: Condition, key: str) -> None:
        """The printed average against the mean of the printed cells of the same source; a gap needs its note."""
        if condition.average is None:
            return
        cells = [c.scores for c in condition.cells if (c.source or condition.source) == condition.source]
        metrics = {m for scores in cells for m in scores}
        if len(metrics) != 1:
            raise self.fail(
                f"{key}.average",
                f"'{key}.average' is ambiguous: its cells hold {len(metrics)} metrics",
                "keep one metric per condition with an average",
            )
        (metric,) = metrics
        mean = sum(scores[metric] for scores in cells) / len(cells)
        gap = abs(mean - condition.average)
        if gap > AVERAGE_SLACK + 1e-9 and condition.average_note is None:
            raise self.fail(
                f"{key}.average",
                f"condition '{condition.name}': the mean of its {len(cells)} {metric} cells is {mean:.4f}, its average says "
                f"{condition.average:g}",
                "a cell or the average was mistyped: check both against the paper; if the paper itself disagrees, say so in "
                "average_note",
            )
        if gap <= AVERAGE_SLACK + 1e-9 and condition.average_note is not None:
            raise self.fail(
                f"{key}.average_note",
                f"condition '{condition.name}' has an average_note, but its cells do average to {condition.average:g}",
                "remove the note",
            )

    def cell(self, value: Any, key: str) -> Cell:
        data = self.mapping(
            value, key, ("dataset", "scores", "set", "tolerance", "source", "gain"), required=("dataset", "scores")
        )
        scores = self.mapping(data["scores"], f"{key}.scores", list(data["scores"]) if isinstance(data["scores"], dict) else ())
        if not scores:
            raise self.fail(f"{key}.scores", f"'{key}.scores' is empty", "give at least one metric, e.g. {nDCG@10: 0.594}")
        return Cell(
            dataset=self.text(data["dataset"], f"{key}.dataset"),
            scores={str(metric): self.score(v, f"{key}.scores.{metric}") for metric, v in scores.items()},
            set=self.strings(data.get("set"), f"{key}.set"),
            tolerance=self.tolerances(data.get("tolerance"), f"{key}.tolerance"),
            source=data.get("source"),
            where=self.where(key),
            gain=None if data.get("gain") is None else self.gain(data["gain"], f"{key}.gain", list(scores)),
        )

    def gain(self, value: Any, key: str, metrics: Sequence[str]) -> Gain:
        data = self.mapping(
            value,
            key,
            ("over", "metric", "more_than", "min_changed_queries", "max_p", "reason"),
            required=("over", "metric", "more_than", "min_changed_queries", "reason"),
        )
        metric = self.text(data["metric"], f"{key}.metric")
        if metric not in metrics:
            raise self.fail(
                f"{key}.metric",
                f"'{key}.metric' is '{metric}', which the cell does not score",
                f"use one of its scores ({', '.join(metrics)}): the run evaluates only those",
            )
        more_than = data["more_than"]
        if isinstance(more_than, bool) or not isinstance(more_than, (int, float)) or not -1.0 < more_than < 1.0:
            raise self.fail(
                f"{key}.more_than",
                f"'{key}.more_than' should be a number between -1 and 1, got {show(more_than)}",
                "give the mean difference from the first stage that the system must exceed (0.0: any gain)",
            )
        changed = data["min_changed_queries"]
        if isinstance(changed, bool) or not isinstance(changed, int) or changed < 1:
            raise self.fail(
                f"{key}.min_changed_queries",
                f"'{key}.min_changed_queries' should be a whole number of at least 1, got {show(changed)}",
                "give how many queries must score differently from the first stage",
            )
        max_p = data.get("max_p")
        if max_p is not None and (isinstance(max_p, bool) or not isinstance(max_p, (int, float)) or not 0.0 < max_p <= 1.0):
            raise self.fail(
                f"{key}.max_p",
                f"'{key}.max_p' should be a p-value in (0, 1], got {show(max_p)}",
                "give the largest p-value that passes, e.g. 0.05, or leave max_p out to report p without a bound",
            )
        return Gain(
            over=self.text(data["over"], f"{key}.over"),
            metric=metric,
            more_than=float(more_than),
            min_changed_queries=changed,
            max_p=None if max_p is None else float(max_p),
            reason=self.text(data["reason"], f"{key}.reason"),
            where=self.where(key),
        )


def _check_references(condition: Condition, sources: Mapping[str, str], datasets: Mapping[str, DatasetEntry]) -> None:
    for source, where in [(condition.source, condition.where), *((c.source, c.where) for c in condition.cells if c.source)]:
        if source not in sources:
            raise InparsError(f"{where}: unknown source '{source}'; {suggest(source, sources)}")
    for cell in condition.cells:
        if cell.dataset not in datasets:
            raise InparsError(
                f"{cell.where}: {_unknown('dataset', cell.dataset, datasets, 'in the tables')}; add it under datasets: with "
                "its counts"
            )
        entry = datasets[cell.dataset]
        if cell.gain is not None:
            _check_gain(condition, cell.gain, entry)
        if (
            "data" in condition.released
            and "{released_data}" in condition.released["data"]
            and not entry.unavailable
            and not entry.released_data
            and not entry.forums
        ):
            raise InparsError(
                f"{cell.where}: condition '{condition.name}' names released data, but dataset '{cell.dataset}' has no "
                "released_data"
            )


def _check_gain(condition: Condition, gain: Gain, entry: DatasetEntry) -> None:
    """A gain compares two systems of one run: a condition that runs, a system other than the one it is checked
    against, and a dataset that is one run (forums run apart, and a mean over them has no paired test)."""
    if condition.reference is not None:
        raise InparsError(f"{gain.where}: condition '{condition.name}' is a reported row, which nothing runs; remove its gain")
    if gain.over == condition.system:
        raise InparsError(
            f"{gain.where}: the gain of '{condition.name}' compares system '{gain.over}' with itself; name the first stage "
            "(the run's baseline) in 'over'"
        )
    if entry.forums:
        raise InparsError(
            f"{gain.where}: dataset '{entry.name}' is scored as the mean over its forums, each its own run, so there is no "
            "one run to check a gain on; remove the gain"
        )
