"""One ranking for every measure (trec_eval's tie order), and measure names checked before a C backend sees them."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from inpars import io
from inpars.cli import app
from inpars.errors import InparsError
from inpars.evaluate import evaluate, parse_measures, per_query, tie_broken

runner = CliRunner()

# ---------------------------------------------------------------------------------------------- the tie rule


def test_tie_broken_orders_equal_scores_by_the_greater_document_id_first():
    ranked = tie_broken({"q": {"d1": 1.0, "d10": 1.0, "d9": 1.0, "a": 2.0, "z": 0.5}, "empty": {}})
    # Strings, not numbers: "d9" > "d10" > "d1". The empty query is dropped (a missing query scores zero).
    assert ranked == {"q": {"a": 5.0, "d9": 4.0, "d10": 3.0, "d1": 2.0, "z": 1.0}}
    # The judged backend divided by zero on a query with no document; dropped, it scores zero.
    assert per_query({"q1": {}}, {"q1": {"a": 1}}, ["Judged@10"]) == {"Judged@10": {"q1": 0.0}}


def test_the_rule_is_the_order_trec_eval_itself_uses():
    """pytrec_eval on the raw run, with each document in turn the only relevant one, finds it where the rule puts it."""
    import pytrec_eval

    rng = random.Random(7)
    ids = ["a", "b", "B", "z", "d1", "d9", "d10", "d100", "10", "9", "-1", "é", "ÿ", "Ā", "中", "😀"]
    for _ in range(40):
        docs = rng.sample(ids, rng.randint(2, len(ids)))
        run = {"q": {d: rng.choice([0.5, 1.0, 1.0, 2.0]) for d in docs}}
        ranked = tie_broken(run)["q"]
        order = sorted(ranked, key=ranked.get, reverse=True)
        for position, doc in enumerate(order, 1):
            found = pytrec_eval.RelevanceEvaluator({"q": {doc: 1}}, {"recip_rank"}).evaluate(run)["q"]["recip_rank"]
            assert found == pytest.approx(1 / position), (run, doc)


# Where trec_eval's order puts the one relevant document of each query, worked out by hand.
TIED_RUN = {
    "q1": {"d1": 1.0, "d2": 1.0, "d3": 1.0},  # d3, d2, d1: the relevant d1 is third (ascending ids would put it first)
    "q2": {"d9": 0.5, "d10": 0.5, "d100": 0.5, "x": 0.9},  # x, d9, d100, d10: d10 is fourth
    "q3": {"b": 2.0, "a": 2.0, "c": 1.0},  # b, a, c: b is first
    "q4": {"z": 1.0, "é": 1.0, "e": 1.0},  # é, z, e ("é" is U+00E9, above "z"): z is second
}
TIED_QRELS = {"q1": {"d1": 1}, "q2": {"d10": 1}, "q3": {"b": 1}, "q4": {"z": 1, "unretrieved": 0}}
POSITION = {"q1": 3, "q2": 4, "q3": 1, "q4": 2}


def test_every_measure_puts_a_tied_relevant_document_at_the_same_place():
    measures = ["nDCG@10", "nDCG@3", "P@1", "P@3", "RR@10", "RR@3", "RR", "R@2", "R@3", "AP", "AP@10", "Success@1", "Judged@1"]
    got = per_query(TIED_RUN, TIED_QRELS, measures)
    for query, p in POSITION.items():
        # One relevant document of grade 1 at position p: each measure's value follows from p alone.
        expected = {
            "nDCG@10": 1 / math.log2(p + 1),
            "nDCG@3": 1 / math.log2(p + 1) if p <= 3 else 0.0,
            "P@1": 1.0 if p == 1 else 0.0,
            "P@3": 1 / 3 if p <= 3 else 0.0,
            "RR@10": 1 / p,
            "RR@3": 1 / p if p <= 3 else 0.0,  # computed by the msmarco backend, the others by pytrec_eval
            "RR": 1 / p,
            "R@2": 1.0 if p <= 2 else 0.0,
            "R@3": 1.0 if p <= 3 else 0.0,
            "AP": 1 / p,
            "AP@10": 1 / p,
            "Success@1": 1.0 if p == 1 else 0.0,
            "Judged@1": 1.0 if p == 1 else 0.0,  # computed by the judged backend: only the relevant document is judged
        }
        for measure, value in expected.items():
            assert got[measure][query] == pytest.approx(value), (measure, query)
    # The hand-computed means, once written out: positions 3, 4, 1, 2.
    means = evaluate(TIED_RUN, TIED_QRELS, ["RR@10", "P@1", "nDCG@10"])
    assert means["RR@10"] == pytest.approx((1 / 3 + 1 / 4 + 1 + 1 / 2) / 4)
    assert means["P@1"] == pytest.approx(0.25)
    assert means["nDCG@10"] == pytest.approx((0.5 + 1 / math.log2(5) + 1 + 1 / math.log2(3)) / 4)


def test_distinct_scores_score_exactly_as_before():
    """Without ties the rule changes nothing: the numbers equal ir_measures' on the raw run, to the last bit."""
    import ir_measures

    rng = random.Random(3)
    run, qrels = {}, {}
    for q in range(40):
        docs = [f"d{q}-{i}" for i in range(30)]
        scores = rng.sample(range(-5000, 5000), len(docs))
        run[f"q{q}"] = {d: s / 97 for d, s in zip(docs, scores)}
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(docs, 6)}
    qrels["unretrieved"] = {"d-x": 1}  # judged, absent from the run: zero either way
    measures = ["nDCG@10", "RR@10", "R@100", "P@5", "AP", "Judged@10", "nDCG", "R@5", "Success@3", "Bpref"]
    got = per_query(run, qrels, measures)
    raw = {m: {} for m in measures}
    for metric in ir_measures.iter_calc([ir_measures.parse_measure(m) for m in measures], qrels, run):
        raw[str(metric.measure)][metric.query_id] = metric.value
    for measure in measures:
        assert got[measure] == {q: raw[measure].get(q, 0.0) for q in sorted(qrels)}, measure


def test_a_score_that_is_not_a_finite_number_is_refused():
    with pytest.raises(InparsError, match=r"query 'q1' document 'd2' the score nan, not a finite number"):
        per_query({"q1": {"d1": 1.0, "d2": math.nan}}, {"q1": {"d1": 1}}, ["RR@10"])


def test_negative_grades_count_as_judged_not_relevant_and_do_not_crash():
    """Raw pytrec_eval can crash the interpreter on these qrels, so they are scored in a child process."""
    run = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"x": 1.0}, "q3": {"y": 1.0}}
    negative = {"q1": {"a": -1, "c": 2, "b": 0}, "q2": {"x": -2}}
    measures = ["nDCG@10", "P@1", "AP", "RR@10", "Judged@10", "Bpref"]
    code = (
        "import json, sys; from inpars.evaluate import per_query; "
        "a = json.loads(sys.argv[1]); print(json.dumps(per_query(a['run'], a['qrels'], a['measures'])))"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, json.dumps({"run": run, "qrels": negative, "measures": measures})],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert child.returncode == 0, child.stderr
    zeroed = {"q1": {"a": 0, "c": 2, "b": 0}, "q2": {"x": 0}}
    assert json.loads(child.stdout) == per_query(run, zeroed, measures)
    assert json.loads(child.stdout)["nDCG@10"]["q1"] == pytest.approx(1 / math.log2(4))  # c, grade 2, is third of three


# ---------------------------------------------------------------------------------------------- measure names


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("P@0", "measure 'P@0': the cutoff after @ is 0; it must be a whole number from 1 to 2147483647, e.g. P@10"),
        ("nDCG@0", "measure 'nDCG@0': the cutoff after @ is 0;"),
        ("RR@0", "measure 'RR@0': the cutoff after @ is 0;"),
        ("AP@0", "measure 'AP@0': the cutoff after @ is 0;"),
        ("Success@0", "measure 'Success@0': the cutoff after @ is 0;"),
        ("Judged@0", "measure 'Judged@0': the cutoff after @ is 0;"),
        ("R@-1", "measure 'R@-1': the cutoff after @ is below 1;"),
        ("P@1.5", "measure 'P@1.5': the cutoff after @ is 1.5; it must be a whole number"),
        ("P@1e3", "measure 'P@1e3': the cutoff after @ is 1000.0; it must be a whole number"),
        ("P@True", "measure 'P@True': the cutoff after @ is True;"),
        ("P@10000000000000000000", "the cutoff after @ is 10000000000000000000; it must be a whole number from 1 to 2147483647"),
        ("P", "measure 'P': P needs a cutoff, e.g. P@10"),
        ("nDGC@10", "unknown measure 'nDGC@10' (did you mean 'nDCG'?); accepted: AP, Bpref,"),
        ("P(rel=0)@5", "measure 'P(rel=0)@5': the parameter rel is 0; it must be a whole number from 1"),
        ("P(foo=1)@5", "measure 'P(foo=1)@5': P has no parameter foo; it takes cutoff, rel, judged_only"),
        ("IPrec@1.5", "measure 'IPrec@1.5': the recall level after @ is 1.5; it must be a number from 0.0 to 1.0"),
        ("SetF(beta=0)", "measure 'SetF(beta=0)': the parameter beta is 0; it must be a positive number"),
        ("Compat(p=1.0)", "measure 'Compat(p=1.0)': the parameter p is 1.0; it must be a number between 0 and 1"),
        ("nDCG(gains={1:1.5})@10", "the parameter gains is {1: 1.5}; it must be a map of whole-number grades"),
        ("ERR@10", "measure 'ERR@10': ERR is not computed by the backends inpars uses (pytrec_eval, compat, judged, msmarco)"),
        ("Accuracy@5", "measure 'Accuracy@5': Accuracy is not computed by the backends inpars uses"),
        ("nDCG(dcg='exp-log2')@10", "no backend inpars uses (pytrec_eval, compat, judged, msmarco) computes nDCG with these"),
        ("NumRel(rel=2)", "no backend inpars uses (pytrec_eval, compat, judged, msmarco) computes NumRel with these"),
        ("P@", "measure 'P@': cannot be read ("),
        ("", "measure '': is empty; name a measure"),
    ],
)
def test_a_measure_no_backend_can_compute_is_refused_before_any_backend_sees_it(name, wanted):
    # parse_measures runs no backend, so a check that let a bad name through fails here instead of aborting pytest.
    with pytest.raises(InparsError) as caught:
        parse_measures([name])
    message = str(caught.value)
    assert wanted in message and "\n" not in message
    assert message.endswith("(e.g. nDCG@10, RR@10, R@100, P@5, AP, Judged@10; a cutoff after @ is a whole number of at least 1)")


def test_a_measure_given_twice_is_refused_and_good_names_pass():
    with pytest.raises(InparsError, match="measure 'RR@10': is given twice; name each measure once"):
        parse_measures(["RR@10", "nDCG@10", "RR@10"])
    names = ["nDCG@10", "RR@10", "R@100", "P@5", "AP", "Judged@10", "MRR@10", "IPrec@0.5", "P(rel=2)@5", "Compat(p=0.8)",
             "nDCG(gains={0: 0, 1: 1, 2: 5})@10", "RR(rel=2)@10", "SetF(beta=0.5)", "P@2147483647"]
    assert [str(m) for m in parse_measures(names)][:3] == ["nDCG@10", "RR@10", "R@100"]


# ---------------------------------------------------------------------------------------------- the command


@pytest.fixture
def files(tmp_path):
    run, qrels = tmp_path / "run.trec", tmp_path / "qrels.tsv"
    io.write_trec_run(run, {"q1": {"d1": 1.0, "d2": 1.0}, "q2": {"d2": 2.0, "d1": 1.0}})
    io.write_qrels_tsv(qrels, {"q1": {"d1": 1}, "q2": {"d2": 1}})
    return run, qrels


def test_evaluate_p_at_0_exits_2_with_one_line_in_a_child_process(files):
    """The real entry point in a child process: before the check, pytrec_eval aborted it with exit 134."""
    run, qrels = files
    child = subprocess.run(
        [sys.executable, "-m", "inpars.cli", "evaluate", str(run), "--qrels", str(qrels), "-m", "P@0"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert child.returncode == 2, (child.returncode, child.stdout, child.stderr)
    lines = (child.stdout + child.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: --measures: 'measures' is P@0; measure 'P@0': the cutoff after @ is 0;"
    ), lines


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (
            ["-m", "P@0"],
            ("error: --measures: 'measures' is P@0; measure 'P@0': the cutoff after @ is 0; it must be a whole number from 1 "
            "to 2147483647"),
        ),
        (
            ["-m", "nDCG@10", "-m", "RR@0"],
            "error: --measures: 'measures' is ['nDCG@10', 'RR@0']; measure 'RR@0': the cutoff after @ is 0;",
        ),
        (
            ["-m", "ERR@10"],
            "error: --measures: 'measures' is ERR@10; measure 'ERR@10': ERR is not computed by the backends inpars uses",
        ),
        (["--confidence", "nan"], "error: --confidence: 'confidence' is nan; it must be a finite number"),
        (["--confidence", "inf"], "error: --confidence: 'confidence' is inf; it must be a finite number"),
        (["--confidence", "1.0"], "error: --confidence: 'confidence' is 1.0; it must be above 0 and at most 0.999"),
        (["--resamples", "5"], "error: --resamples: 'resamples' is 5; it must be at least 100"),
        (["--resamples", "-1"], "error: --resamples: 'resamples' is -1; it must be at least 100"),
    ],
)
def test_evaluate_refuses_a_bad_measure_or_setting_in_one_line(files, args, wanted):
    run, qrels = files
    measures = [a for a, flag in zip(args[1:], args) if flag == "-m"]
    if measures:
        with pytest.raises(InparsError):  # first: a bad name that reached pytrec_eval in-process could abort pytest
            parse_measures(measures)
    result = runner.invoke(app, ["evaluate", str(run), "--qrels", str(qrels), *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(wanted), result.output


def test_evaluate_scores_a_tied_run_in_trec_eval_order(files, tmp_path):
    run, qrels = files
    out = tmp_path / "metrics.json"
    result = runner.invoke(app, ["evaluate", str(run), "--qrels", str(qrels), "-m", "RR@10", "-m", "P@1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    # q1 ties d1 and d2: d2 comes first, so the relevant d1 is second (RR 1/2, P@1 0); q2's d2 is first.
    assert io.read_json(out) == {str(run): {"RR@10": 0.75, "P@1": 0.5}}
