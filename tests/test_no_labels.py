"""Collections without test judgements: documents only, or queries without qrels; and the leakage check."""

from __future__ import annotations

import dataclasses
import json

import pytest

from inpars.config import load_pipeline_config
from inpars.errors import InparsError
from inpars.leakage import find_leakage, normalise
from inpars.pipeline import run_pipeline, stage_specs

RECIPE = """
name: nolabels
generate: {max_new_tokens: 24, batch_size: 8}
filter: {method: mean_log_probs}
negatives: {depth: 10, num_negatives: 1}
train: {epochs: 1, batch_size: 8, learning_rate: 1.0e-4}
retrieve: {top_k: 20}
rerank: {top_k: 5, batch_size: 32}
select: {validation: 0.25}
"""


def test_the_stages_of_a_collection_without_judgements_or_queries():
    config = load_pipeline_config(text=RECIPE)
    every = ["generate", "filter", "negatives", "train", "retrieve", "select", "rerank", "evaluate"]
    assert list(stage_specs(config, "fp")) == every
    assert list(stage_specs(config, "fp", test="unjudged")) == [
        "generate", "filter", "negatives", "train", "retrieve", "select", "rerank",
    ]
    assert list(stage_specs(config, "fp", test="none")) == ["generate", "filter", "negatives", "train", "select"]
    # The select stage searches with the same first stage whether or not the run has test queries.
    assert stage_specs(config, "fp", test="none")["select"] == stage_specs(config, "fp")["select"]


@pytest.mark.parametrize(
    ("overrides", "rerank", "wanted"),
    [
        (["select.validation=0"], True, "has documents only (no queries): such a run is judged on synthetic queries held out"),
        ([], False, "has documents only (no queries): a run that trains nothing has nothing to do"),
    ],
)
def test_a_documents_only_run_with_nothing_to_report_is_refused(tmp_path, faq_slice, overrides, rerank, wanted):
    docs_only = dataclasses.replace(faq_slice, queries={}, qrels={}, origin={})
    config = load_pipeline_config(text=RECIPE, overrides=[f"output_dir={tmp_path}", *overrides])
    with pytest.raises(InparsError) as caught:
        run_pipeline(config, dataset=docs_only, rerank=rerank)
    assert wanted in str(caught.value)
    assert not (tmp_path / "nolabels" / "generate").exists()


@pytest.mark.slow
def test_documents_only_trains_and_reports_the_held_out_scores(tmp_path, faq_slice):
    docs_only = dataclasses.replace(faq_slice, queries={}, qrels={}, origin={})
    config = load_pipeline_config(text=RECIPE, overrides=[f"output_dir={tmp_path}"])
    result = run_pipeline(config, dataset=docs_only)
    assert [s.name for s in result.stages] == ["generate", "filter", "negatives", "train", "select"]
    assert result.judged_on == "select"
    metrics = json.loads((tmp_path / "nolabels" / "metrics.json").read_text())
    assert metrics["judged_on"].startswith("synthetic queries held out of training")
    assert {"bm25", "cross-encoder", "selected"} <= set(metrics["systems"])
    selection = json.loads((tmp_path / "nolabels" / "select" / "selection.json").read_text())
    assert metrics["queries"] == selection["queries"] > 0
    for system, scores in metrics["systems"].items():
        low, high = scores["nDCG@10"]["ci"]
        assert low <= scores["nDCG@10"]["mean"] <= high, system
    # The chosen system's held-out score is the one the selection table gives it.
    chosen = (selection["source"], selection["bm25_weight"])
    best = [row for row in selection["candidates"] if (row["source"], row["bm25_weight"]) == chosen]
    assert metrics["systems"]["selected"]["nDCG@10"]["mean"] == pytest.approx(best[0]["nDCG@10"])
    assert not (tmp_path / "nolabels" / "retrieve").exists() and "leakage" not in metrics

    # The same collection with queries but no judgements: the queries are reranked, nothing is evaluated.
    unjudged = dataclasses.replace(faq_slice, qrels={}, origin={})
    again = run_pipeline(dataclasses.replace(config, name="unjudged"), dataset=unjudged)
    assert [s.name for s in again.stages][-3:] == ["retrieve", "select", "rerank"]
    assert (tmp_path / "unjudged" / "rerank" / "run.trec").is_file()
    assert again.judged_on == "select"


def test_leakage_counts_duplicates_and_near_duplicates_once_each():
    test = {"t1": "How long does a building permit take?", "t2": "what is a-skatt", "t3": "fence height rules", "t4": ""}
    synthetic = [
        ("s1", "how long does a BUILDING permit take"),  # the same text once normalised
        ("s2", "what is a skatt for contractors"),  # shares 'what is a' and 'is a skatt' with t2: Jaccard 2/4
        ("s3", "fence height rules in sweden"),  # 'fence height rules' is 1 of 3 n-grams: Jaccard 1/3
        ("s4", "how long does a building permit take?"),  # t1 again: counted once
    ]
    found = find_leakage(test, synthetic, near=0.3)
    assert (found.duplicates, found.near_duplicates, found.synthetic_queries) == (1, 2, 4)
    assert found.examples[0]["test_query"] == "t1" and found.examples[0]["synthetic_query"] == "s1"
    assert (find_leakage(test, synthetic).duplicates, find_leakage(test, synthetic).near_duplicates) == (1, 1)
    strict = find_leakage(test, synthetic, near=0.6)
    assert (strict.duplicates, strict.near_duplicates) == (1, 0)
    assert strict.share == pytest.approx(1 / 4)
    assert normalise("  Ｗhat’s  A-SKATT? ") == "what s a skatt"
