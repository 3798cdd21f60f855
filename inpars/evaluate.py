"""Evaluation in-process with ir_measures (pytrec_eval underneath). A query missing from a run scores zero."""

from __future__ import annotations

from collections.abc import Iterable

from inpars.data import Qrels, Run
from inpars.errors import InparsError

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100")


def _parse(measures: Iterable[str]):
    import ir_measures

    parsed = []
    for name in measures:
        try:
            parsed.append(ir_measures.parse_measure(name))
        except (NameError, ValueError, SyntaxError) as exc:
            raise InparsError(f"unknown measure '{name}' ({exc}); examples: nDCG@10, RR@10, R@100, P@5, AP, Judged@10") from None
    return parsed


def evaluate(run: Run, qrels: Qrels, measures: Iterable[str] = DEFAULT_MEASURES) -> dict[str, float]:
    """Mean of each measure over every judged query; queries absent from the run count as zero."""
    import ir_measures

    names = list(measures)
    parsed = _parse(names)
    judged = [qid for qid, docs in qrels.items() if docs]
    if not judged:
        raise InparsError("the qrels judge no query")
    per_query: dict[str, dict[str, float]] = {str(m): {} for m in parsed}
    for metric in ir_measures.iter_calc(parsed, qrels, run):
        per_query[str(metric.measure)][metric.query_id] = float(metric.value)
    return {name: sum(per_query[str(m)].get(qid, 0.0) for qid in judged) / len(judged) for name, m in zip(names, parsed)}
