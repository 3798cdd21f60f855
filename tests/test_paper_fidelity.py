"""The paper recipes do what the InPars reference code does: ftfy clean-up, short queries dropped, the v2 prompt."""

from __future__ import annotations

from importlib import resources

import pytest

from inpars import io
from inpars.config import FilterConfig, load_pipeline_config
from inpars.data import Dataset, Doc, Query, SyntheticQuery
from inpars.filter import filter_queries
from inpars.filter.base import resolved_steps
from inpars.pipeline import run_pipeline

PAPER_RECIPES = ("inpars-v1", "inpars-v2", "inpars-v2-gpu", "inpars-v1-promptagator", "inpars-v2-promptagator")


def _recipe(name: str):
    text = resources.files("inpars.recipes").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return load_pipeline_config(text=text)


@pytest.mark.parametrize("name", PAPER_RECIPES)
def test_paper_recipes_clean_text_and_drop_short_queries_first(name):
    config = _recipe(name)
    assert config.fix_text is True
    steps = resolved_steps(config.filter)
    assert [s.name for s in steps[:2]] == ["empty", "min_length"]
    assert steps[1].min_tokens == 3 and steps[1].min_words is None and steps[1].tokenizer is None
    assert steps[2].name in ("lm_score", "reranker") and steps[2].top_k == 10000


def test_inpars_v2_generates_with_the_gbq_prompt_and_v1_with_the_vanilla_one():
    assert _recipe("inpars-v2").generate.prompt == "published:inpars-gbq"
    assert _recipe("inpars-v2-gpu").generate.prompt == "published:inpars-gbq"
    assert _recipe("inpars-v1").generate.prompt == "published:inpars"
    assert not _recipe("demo").fix_text  # recipes of inpars' own stay as they were


@pytest.mark.parametrize("name", ["inpars-v1-promptagator", "inpars-v2-promptagator"])
def test_promptagator_recipes_take_the_published_examples_reordered_per_document(name):
    generate = _recipe(name).generate
    assert generate.fewshot_source == "published" and generate.fewshot_shuffle is True
    assert generate.fewshot_revision == "056e6ab"
    # No sha256 of the published files was found: the recipe states that it has none, and says why.
    assert generate.fewshot_sha256 is None
    text = resources.files("inpars.recipes").joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    assert "fewshot_sha256: null" in text and "UNVERIFIED" in text
    for other in ("inpars-v1", "inpars-v2", "demo"):
        assert _recipe(other).generate.fewshot_source == "dataset" and not _recipe(other).generate.fewshot_shuffle


def test_fewer_than_three_generated_tokens_are_dropped_before_the_score_filter():
    queries = [
        SyntheticQuery("a", "d1", "what", (-0.01,)),
        SyntheticQuery("b", "d2", "what is", (-0.01, -0.02)),
        SyntheticQuery("c", "d3", "what is x", (-0.5, -0.5, -0.5)),
        SyntheticQuery("d", "d4", "what is y here", (-0.9, -0.9, -0.9, -0.9)),
    ]
    config = FilterConfig(
        steps=({"name": "min_length", "min_tokens": 3}, {"name": "lm_score", "method": "mean_log_probs", "top_k": 1})
    )
    result = filter_queries(queries, config)
    # the two short queries have the best mean log-probs; without the step they would win
    assert [q.query_id for q in result.kept] == ["c"]
    steps = {d.query.query_id: (d.step, d.reason) for d in result.dropped}
    assert steps["a"] == steps["b"] == ("min_length", "too short") and steps["d"][0] == "lm_score"


MOJIBAKE = Dataset(
    name="mojibake",
    docs={
        "d1": Doc("d1", "The cafÃ© opens at nine and serves crÃ¨me brÃ»lÃ©e.", "CafÃ© hours"),
        "d2": Doc("d2", "Bridges need inspections every year.", "Bridges"),
        "d3": Doc("d3", "Roofs are replaced every thirty years.", "Roofs"),
    },
    queries={"q1": Query("q1", "cafÃ© crème brûlée"), "q2": Query("q2", "bridge inspections")},
    qrels={"q1": {"d1": 1}, "q2": {"d2": 1}},
)


def test_fixed_text_repairs_documents_titles_and_queries():
    fixed = MOJIBAKE.with_fixed_text()
    assert fixed.docs["d1"].text == "The café opens at nine and serves crème brûlée."
    assert fixed.docs["d1"].title == "Café hours"
    assert fixed.queries["q1"].text == "café crème brûlée"
    assert fixed.docs["d2"] == MOJIBAKE.docs["d2"] and fixed.qrels == MOJIBAKE.qrels


def test_the_pipeline_cleans_the_dataset_when_the_recipe_says_so(tmp_path):
    def top_of_q1(fix: bool) -> dict[str, float]:
        recipe = f"name: clean-{fix}\nfix_text: {str(fix).lower()}\nretrieve: {{top_k: 3}}\nevaluate: {{measures: [nDCG@10]}}\n"
        config = load_pipeline_config(text=recipe, overrides=[f"output_dir={tmp_path}"])
        run_pipeline(config, dataset=MOJIBAKE, rerank=False)
        return io.read_trec_run(tmp_path / f"clean-{fix}" / "retrieve" / "run.trec").get("q1", {})

    # Repaired, the query's words are the document's; broken, BM25 sees other tokens on each side.
    fixed = top_of_q1(True)
    assert max(fixed, key=fixed.get) == "d1" and fixed["d1"] > 0
    assert fixed["d1"] > 2 * top_of_q1(False).get("d1", 0.0)
