"""Checking a run against the tables: every expected metric of a cell compared within its tolerance, and a loaded
dataset's sanity counts compared with the table's before anything is scored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from inpars.errors import InparsError
from inpars.reproduce.tables import COUNT_KEYS, Cell, Condition, DatasetEntry, Tolerance


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
