"""Checking a run against the tables: every expected metric of a cell compared within its tolerance, the gain a cell
asks of its system over the run's first stage, and a loaded dataset's sanity counts compared with the table's before
anything is scored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpars.errors import InparsError
from inpars.reproduce.tables import COUNT_KEYS, Cell, Condition, DatasetEntry, Gain, Tolerance


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


@dataclass(frozen=True)
class GainCheck:
    """The checked system against the run's baseline on the same queries: the mean difference, how many queries
    score differently, and the Holm-corrected p-value of the paired randomization test, each against its bound."""

    condition: str
    dataset: str
    mode: str
    system: str
    gain: Gain
    difference: float
    changed: int
    queries: int
    p: float | None

    @property
    def metric(self) -> str:
        return self.gain.metric

    @property
    def problems(self) -> list[str]:
        """What the run lacks, one phrase per bound it misses; empty when it passes."""
        found = []
        if not self.difference > self.gain.more_than:
            found.append(f"gain {self.difference:+.4f} is not above {self.gain.more_than:+.4f}")
        if self.changed < self.gain.min_changed_queries:
            found.append(f"{self.changed} queries changed, fewer than {self.gain.min_changed_queries}")
        if self.gain.max_p is not None and (self.p is None or self.p > self.gain.max_p + 1e-12):
            found.append(f"p {_p(self.p)} is above {self.gain.max_p:g}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def required(self) -> str:
        """The bounds, as the report prints them."""
        bounds = [f"gain > {self.gain.more_than:+.4f}", f">= {self.gain.min_changed_queries} changed"]
        if self.gain.max_p is not None:
            bounds.append(f"p <= {self.gain.max_p:g}")
        return ", ".join(bounds)


def _p(value: float | None) -> str:
    return "none" if value is None else f"{value:.3g}"


def check_gain(
    condition: Condition, cell: Cell, metrics: Mapping[str, Any], per_query: Mapping[str, Any], mode: str = "full"
) -> GainCheck:
    """Check ``cell.gain`` on one run: ``metrics`` is its ``metrics.json`` (the baseline, and each system's difference
    from it with the p-values), ``per_query`` its ``evaluate/per_query.json`` (system -> measure -> query -> score)."""
    gain = cell.gain
    assert gain is not None
    system = condition.system or ""
    what = f"the run of '{condition.name}' on {cell.dataset}"
    baseline = metrics.get("baseline")
    if baseline != gain.over:
        raise InparsError(
            f"{gain.where}: the gain is declared over '{gain.over}', but {what} tests its systems against '{baseline}'; "
            f"name '{baseline}' in gain.over, or add evaluate.baseline={gain.over} to the condition's set"
        )
    systems = metrics.get("systems") or {}
    for name in (system, gain.over):
        if gain.metric not in systems.get(name, {}) or gain.metric not in per_query.get(name, {}):
            raise InparsError(
                f"{gain.where}: {what} has no {gain.metric} of system '{name}' (its metrics hold "
                f"{', '.join(systems) or 'nothing'}); rerun it, or fix gain.metric or the condition's system"
            )
    stats = systems[system][gain.metric]
    mine, theirs = per_query[system][gain.metric], per_query[gain.over][gain.metric]
    if set(mine) != set(theirs):
        raise InparsError(
            f"{gain.where}: in {what}, systems '{system}' and '{gain.over}' were scored on other queries; rerun its "
            "evaluate stage (--force)"
        )
    return GainCheck(
        condition=condition.name,
        dataset=cell.dataset,
        mode=mode,
        system=system,
        gain=gain,
        difference=float(stats["diff"]),
        changed=sum(1 for query, score in mine.items() if score != theirs[query]),
        queries=len(mine),
        p=None if stats.get("p_randomization_holm") is None else float(stats["p_randomization_holm"]),
    )


def gain_checks(condition: Condition, cell: Cell, run_dir: str | Path, mode: str = "full") -> list[GainCheck]:
    """The gain check of ``cell`` on the finished run in ``run_dir`` (its ``metrics.json`` and
    ``evaluate/per_query.json``), or nothing when the cell asks for no gain."""
    from inpars import io

    if cell.gain is None:
        return []
    files = [Path(run_dir) / "metrics.json", Path(run_dir) / "evaluate" / "per_query.json"]
    for path in files:
        if not path.is_file():
            raise InparsError(
                f"{path} not found: the gain of '{condition.name}' on {cell.dataset} is checked on the finished run's "
                "statistics and per-query scores; run the condition to its end"
            )
    metrics, per_query = (io.read_json(path) for path in files)
    return [check_gain(condition, cell, metrics, per_query, mode)]


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
