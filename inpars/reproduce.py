"""Reproducing the papers' tables: expected scores kept as YAML in the layout of pyserini's 2CR tables, a condition
run through the library, sanity counts checked before scoring, every cell compared within its stated tolerance,
an OK / FAIL table, a markdown report with a bar chart.

A tables file (``reproduce/*.yaml``) holds ``sources`` (where numbers come from), ``datasets`` (the inpars dataset
name, the sanity counts and their source, or why the dataset cannot run) and ``conditions``: each names a recipe
(a bundled name such as ``inpars-v2`` or a YAML path), how much of it runs (``kind``), the system whose scores are
checked, ``--set`` overrides with ``{dataset}`` placeholders, tolerances with their reasons per way of running
(``full``, or from the ``data`` or ``checkpoint`` the authors released), and one cell per dataset with its expected
scores. A condition with ``reference`` is a row reported by a paper that nothing here can run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.errors import InparsError, InputError
from inpars.io import parse_yaml, read_text, show
from inpars.registry import did_you_mean, suggest

logger = logging.getLogger(__name__)

MODES = ("full", "data", "checkpoint")
"""How a condition is run: every stage here, from the released synthetic queries, or with the released model."""
KINDS = ("retrieval", "rerank", "pipeline")
"""retrieval: retrieve and evaluate; rerank: an existing model reranks (``rerank.model``); pipeline: the whole method."""
COUNT_KEYS = ("docs", "queries", "qrels")
TABLES_ENV = "INPARS_REPRODUCE_TABLES"


# ---------------------------------------------------------------------------------------------- the tables


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
class Cell:
    dataset: str
    scores: Mapping[str, float]
    set: tuple[str, ...]
    tolerance: Mapping[str, Tolerance]
    source: str | None
    where: str


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

    def rate(self, stage: str, model: str | None) -> Rate | None:
        return next((r for r in self.rates if r.stage == stage and r.model == model), None)

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
    folder = Path(env) if env else Path(__file__).resolve().parent / "tables"
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
        data = self.mapping(value, key, ("dataset", "scores", "set", "tolerance", "source"), required=("dataset", "scores"))
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


# ---------------------------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class CellCheck:
    condition: str
    dataset: str
    mode: str
    metric: str
    expected: float
    obtained: float
    tolerance: Tolerance

    @property
    def difference(self) -> float:
        return self.obtained - self.expected

    @property
    def ok(self) -> bool:
        # A hair of slack: 0.5947 vs 0.5942 is a difference of 0.0005 that floats print as 0.00050000000000005.
        return abs(self.difference) <= self.tolerance.value + 1e-9


def compare(condition: Condition, cell: Cell, obtained: Mapping[str, float], mode: str = "full") -> list[CellCheck]:
    """One check per expected metric of ``cell``; a metric missing from ``obtained`` is an error, never a pass."""
    missing = [metric for metric in cell.scores if metric not in obtained]
    if missing:
        raise InparsError(
            f"the run of '{condition.name}' on {cell.dataset} has no {', '.join(missing)} (it has "
            f"{', '.join(obtained) or 'nothing'}); add the metric to evaluate.measures"
        )
    return [
        CellCheck(
            condition.name, cell.dataset, mode, metric, expected, float(obtained[metric]),
            condition.tolerance_for(cell, mode, metric),
        )
        for metric, expected in cell.scores.items()
    ]


def check_counts(entry: DatasetEntry, obtained: Mapping[str, int]) -> None:
    """Stop before scoring when the loaded dataset is not the one the tables describe."""
    if not entry.counts:
        return
    wrong = [
        f"{key} {obtained.get(key)} (expected {entry.counts[key]:,})"
        for key in COUNT_KEYS
        if obtained.get(key) != entry.counts[key]
    ]
    if wrong:
        raise InparsError(
            f"{entry.where}: dataset '{entry.name}' ({entry.dataset}) does not match its sanity counts: {'; '.join(wrong)} "
            f"[source: {entry.counts_source}]; the download may be incomplete or another version: delete it from the "
            "ir_datasets cache and retry"
        )


# ---------------------------------------------------------------------------------------------- running


@dataclass
class ConditionRun:
    condition: str
    dataset: str
    mode: str
    checks: list[CellCheck]
    run_dir: Path | None = None
    forums: dict[str, dict[str, float]] = field(default_factory=dict)
    """A dataset scored over its forums: each forum's scores (the checks hold their mean)."""

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


@dataclass
class Reproduction:
    dataset: str
    runs: list[ConditionRun]
    tables: Tables

    @property
    def checks(self) -> list[CellCheck]:
        return [check for run in self.runs for check in run.checks]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def _fill(text: str, entry: DatasetEntry) -> str:
    return text.replace("{dataset}", entry.name).replace("{released_data}", entry.released_data or "")


def recipe_text(condition: Condition) -> tuple[str, str]:
    """The recipe's YAML and where it came from: a bundled recipe name, or a path beside the tables file."""
    from importlib import resources

    assert condition.recipe is not None
    path = Path(condition.recipe)
    if path.suffix in (".yaml", ".yml"):
        path = path if path.is_absolute() else condition.folder / path
        if not path.is_file():
            raise InparsError(
                f"{condition.where}: recipe {path} not found; give a bundled recipe name or a path relative to the tables file"
            )
        return read_text(path, "recipe"), str(path)
    bundled = resources.files("inpars.recipes").joinpath(f"{condition.recipe}.yaml")
    if not bundled.is_file():
        names = sorted(p.name[:-5] for p in resources.files("inpars.recipes").iterdir() if p.name.endswith(".yaml"))
        raise InparsError(f"{condition.where}: {_unknown('recipe', condition.recipe, names, 'among the bundled recipes')}")
    return bundled.read_text(encoding="utf-8"), f"inpars/recipes/{condition.recipe}.yaml"


def condition_config(
    entry: DatasetEntry, condition: Condition, cell: Cell, mode: str, output_dir: str | Path, overrides: Sequence[str] = ()
):
    """The pipeline config of one cell: the recipe, the dataset, the condition's and the cell's overrides."""
    from inpars.config import load_pipeline_config

    text, source = recipe_text(condition)
    name = condition.name if mode == "full" else f"{condition.name}-from-{mode}"
    measures = ",".join(dict.fromkeys(cell.scores))
    settings = [
        f"dataset={entry.dataset}",
        f"name={name}",
        f"output_dir={Path(output_dir) / entry.name}",
        *(_fill(item, entry) for item in (*condition.set, *cell.set)),
        f"evaluate.measures={measures}",
        *overrides,
    ]
    config = apply_stand_ins(load_pipeline_config(text=text, overrides=settings), condition.stand_ins)
    return config, source, settings


def apply_stand_ins(config: Any, stand_ins: Mapping[str, str]) -> Any:
    """``config`` with every text field whose value is a key of ``stand_ins`` set to its stand-in, in every section
    and filter step: one mapping swaps what a paper condition names and cannot be had here (its models, a published
    prompt) for what runs instead, and leaves the code path as it is."""
    if not stand_ins:
        return config
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        changes = {}
        for item in dataclasses.fields(config):
            value = getattr(config, item.name)
            if isinstance(value, str) and value in stand_ins:
                changes[item.name] = stand_ins[value]
            else:
                swapped = apply_stand_ins(value, stand_ins)
                if swapped is not value:
                    changes[item.name] = swapped
        return dataclasses.replace(config, **changes) if changes else config
    if isinstance(config, (tuple, list)):
        swapped = [apply_stand_ins(value, stand_ins) for value in config]
        return type(config)(swapped) if any(a is not b for a, b in zip(swapped, config)) else config
    return config


def released_queries(url: str, folder: Path) -> Path:
    """Download the released synthetic queries once (into the inpars cache) and convert them for the pipeline."""
    from inpars import io
    from inpars.models import cache_dir

    raw = cache_dir() / "released" / url.rstrip("/").rsplit("/", 1)[-1]
    if not raw.is_file():
        io.download(url, raw, "the released synthetic queries", "run the condition without --from-released")
    converted = folder / f"released-{raw.stem}.jsonl"
    if not converted.is_file():
        io.write_synthetic(converted, io.read_released_synthetic(raw))
    return converted


def runnable_cell(tables: Tables, dataset: str, condition: str, mode: str = "full") -> tuple[DatasetEntry, Condition, Cell]:
    """The dataset, condition and cell to run, or an error saying why this one cannot run and what can."""
    entry = tables.dataset(dataset)
    cond = tables.condition(condition)
    if entry.unavailable:
        raise InparsError(
            f"dataset '{dataset}' cannot run: {entry.unavailable}; runnable datasets: {', '.join(tables.runnable_datasets())}"
        )
    runnable = ", ".join(c.name for c in tables.runnable(dataset))
    if cond.reference is not None:
        raise InparsError(
            f"condition '{condition}' is a row reported by a paper, nothing here runs it ({cond.reference}); runnable on "
            f"{dataset}: {runnable}"
        )
    cell = cond.cell(dataset)
    if cell is None:
        raise InparsError(f"condition '{condition}' has no expected scores for '{dataset}'; runnable on {dataset}: {runnable}")
    if mode not in MODES:
        raise InparsError(f"unknown way of running '{mode}'; use one of {', '.join(MODES)}")
    if mode not in cond.modes():
        shortcuts = [c.name for c in tables.runnable(dataset) if mode in c.modes()]
        raise InparsError(
            f"condition '{condition}' has no released {mode} to start from (it runs as: {', '.join(cond.modes())}); conditions "
            f"with one: {', '.join(shortcuts) or 'none'}"
        )
    if mode == "checkpoint":
        cond.checkpoint(dataset)
    if mode == "data" and not _has_released_data(cond, entry):
        raise InparsError(f"no released data of '{condition}' is known for '{dataset}'; run it without --from-released")
    return entry, cond, cell


def _has_released_data(cond: Condition, entry: DatasetEntry) -> bool:
    return (
        "data" in cond.released
        and ("{released_data}" not in cond.released["data"] or bool(entry.released_data))
        and not entry.forums
    )


def run_condition(
    tables: Tables,
    dataset: str,
    condition: str,
    mode: str = "full",
    output_dir: str | Path = "runs/reproduce",
    force: bool = False,
    overrides: Sequence[str] = (),
    loaded=None,
    only=None,
) -> ConditionRun:
    """Run one condition on one dataset (``mode``: full, or from the released data or checkpoint) and check its cell.

    ``only`` (a :class:`inpars.pipeline.Selection`): run that one stage, as a cluster job does; nothing is checked then.
    """
    from inpars.datasets import load_dataset
    from inpars.pipeline import run_pipeline

    entry, cond, cell = runnable_cell(tables, dataset, condition, mode)
    if entry.forums and only is not None:
        raise InparsError(
            f"dataset '{dataset}' is scored over its forums, which run one after the other in one process; run it without "
            "--stage or --slurm"
        )
    if entry.forums:
        return _run_forums(entry, cond, cell, mode, output_dir, force, overrides)
    config, source, settings = condition_config(entry, cond, cell, mode, output_dir, overrides)
    logger.info("%s on %s (%s): %s %s", condition, dataset, mode, source, " ".join(f"--set {s}" for s in settings))
    data = loaded if loaded is not None else load_dataset(entry.dataset)
    check_counts(entry, data.counts())
    kwargs: dict[str, Any] = {}
    if cond.kind == "retrieval":
        kwargs["rerank"] = False
    elif cond.kind == "rerank":
        kwargs["model"] = _rerank_model(config, cond)
    elif mode == "checkpoint":
        kwargs["model"] = cond.checkpoint(entry.name).model
    elif mode == "data":
        config.run_dir.mkdir(parents=True, exist_ok=True)
        kwargs["queries"] = released_queries(_fill(cond.released["data"], entry), config.run_dir)
    result = run_pipeline(config, force=force, dataset=data, only=only, **kwargs)
    if only is not None:
        return ConditionRun(condition, dataset, mode, [], result.run_dir)
    if cond.system not in result.metrics:
        raise InparsError(
            f"{cond.where}: system '{cond.system}' is not in the run's metrics ({', '.join(result.metrics)}); fix 'system'"
        )
    return ConditionRun(condition, dataset, mode, compare(cond, cell, result.metrics[cond.system], mode), result.run_dir)


def _rerank_model(config, cond: Condition) -> str:
    """The model a rerank condition reranks with: its recipe's ``rerank.model``."""
    if config.rerank.model is None:
        raise InparsError(f"{cond.where}: a rerank condition's recipe names the model that reranks; set rerank.model in it")
    return config.rerank.model


def forum_mean(scores: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The mean over forums of each metric (every forum's run must have it), as BEIR scores CQADupStack."""
    metrics = dict.fromkeys(metric for forum in scores.values() for metric in forum)
    for forum, values in scores.items():
        missing = [metric for metric in metrics if metric not in values]
        if missing:
            raise InparsError(
                f"the run of forum '{forum}' has no {', '.join(missing)}; every forum needs the same measures to be averaged"
            )
    return {metric: sum(values[metric] for values in scores.values()) / len(scores) for metric in metrics}


def _run_forums(
    entry: DatasetEntry, cond: Condition, cell: Cell, mode: str, output_dir: str | Path, force: bool, overrides: Sequence[str]
) -> ConditionRun:
    """Run a condition on every forum of ``entry`` (each its own dataset, counts checked) and check the cell against
    their mean."""
    from inpars.datasets import load_dataset
    from inpars.pipeline import run_pipeline

    if mode != "full":
        raise InparsError(f"dataset '{entry.name}' is scored over its forums; run it without --from-released")
    scores: dict[str, dict[str, float]] = {}
    for forum, part in zip(entry.forums, entry.forum_entries()):
        config, source, settings = condition_config(part, cond, cell, mode, Path(output_dir) / entry.name, overrides)
        logger.info("%s on %s, forum %s: %s %s", cond.name, entry.name, forum, source, " ".join(f"--set {s}" for s in settings))
        data = load_dataset(part.dataset)
        check_counts(part, data.counts())
        kwargs: dict[str, Any] = (
            {"rerank": False}
            if cond.kind == "retrieval"
            else {"model": _rerank_model(config, cond)}
            if cond.kind == "rerank"
            else {}
        )
        result = run_pipeline(config, force=force, dataset=data, **kwargs)
        if cond.system not in result.metrics:
            raise InparsError(
                f"{cond.where}: system '{cond.system}' is not in the run's metrics ({', '.join(result.metrics)}); fix 'system'"
            )
        scores[forum] = {metric: float(value) for metric, value in result.metrics[cond.system].items()}
    mean = forum_mean(scores)
    logger.info(
        "%s on %s: the mean over %d forums is %s", cond.name, entry.name, len(scores),
        ", ".join(f"{m} {v:.4f}" for m, v in mean.items()),
    )
    return ConditionRun(
        cond.name, entry.name, mode, compare(cond, cell, mean, mode), Path(output_dir) / entry.name, forums=scores
    )


def plan(tables: Tables, dataset: str, conditions: Sequence[str] = (), released: str | None = None) -> list[tuple[str, str]]:
    """(condition, mode) pairs to run: the named conditions, else every runnable one; ``released`` picks a shortcut."""
    if released is not None and released not in MODES[1:]:
        raise InparsError(
            f"--from-released is '{released}'; use data (the released synthetic queries) or checkpoint (the released model)"
        )
    if conditions:
        steps = [(name, released or "full") for name in dict.fromkeys(conditions)]
        for name, mode in steps:
            runnable_cell(tables, dataset, name, mode)
        return steps
    entry = tables.dataset(dataset)
    if entry.unavailable:
        raise InparsError(
            f"dataset '{dataset}' cannot run: {entry.unavailable}; runnable datasets: {', '.join(tables.runnable_datasets())}"
        )
    chosen = tables.runnable(dataset)
    if released is None:
        return [(c.name, "full") for c in chosen]
    with_shortcut = [
        (c.name, released)
        for c in chosen
        if released in c.modes()
        and (released != "checkpoint" or c.checkpoints.get(dataset, Checkpoint(None, "")).model)
        and (released != "data" or _has_released_data(c, entry))
    ]
    if not with_shortcut:
        raise InparsError(f"no condition has a released {released} for '{dataset}'; run without --from-released")
    return with_shortcut


def reproduce(
    tables: Tables,
    dataset: str,
    conditions: Sequence[str] = (),
    released: str | None = None,
    output_dir: str | Path = "runs/reproduce",
    force: bool = False,
    overrides: Sequence[str] = (),
    only=None,
) -> Reproduction:
    """Run the planned conditions of ``dataset`` (the dataset is loaded once) and collect every check.

    ``only`` (a :class:`inpars.pipeline.Selection`): one stage of one condition, as a cluster job runs it.
    """
    from inpars.datasets import load_dataset

    steps = plan(tables, dataset, conditions, released)
    if only is not None and len(steps) != 1:
        raise InparsError(
            "--stage runs one stage of one condition; name the condition (--condition), one of: "
            f"{', '.join(name for name, _ in steps)}"
        )
    entry = tables.dataset(dataset)
    loaded = load_dataset(entry.dataset) if steps and not entry.forums else None  # forums are loaded one by one
    runs = [run_condition(tables, dataset, name, mode, output_dir, force, overrides, loaded, only) for name, mode in steps]
    return Reproduction(dataset, runs, tables)


# ---------------------------------------------------------------------------------------------- reporting


def result_table(reproduction: Reproduction):
    """A rich table: expected against obtained, the difference, the tolerance and OK or FAIL per cell."""
    from rich.table import Table

    table = Table(
        "condition", "run", "metric", "expected", "obtained", "diff", "tolerance", "result",
        title=f"reproduction: {reproduction.dataset}",
    )
    for check in reproduction.checks:
        verdict = "[green]OK[/green]" if check.ok else "[bold red]FAIL[/bold red]"
        table.add_row(
            check.condition, check.mode, check.metric, f"{check.expected:.4f}", f"{check.obtained:.4f}",
            f"{check.difference:+.4f}", f"±{check.tolerance.value:g}", verdict,
        )
    return table


def plot(reproduction: Reproduction):
    """Grouped bars, expected and obtained, per condition and metric; the tolerance as an error bar on expected."""
    from inpars.errors import require

    require("matplotlib", "demo")
    from matplotlib.figure import Figure  # object API: no pyplot, no global backend

    checks = reproduction.checks
    figure = Figure(figsize=(max(5.0, 1.1 * len(checks) + 2), 3.6))
    ax = figure.subplots()
    positions = range(len(checks))
    width = 0.38
    ax.bar(
        [p - width / 2 for p in positions], [c.expected for c in checks], width, yerr=[c.tolerance.value for c in checks],
        capsize=3, color="tab:gray", label="expected (± tolerance)",
    )
    ax.bar(
        [p + width / 2 for p in positions], [c.obtained for c in checks], width,
        color=["tab:green" if c.ok else "tab:red" for c in checks], label="obtained",
    )
    ax.set_xticks(list(positions))
    ax.set_xticklabels(
        [f"{c.condition}\n{c.metric}" + ("" if c.mode == "full" else f"\n(from {c.mode})") for c in checks], fontsize=8
    )
    ax.set_ylim(0, min(1.0, max([c.expected + c.tolerance.value for c in checks] + [c.obtained for c in checks] + [0.1]) * 1.15))
    ax.set_ylabel("score")
    ax.set_title(f"{reproduction.dataset}: expected and obtained (green OK, red FAIL)", fontsize=9)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def markdown(reproduction: Reproduction, chart: str | None) -> str:
    from inpars.provenance import git_commit, library_versions

    failed = [c for c in reproduction.checks if not c.ok]
    lines = [
        f"# Reproduction: {reproduction.dataset}",
        "",
        (
            f"**{'OK' if reproduction.ok else 'FAIL'}**: {len(reproduction.checks) - len(failed)} of {len(reproduction.checks)} "
            "cells within tolerance."
        ),
        "",
        f"inpars commit `{git_commit() or 'unknown'}`; " + ", ".join(f"{k} {v}" for k, v in library_versions().items()),
        "",
        "| condition | run | metric | expected | obtained | diff | tolerance | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in reproduction.checks:
        lines.append(
            f"| {c.condition} | {c.mode} | {c.metric} | {c.expected:.4f} | {c.obtained:.4f} | {c.difference:+.4f} | "
            f"±{c.tolerance.value:g} | {'OK' if c.ok else '**FAIL**'} |"
        )
    if chart:
        lines += ["", f"![expected and obtained]({chart})"]
    lines += ["", "## Tolerances", ""]
    for reason in dict.fromkeys(
        f"- {c.condition} ({c.mode}, {c.metric}): ±{c.tolerance.value:g}: {c.tolerance.reason}" for c in reproduction.checks
    ):
        lines.append(reason)
    lines += ["", "## Sources", ""]
    used = {reproduction.tables.conditions[c.condition].source for c in reproduction.checks}
    used |= {
        cell.source
        for c in reproduction.checks
        for cell in [reproduction.tables.conditions[c.condition].cell(c.dataset)]
        if cell and cell.source
    }
    lines += [f"- {name}: {reproduction.tables.sources[name]}" for name in sorted(used)]
    lines += ["", "## Runs", ""]
    lines += [f"- {run.condition} ({run.mode}): `{run.run_dir}`" for run in reproduction.runs]
    return "\n".join(lines) + "\n"


def write_report(reproduction: Reproduction, folder: str | Path) -> Path:
    """``report.md``, ``report.png`` and ``results.json`` in ``folder``, each written atomically; returns the markdown's path."""
    from inpars import io

    folder = Path(folder)
    chart = None
    if reproduction.checks:
        io.write_png(folder / "report.png", plot(reproduction))
        chart = "report.png"
    with io.atomic_write(folder / "report.md") as handle:
        handle.write(markdown(reproduction, chart))
    io.write_json(folder / "results.json", {
        "dataset": reproduction.dataset,
        "ok": reproduction.ok,
        "checks": [
            {"condition": c.condition, "mode": c.mode, "metric": c.metric, "expected": c.expected, "obtained": c.obtained,
             "difference": c.difference, "tolerance": c.tolerance.value, "reason": c.tolerance.reason, "ok": c.ok}
            for c in reproduction.checks
        ],
        "runs": {f"{r.condition}:{r.mode}": str(r.run_dir) for r in reproduction.runs},
        "forums": {f"{r.condition}:{r.mode}": r.forums for r in reproduction.runs if r.forums},
    })
    return folder / "report.md"


def listing(tables: Tables) -> list[str]:
    """One line per runnable dataset: its name, then its conditions (a condition with released shortcuts shows them)."""
    out = []
    for name in tables.runnable_datasets():
        conditions = []
        for c in tables.runnable(name):
            shortcuts = [m for m in c.modes()[1:] if m != "checkpoint" or (name in c.checkpoints and c.checkpoints[name].model)]
            conditions.append(c.name + (f"[{','.join(shortcuts)}]" if shortcuts else ""))
        out.append(f"{name} {' '.join(conditions)}")
    return out
