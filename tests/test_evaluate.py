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
