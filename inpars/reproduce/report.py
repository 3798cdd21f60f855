"""Reporting a reproduction: the OK / FAIL table for the terminal, the bar chart, the markdown report with its
results.json, and the listing of runnable datasets and conditions."""

from __future__ import annotations

from pathlib import Path

from inpars.reproduce.check import CellCheck, GainCheck
from inpars.reproduce.run import Reproduction
from inpars.reproduce.tables import Tables


def _cells(reproduction: Reproduction) -> list[CellCheck]:
    return [c for c in reproduction.checks if isinstance(c, CellCheck)]


def _gains(reproduction: Reproduction) -> list[GainCheck]:
    return [c for c in reproduction.checks if isinstance(c, GainCheck)]


def _changed(check: GainCheck) -> str:
    return f"{check.changed} of {check.queries}"


def _p(check: GainCheck) -> str:
    return "" if check.p is None else f"{check.p:.3g}"


def result_table(reproduction: Reproduction):
    """Rich tables: per cell, expected against obtained, the difference, the tolerance and OK or FAIL; per gain a cell
    asks for, the system against the run's first stage (difference, queries changed, p) and OK or FAIL."""
    from rich.console import Group
    from rich.table import Table

    table = Table(
        "condition", "run", "metric", "expected", "obtained", "diff", "tolerance", "result",
        title=f"reproduction: {reproduction.dataset}",
    )
    for check in _cells(reproduction):
        verdict = "[green]OK[/green]" if check.ok else "[bold red]FAIL[/bold red]"
        table.add_row(
            check.condition, check.mode, check.metric, f"{check.expected:.4f}", f"{check.obtained:.4f}",
            f"{check.difference:+.4f}", f"±{check.tolerance.value:g}", verdict,
        )
    gains = _gains(reproduction)
    if not gains:
        return table
    against = Table(
        "condition", "run", "metric", "system", "over", "gain", "changed", "p (rand., Holm)", "required", "result",
        title=f"gain over the first stage, same run: {reproduction.dataset}",
    )
    for check in gains:
        verdict = "[green]OK[/green]" if check.ok else f"[bold red]FAIL[/bold red] ({'; '.join(check.problems)})"
        against.add_row(
            check.condition, check.mode, check.metric, check.system, check.gain.over, f"{check.difference:+.4f}",
            _changed(check), _p(check), check.required, verdict,
        )
    return Group(table, against)


def plot(reproduction: Reproduction):
    """Grouped bars, expected and obtained, per condition and metric; the tolerance as an error bar on expected."""
    from inpars.errors import require

    require("matplotlib", "demo")
    from matplotlib.figure import Figure  # object API: no pyplot, no global backend

    checks = _cells(reproduction)
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

    cells, gains = _cells(reproduction), _gains(reproduction)
    failed = [c for c in cells if not c.ok]
    summary = f"{len(cells) - len(failed)} of {len(cells)} cells within tolerance"
    if gains:
        summary += f"; {sum(1 for g in gains if g.ok)} of {len(gains)} gains over the first stage as required"
    lines = [
        f"# Reproduction: {reproduction.dataset}",
        "",
        f"**{'OK' if reproduction.ok else 'FAIL'}**: {summary}.",
        "",
        f"inpars commit `{git_commit() or 'unknown'}`; " + ", ".join(f"{k} {v}" for k, v in library_versions().items()),
        "",
        "| condition | run | metric | expected | obtained | diff | tolerance | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        lines.append(
            f"| {c.condition} | {c.mode} | {c.metric} | {c.expected:.4f} | {c.obtained:.4f} | {c.difference:+.4f} | "
            f"±{c.tolerance.value:g} | {'OK' if c.ok else '**FAIL**'} |"
        )
    if chart:
        lines += ["", f"![expected and obtained]({chart})"]
    if gains:
        lines += [
            "",
            "## Gain over the first stage",
            "",
            (
                "The checked system against the run's baseline on the same queries: the mean difference, the queries "
                "whose score differs, and the p-value of the paired randomization test (Holm-corrected)."
            ),
            "",
            "| condition | run | metric | system | over | gain | changed | p | required | result |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for g in gains:
            verdict = "OK" if g.ok else f"**FAIL** ({'; '.join(g.problems)})"
            lines.append(
                f"| {g.condition} | {g.mode} | {g.metric} | {g.system} | {g.gain.over} | {g.difference:+.4f} | {_changed(g)} | "
                f"{_p(g)} | {g.required} | {verdict} |"
            )
    lines += ["", "## Tolerances", ""]
    for reason in dict.fromkeys(
        f"- {c.condition} ({c.mode}, {c.metric}): ±{c.tolerance.value:g}: {c.tolerance.reason}" for c in cells
    ):
        lines.append(reason)
    for reason in dict.fromkeys(f"- {g.condition} ({g.mode}, gain in {g.metric}): {g.gain.reason}" for g in gains):
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
    if _cells(reproduction):
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
            for c in _cells(reproduction)
        ],
        "gains": [
            {"condition": g.condition, "mode": g.mode, "metric": g.metric, "system": g.system, "over": g.gain.over,
             "difference": g.difference, "changed": g.changed, "queries": g.queries, "p": g.p,
             "more_than": g.gain.more_than, "min_changed_queries": g.gain.min_changed_queries, "max_p": g.gain.max_p,
             "reason": g.gain.reason, "problems": g.problems, "ok": g.ok}
            for g in _gains(reproduction)
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
