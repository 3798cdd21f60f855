from __future__ import annotations

import math

import pytest

from inpars.errors import InparsError
from inpars.evaluate import evaluate


def test_ndcg_by_hand():
    qrels = {"q1": {"a": 1, "c": 2}, "q2": {"x": 1}}
    run = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}}  # q2 is missing from the run: it counts as zero
    # trec_eval's nDCG (pytrec_eval under ir_measures) uses the grade itself as the gain.
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    got = (1 / math.log2(2) + 2 / math.log2(4)) / ideal
    scores = evaluate(run, qrels, ["nDCG@10", "RR@10", "R@2"])
    assert scores["nDCG@10"] == pytest.approx(got / 2)
    assert scores["RR@10"] == pytest.approx(1 / 2)
    assert scores["R@2"] == pytest.approx(0.5 / 2)


def test_unknown_measure():
    with pytest.raises(InparsError, match="unknown measure 'nDGC@10'"):
        evaluate({"q": {"d": 1.0}}, {"q": {"d": 1}}, ["nDGC@10"])


# ---------------------------------------------------------------------------------------------- how sure


def _scores(values: list[float], measure: str = "nDCG@10") -> dict[str, dict[str, float]]:
    return {measure: {f"q{i:03d}": v for i, v in enumerate(values)}}


def test_per_query_counts_missing_queries_as_zero():
    from inpars.evaluate import per_query

    scores = per_query({"q1": {"a": 1.0}}, {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {}}, ["RR@10"])
    assert scores == {"RR@10": {"q1": 1.0, "q2": 0.0}}


def test_holm_adjustment_by_hand():
    from inpars.evaluate import holm

    # sorted 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04); order restored
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_compare_against_a_baseline_matches_scipy():
    import numpy as np
    from scipy import stats

    from inpars.evaluate import compare

    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, 200)
    better = np.clip(base + 0.1 + rng.normal(0, 0.05, 200), 0, 1)
    same = base + rng.normal(0, 0.001, 200)
    result = compare(
        {"base": [_scores(list(base))], "better": [_scores(list(better))], "same": [_scores(list(same))]}, "base", resamples=2000
    )
    b, s = result["better"]["nDCG@10"], result["same"]["nDCG@10"]
    assert result["base"]["nDCG@10"].p_t is None and result["base"]["nDCG@10"].diff is None
    assert b.mean == pytest.approx(better.mean()) and b.diff == pytest.approx(better.mean() - base.mean())
    assert b.p_t == pytest.approx(stats.ttest_rel(better, base).pvalue)
    assert b.p_randomization < 0.001 and b.p_t_holm == pytest.approx(min(1.0, 2 * b.p_t))
    assert s.p_randomization > 0.01 and s.p_randomization_holm >= s.p_randomization
    assert b.ci_low < b.mean < b.ci_high and b.ci_high - b.ci_low < 0.1
    assert b.std is None and b.per_seed == (pytest.approx(better.mean()),)
    # The same seed gives the same p-values and intervals.
    again = compare(
        {"base": [_scores(list(base))], "better": [_scores(list(better))], "same": [_scores(list(same))]}, "base", resamples=2000
    )
    assert again == result


def test_compare_over_seeds_reports_mean_std_and_per_seed_values():
    from inpars.evaluate import compare, format_stats

    base = [0.5, 0.2, 0.8, 0.4]
    seeds = [[0.6, 0.3, 0.9, 0.5], [0.8, 0.5, 1.0, 0.7]]
    result = compare({"zero-shot": [_scores(base)], "trained": [_scores(v) for v in seeds]}, "zero-shot", resamples=500)
    trained = result["trained"]["nDCG@10"]
    assert trained.per_seed == pytest.approx((0.575, 0.75))
    assert trained.mean == pytest.approx(0.6625) and trained.std == pytest.approx(0.12374, abs=1e-4)
    assert trained.diff == pytest.approx(0.6625 - 0.475)
    assert result["zero-shot"]["nDCG@10"].std is None  # one run of the baseline
    text = format_stats(trained)
    assert text.startswith("0.6625 ± 0.1237 [") and " p=" in text
    row = trained.as_dict()
    assert set(row) == {"mean", "std", "per_seed", "ci", "diff", "p_t", "p_randomization", "p_t_holm", "p_randomization_holm"}


def test_compare_identical_systems_is_not_significant():
    from inpars.evaluate import compare

    values = _scores([0.1, 0.5, 0.9])
    result = compare({"a": [values], "b": [values]}, "a", resamples=200)
    assert result["b"]["nDCG@10"].p_t == 1.0 and result["b"]["nDCG@10"].p_randomization == 1.0
    constant = compare({"a": [_scores([0.5, 0.5])], "b": [_scores([0.5, 0.5])]}, "a", resamples=200)
    assert (constant["a"]["nDCG@10"].ci_low, constant["a"]["nDCG@10"].ci_high) == (0.5, 0.5)


def test_compare_refuses_an_unknown_baseline_and_mismatched_queries():
    from inpars.evaluate import compare

    with pytest.raises(InparsError, match="baseline 'bm26' is not one of the systems compared \\(a, b\\)"):
        compare({"a": [_scores([0.1])], "b": [_scores([0.2])]}, "bm26")
    with pytest.raises(InparsError, match="system 'b' was scored on other measures or queries than 'a'"):
        compare({"a": [_scores([0.1, 0.2])], "b": [_scores([0.2])]}, "a")
