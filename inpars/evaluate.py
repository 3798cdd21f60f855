"""Evaluation in-process with ir_measures (pytrec_eval underneath). A query missing from a run scores zero.

How sure a difference is: per measure, each system's per-query scores are compared with a named baseline's on the
same queries (scipy's paired t-test and paired randomization test, Holm-corrected over the systems compared), and
each system's mean gets a bootstrap confidence interval over the queries. When a recipe runs with several seeds,
a query's score is its mean over the seeds, and the mean and standard deviation over the seeds are reported too.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from inpars.data import Qrels, Run
from inpars.errors import InparsError
from inpars.stage import Stage

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100")

PerQuery = dict[str, dict[str, float]]
"""measure -> query_id -> score, for every judged query (zero where the run lacks it)."""


def _parse(measures: Iterable[str]):
    import ir_measures

    parsed = []
    for name in measures:
        try:
            parsed.append(ir_measures.parse_measure(name))
        except (NameError, ValueError, SyntaxError) as exc:
            raise InparsError(f"unknown measure '{name}' ({exc}); examples: nDCG@10, RR@10, R@100, P@5, AP, Judged@10") from None
    return parsed


def per_query(run: Run, qrels: Qrels, measures: Iterable[str] = DEFAULT_MEASURES) -> PerQuery:
    """Each measure's score on every judged query; queries absent from the run score zero."""
    import ir_measures

    names = list(measures)
    parsed = _parse(names)
    judged = sorted(qid for qid, docs in qrels.items() if docs)
    if not judged:
        raise InparsError("the qrels judge no query")
    found: dict[str, dict[str, float]] = {str(m): {} for m in parsed}
    for metric in ir_measures.iter_calc(parsed, qrels, run):
        found[str(metric.measure)][metric.query_id] = float(metric.value)
    return {name: {qid: found[str(m)].get(qid, 0.0) for qid in judged} for name, m in zip(names, parsed)}


def evaluate(run: Run, qrels: Qrels, measures: Iterable[str] = DEFAULT_MEASURES) -> dict[str, float]:
    """Mean of each measure over every judged query; queries absent from the run count as zero."""
    return {name: sum(scores.values()) / len(scores) for name, scores in per_query(run, qrels, measures).items()}


@dataclass(frozen=True)
class MeasureStats:
    """One system on one measure: the mean over queries (of the seeds' mean), its spread over seeds and its interval.

    ``std`` is the sample standard deviation of ``per_seed`` (None with one seed). ``ci_low``/``ci_high``: the
    bootstrap interval of the mean over queries. The p-values test the per-query difference from the baseline
    (None for the baseline itself); ``*_holm`` are Holm-corrected over the systems compared with it.
    """

    mean: float
    std: float | None
    per_seed: tuple[float, ...]
    ci_low: float
    ci_high: float
    diff: float | None = None
    p_t: float | None = None
    p_randomization: float | None = None
    p_t_holm: float | None = None
    p_randomization_holm: float | None = None

    def as_dict(self) -> dict:
        return {
            "mean": self.mean, "std": self.std, "per_seed": list(self.per_seed), "ci": [self.ci_low, self.ci_high],
            "diff": self.diff, "p_t": self.p_t, "p_randomization": self.p_randomization,
            "p_t_holm": self.p_t_holm, "p_randomization_holm": self.p_randomization_holm,
        }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (scipy offers only Benjamini-Hochberg/Yekutieli, statsmodels is not a dependency)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _paired_tests(system, baseline, resamples: int, seed: int) -> tuple[float, float]:
    """Two-sided p-values of the paired t-test and of the paired randomization test (sign flips of the differences)."""
    import numpy as np
    from scipy import stats

    diff = np.asarray(system) - np.asarray(baseline)
    if not np.any(diff):
        return 1.0, 1.0
    p_t = float(stats.ttest_rel(system, baseline).pvalue)
    randomized = stats.permutation_test(
        (np.asarray(system), np.asarray(baseline)), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=resamples, alternative="two-sided", rng=np.random.default_rng(seed),
    )
    return (1.0 if math.isnan(p_t) else p_t), float(randomized.pvalue)


def _interval(values, resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    import numpy as np
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    result = stats.bootstrap(
        (values,), np.mean, n_resamples=resamples, confidence_level=confidence, method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare(
    scores: Mapping[str, Sequence[PerQuery]],
    baseline: str,
    resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, MeasureStats]]:
    """``scores``: system -> one ``per_query`` result per seed (one or more), all on the same queries and measures.

    Returns system -> measure -> :class:`MeasureStats`, every system tested against ``baseline``.
    """
    import numpy as np

    if baseline not in scores:
        raise InparsError(f"baseline '{baseline}' is not one of the systems compared ({', '.join(scores)}); name one of them")
    reference = scores[baseline][0]
    measures = list(reference)
    queries = list(reference[measures[0]])
    for system, seeds in scores.items():
        if not seeds:
            raise InparsError(f"system '{system}' has no scores")
        for one in seeds:
            if list(one) != measures or any(list(one[m]) != queries for m in measures):
                raise InparsError(
                    f"system '{system}' was scored on other measures or queries than '{baseline}'; evaluate every run against "
                    "the same qrels"
                )
    out: dict[str, dict[str, MeasureStats]] = {system: {} for system in scores}
    for measure in measures:
        # A query's score is its mean over the seeds; the tests and the interval are over queries.
        matrix = {system: np.array([[one[measure][q] for q in queries] for one in seeds]) for system, seeds in scores.items()}
        base = matrix[baseline].mean(axis=0)
        tested = [system for system in scores if system != baseline]
        p_values = {system: _paired_tests(matrix[system].mean(axis=0), base, resamples, seed) for system in tested}
        holm_t = dict(zip(tested, holm([p_values[s][0] for s in tested])))
        holm_r = dict(zip(tested, holm([p_values[s][1] for s in tested])))
        for system, values in matrix.items():
            per_seed = tuple(float(v) for v in values.mean(axis=1))
            low, high = _interval(values.mean(axis=0), resamples, confidence, seed)
            stats_ = MeasureStats(
                mean=float(np.mean(per_seed)), std=float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else None,
                per_seed=per_seed, ci_low=low, ci_high=high,
            )
            if system != baseline:
                stats_ = dataclasses.replace(
                    stats_, diff=stats_.mean - float(base.mean()), p_t=p_values[system][0], p_randomization=p_values[system][1],
                    p_t_holm=holm_t[system], p_randomization_holm=holm_r[system],
                )
            out[system][measure] = stats_
    return out


def format_stats(stats_: MeasureStats, digits: int = 4) -> str:
    """``0.7260 ± 0.0030 [0.69, 0.76] p=0.001`` (std with several seeds, p against the baseline when tested)."""
    text = f"{stats_.mean:.{digits}f}"
    if stats_.std is not None:
        text += f" ± {stats_.std:.{digits}f}"
    text += f" [{stats_.ci_low:.{digits}f}, {stats_.ci_high:.{digits}f}]"
    if stats_.p_randomization_holm is not None:
        text += f" p={stats_.p_randomization_holm:.3g}"
    return text


# ---------------------------------------------------------------------------------------------- the stage


def run_systems(ctx) -> dict[str, Path]:
    """The runs a recipe scores, by system name: BM25 (the baseline), the first stage when it is not BM25, the reranker."""
    systems = {"bm25": ctx.input("retrieve", "run.trec" if ctx.first_is_bm25 else "bm25.trec")}
    if not ctx.first_is_bm25:
        systems[ctx.config.retrieve.backend] = ctx.input("retrieve", "run.trec")
    if ctx.has("rerank"):
        systems[ctx.reranker] = ctx.input("rerank", "run.trec")
    return systems


def _run(ctx, cfg, folder: Path) -> dict:
    from inpars import io
    from inpars.generate.fewshot import FEWSHOT_FILE, without_fewshot_queries

    qrels = ctx.dataset.qrels
    if ctx.has("generate"):
        # Queries shown to the generator as few-shot examples are not test queries any more.
        qrels = without_fewshot_queries(qrels, ctx.input("generate", FEWSHOT_FILE).parent)
    scores = {name: per_query(io.read_trec_run(path), qrels, cfg.evaluate.measures) for name, path in run_systems(ctx).items()}
    io.write_json(ctx.output(folder, "per_query.json"), scores)
    metrics = {name: {m: sum(v.values()) / len(v) for m, v in by_measure.items()} for name, by_measure in scores.items()}
    io.write_json(ctx.output(folder, "metrics.json"), metrics)
    return metrics


STAGE = Stage(
    "evaluate",
    ("evaluate",),
    ("retrieve/run.trec", "retrieve/bm25.trec", "rerank/run.trec", "generate/fewshot_query_ids.json"),
    ("metrics.json", "per_query.json"),
    _run,
)
