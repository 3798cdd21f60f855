"""Evaluation in-process with ir_measures (pytrec_eval underneath). A query missing from a run scores zero.

One ranking for every measure: ir_measures hands each measure to a backend, and the backends order tied scores
differently (trec_eval, inside pytrec_eval, puts the tied document with the greater id first; the msmarco backend that
computes RR@k and the judged backend that computes Judged@k put the smaller id first), so on a run with ties, as a
reranker in bf16 writes, nDCG@10 and RR@10 could place the same relevant document at different ranks. Before any
measure sees a run, each query's documents are sorted once in trec_eval's order, by score, highest first, and among equal
scores by document id, the greater id first (Python's string order, which is the byte order of UTF-8 that trec_eval's
``strcmp`` uses), and their scores are replaced by strictly decreasing ranks. A run whose scores are all distinct scores
exactly as before. Only the score decides the order: a TREC run's rank column is not used.

Measure names are checked before any backend sees them (the C backend aborts the interpreter on a cutoff of 0): a name
is refused, with one line saying what is accepted, unless one of the backends used here (pytrec_eval, msmarco, judged,
compat) computes it with the parameters given. Grades below 0 in the qrels count as 0 (judged, not relevant): pytrec_eval
can crash the interpreter on them, and where it does not, it scores them as 0.

How sure a difference is: per measure, each system's per-query scores are compared with a named baseline's on the
same queries (scipy's paired t-test and paired randomization test, Holm-corrected over the systems compared), and
each system's mean gets a bootstrap confidence interval over the queries. When a recipe runs with several seeds,
a query's score is its mean over the seeds, and the mean and standard deviation over the seeds are reported too.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from inpars.data import Qrels, Run, ranked
from inpars.errors import InparsError
from inpars.registry import did_you_mean
from inpars.stage import Stage

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100")

PerQuery = dict[str, dict[str, float]]
"""measure -> query_id -> score, for every judged query (zero where the run lacks it)."""

PROVIDERS = ("pytrec_eval", "compat", "judged", "msmarco")
"""The ir_measures backends used, in ir_measures' own order of preference. gdeval (ERR@k, nDCG(dcg='exp-log2')@k) is
left out: its perl script takes numeric query ids only and cuts every id at its last '-'. accuracy is left out: it
divides by zero on a query whose retrieved documents are all relevant."""

_C_INT_MAX = 2**31 - 1  # pytrec_eval reads cutoffs, relevance levels, gains and grades into C ints
_EXAMPLES = "e.g. nDCG@10, RR@10, R@100, P@5, AP, Judged@10"


def _whole(low: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= _C_INT_MAX


def _fraction(low: float, high: float, *, open_low: bool = False, open_high: bool = False):
    def check(v) -> bool:
        if not isinstance(v, float) or not math.isfinite(v):
            return False
        return (v > low if open_low else v >= low) and (v < high if open_high else v <= high)

    return check


def _gains(v) -> bool:
    return isinstance(v, dict) and all(_whole(0)(k) and _whole(0)(g) for k, g in v.items())


_BOOLEAN = (lambda v: isinstance(v, bool), "True or False")
_PARAMETERS = {
    "cutoff": (_whole(1), f"a whole number from 1 to {_C_INT_MAX}"),
    "rel": (_whole(1), f"a whole number from 1 to {_C_INT_MAX} (the lowest grade that counts as relevant)"),
    "judged_only": _BOOLEAN,
    "relative": _BOOLEAN,
    "normalize": _BOOLEAN,
    "beta": (_fraction(0.0, math.inf, open_low=True, open_high=True), "a positive number with a decimal point, e.g. 0.5"),
    "recall": (_fraction(0.0, 1.0), "a number from 0.0 to 1.0 with a decimal point, e.g. IPrec@0.5"),
    "p": (_fraction(0.0, 1.0, open_low=True, open_high=True), "a number between 0 and 1 (both excluded), e.g. 0.8"),
    "gains": (_gains, f"a map of whole-number grades to whole-number gains from 0 to {_C_INT_MAX}, e.g. {{0: 0, 1: 1, 2: 3}}"),
}
"""Each parameter's check and the line that says what it takes; ``dcg`` is left to the backends' own support check."""


def _pipeline():
    import ir_measures

    return ir_measures.providers.FallbackProvider([ir_measures.providers.registry[name] for name in PROVIDERS])


def accepted_families() -> list[str]:
    """The measure names the backends used here compute (``nDCG``, ``P``, ``RR`` ...), sorted case-insensitively."""
    import ir_measures

    names = {
        m.NAME for name in PROVIDERS for m in ir_measures.providers.registry[name].SUPPORTED_MEASURES
        if ir_measures.providers.registry[name].is_available()
    }
    return sorted(names, key=str.lower)


def _refuse(name: str, problem: str, lead: str = "measure '{name}': ") -> InparsError:
    return InparsError(
        f"{lead.format(name=name)}{problem}; accepted: {', '.join(accepted_families())} ({_EXAMPLES}; a cutoff after @ "
        "is a whole number of at least 1)"
    )


def parse_measures(names: Iterable[str]) -> list:
    """The ir_measures measure of each name, or one :class:`InparsError` naming the first name no backend used here can
    compute as written (unknown, a cutoff below 1 or not whole, a parameter out of range, a backend left out)."""
    import ir_measures

    pipeline = _pipeline()
    families = accepted_families()
    parsed, seen = [], set()
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise _refuse(str(name), "is empty; name a measure")
        if name in seen:
            raise _refuse(name, "is given twice; name each measure once")
        seen.add(name)
        try:
            measure = ir_measures.parse_measure(name)
        except NameError:
            family = re.split(r"[@(]", name, maxsplit=1)[0].strip()
            hint = did_you_mean(family, families)
            raise _refuse(name, f" ({hint})" if hint else "", lead="unknown measure '{name}'") from None
        except Exception as exc:  # noqa: BLE001 - parse_measure raises several types; all mean "cannot be read"
            if re.search(r"@\s*-", name):
                raise _refuse(name, f"the cutoff after @ is below 1; it must be a whole number from 1 to {_C_INT_MAX}") from None
            raise _refuse(name, f"cannot be read ({exc})") from None
        family = measure.NAME
        if family not in families:
            raise _refuse(name, f"{family} is not computed by the backends inpars uses ({', '.join(PROVIDERS)})")
        spec = type(measure).SUPPORTED_PARAMS
        unknown = sorted(set(measure.params) - set(spec))
        if unknown:
            raise _refuse(name, f"{family} has no parameter {', '.join(unknown)}; it takes {', '.join(spec) or 'none'}")
        for key, info in spec.items():
            if info.required and key not in measure.params:
                what = f"a cutoff, e.g. {family}@10" if key == "cutoff" else f"the parameter {key}"
                raise _refuse(name, f"{family} needs {what}")
        for key, value in measure.params.items():
            check, rule = _PARAMETERS.get(key, (None, ""))
            if check is not None and not check(value):
                what = {"cutoff": "the cutoff after @", "recall": "the recall level after @"}.get(key, f"the parameter {key}")
                example = f", e.g. {family}@10" if key == "cutoff" else ""
                raise _refuse(name, f"{what} is {value!r}; it must be {rule}{example}")
        try:
            supported = pipeline.supports(measure)
        except AssertionError as exc:  # ir_measures' own parameter check
            raise _refuse(name, str(exc)) from None
        if not supported:
            raise _refuse(name, f"no backend inpars uses ({', '.join(PROVIDERS)}) computes {family} with these parameters")
        parsed.append(measure)
    return parsed


def tie_broken(run: Run) -> Run:
    """``run`` with each query's scores replaced by strictly decreasing ranks in trec_eval's order: score highest first,
    equal scores by document id, the greater id first. Queries with no document are dropped (they score zero)."""
    broken: Run = {}
    for query_id, docs in run.items():
        scores = {}
        for doc_id, score in docs.items():
            value = float(score) if isinstance(score, numbers.Real) and not isinstance(score, bool) else math.nan
            if not math.isfinite(value):
                raise InparsError(
                    f"the run gives query {query_id!r} document {doc_id!r} the score {score!r}, not a finite number; "
                    "give every document a finite score"
                )
            scores[doc_id] = value
        order = ranked(scores)
        if order:
            broken[query_id] = {doc_id: float(len(order) - i) for i, (doc_id, _) in enumerate(order)}
    return broken


def _graded(qrels: Qrels) -> Qrels:
    """The qrels pytrec_eval can take: grades below 0 as 0 (judged, not relevant), grades beyond a C int refused."""
    graded: Qrels = {}
    for query_id, docs in qrels.items():
        graded[query_id] = {}
        for doc_id, grade in docs.items():
            if not isinstance(grade, numbers.Integral) or isinstance(grade, bool) or abs(int(grade)) > _C_INT_MAX:
                raise InparsError(
                    f"the qrels give query {query_id!r} document {doc_id!r} the grade {grade!r}; a grade is a whole number "
                    f"from -{_C_INT_MAX} to {_C_INT_MAX}"
                )
            graded[query_id][doc_id] = max(int(grade), 0)
    return graded


def per_query(run: Run, qrels: Qrels, measures: Iterable[str] = DEFAULT_MEASURES) -> PerQuery:
    """Each measure's score on every judged query; queries absent from the run score zero. Every measure sees the
    same ranking (:func:`tie_broken`)."""
    names = list(measures)
    parsed = parse_measures(names)
    judged = sorted(qid for qid, docs in qrels.items() if docs)
    if not judged:
        raise InparsError("the qrels judge no query")
    found: dict[str, dict[str, float]] = {str(m): {} for m in parsed}
    for metric in _pipeline().iter_calc(parsed, _graded(qrels), tie_broken(run)):
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
    """``scores``: system -> one ``per_query`` result per seed (one or more), all on the same queries and measures
    (from :func:`per_query`, so that every system was ranked by the same tie rule).

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
    from inpars.datasets import require_part
    from inpars.generate.fewshot import FEWSHOT_FILE, without_fewshot_queries

    require_part(ctx.dataset, "qrels", "evaluate")
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
