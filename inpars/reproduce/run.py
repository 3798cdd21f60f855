"""Running conditions: which (condition, way of running) pairs a dataset runs, the pipeline config of each cell, the
run through the library (a dataset scored over its forums runs forum by forum) and the checks it collects."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.errors import InparsError
from inpars.io import read_text
from inpars.reproduce.check import CellCheck, GainCheck, check_counts, compare, gain_checks
from inpars.reproduce.tables import MODES, Cell, Checkpoint, Condition, DatasetEntry, Tables, _unknown

logger = logging.getLogger(__name__)


@dataclass
class ConditionRun:
    condition: str
    dataset: str
    mode: str
    checks: list[CellCheck | GainCheck]
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
    def checks(self) -> list[CellCheck | GainCheck]:
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
    checks = compare(cond, cell, result.metrics[cond.system], mode) + gain_checks(cond, cell, result.run_dir, mode)
    return ConditionRun(condition, dataset, mode, checks, result.run_dir)


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
