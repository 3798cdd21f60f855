"""What a filter run leaves behind: kept rows, dropped rows with their step and reason, a summary and a histogram."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from inpars import io
from inpars.errors import require
from inpars.filter.base import FilterResult

logger = logging.getLogger(__name__)

HISTOGRAM = "scores.png"
RANK_BARS = 20


def score_stats(values: list[float | None]) -> dict:
    """Count, quantiles and mean of the finite scores, and how many had none."""
    finite = sorted(v for v in values if v is not None and math.isfinite(v))
    stats: dict = {"count": len(finite), "missing": len(values) - len(finite)}
    if finite:

        def quantile(p: float) -> float:
            return finite[min(len(finite) - 1, int(p * len(finite)))]

        stats.update(
            min=finite[0], p10=quantile(0.1), p50=quantile(0.5), p90=quantile(0.9), max=finite[-1], mean=sum(finite) / len(finite)
        )
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in stats.items()}


def summarize(result: FilterResult) -> dict:
    steps = []
    for step in result.steps:
        entry = {
            "step": step.label,
            "config": step.config,
            "input": step.input,
            "kept": step.kept,
            "dropped": step.input - step.kept,
            "reasons": step.reasons,
        }
        if step.scores is not None:
            entry["score"] = step.score_name
            entry["cutoff"] = step.cutoff
            entry["scores"] = score_stats(list(step.scores.values()))
        steps.append(entry)
    return {"input": result.input, "kept": len(result.kept), "dropped": result.reasons(), "steps": steps}


def _histogram_panels(result: FilterResult) -> list[tuple[str, dict[str, float | None], set[str], float | None]]:
    """(title, scores, ids kept, cutoff) per scoring step; without one, the LM score of every query for reference."""
    panels = [(f"{s.label}: {s.score_name}", s.scores, s.kept_ids, s.cutoff) for s in result.steps if s.scores is not None]
    if not panels and result.steps:
        queries = [q for q in result.kept] + [d.query for d in result.dropped]
        if any(q.log_probs for q in queries):
            kept = {q.query_id for q in result.kept}
            panels = [
                ("mean_log_probs of every query (no scoring step)", {q.query_id: q.mean_log_probs for q in queries}, kept, None)
            ]
    return panels


def plot_scores(result: FilterResult):
    """A matplotlib figure with one histogram per scoring step (kept and dropped by that step), or None."""
    panels = _histogram_panels(result)
    if not panels:
        return None
    require("matplotlib", "demo")
    from matplotlib.figure import Figure  # object API: no pyplot, no global backend

    figure = Figure(figsize=(7, 2.8 * len(panels)))
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (title, scores, kept_ids, cutoff) in zip(axes, panels):
        finite = {qid: v for qid, v in scores.items() if v is not None and math.isfinite(v)}
        kept = [v for qid, v in finite.items() if qid in kept_ids]
        dropped = [v for qid, v in finite.items() if qid not in kept_ids]
        values = kept + dropped
        note = ""
        bins: int | list[float] = 30
        if values and all(float(v).is_integer() for v in values):  # ranks: one bar per rank, the long tail in one
            low, high = int(min(values)), int(max(values))
            if high - low > RANK_BARS:
                high = low + RANK_BARS
                note = f"; ranks above {high} shown at {high}"
                kept, dropped = [min(v, high) for v in kept], [min(v, high) for v in dropped]
            bins = [b - 0.5 for b in range(low, high + 2)]
        if values:
            ax.hist(
                [kept, dropped], bins=bins, stacked=True, label=[f"kept ({len(kept)})", f"dropped ({len(dropped)})"],
                color=["tab:green", "tab:red"],
            )
        if cutoff is not None and math.isfinite(cutoff):
            ax.axvline(cutoff, color="black", linestyle="--", linewidth=1, label=f"cutoff {cutoff:.4g}")
        missing = len(scores) - len(finite)
        ax.set_title(
            title + (f" ({missing} without a score{note})" if missing else (f" ({note[2:]})" if note else "")), fontsize=9
        )
        ax.set_ylabel("queries")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no finite scores", transform=ax.transAxes, ha="center", va="center")
    figure.tight_layout()
    return figure


def write_filter_outputs(result: FilterResult, kept_path: str | Path, report_dir: str | Path) -> dict:
    """Write the kept rows to ``kept_path``; dropped rows, ``summary.json`` and the histogram to ``report_dir``."""
    report_dir = Path(report_dir)
    io.write_synthetic(kept_path, result.kept)
    io.write_jsonl(
        report_dir / "dropped.jsonl",
        ({**io.synthetic_to_row(d.query), "step": d.step, "reason": d.reason, "detail": d.detail} for d in result.dropped),
    )
    summary = summarize(result)
    figure = plot_scores(result)
    if figure is not None:
        io.write_png(report_dir / HISTOGRAM, figure)
        summary["histogram"] = HISTOGRAM
    else:
        logger.info("no scores to plot (no scoring step and no log-probs)")
    io.write_json(report_dir / "summary.json", summary)
    return summary
