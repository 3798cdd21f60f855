"""Cross-generator validation settings (select.judge_model, select.judge_prompt): what the judge is, what is refused,
and what enters the fingerprints."""

from __future__ import annotations

import pytest

from inpars.config import judge_generate, load_pipeline_config
from inpars.errors import InputError
from inpars.pipeline import stage_specs

RECIPE = """name: r
generate: {model: embedded:smollm2-135m, prompt: inpars, chat: true, num_docs: 50}
select: {validation: 0.2}
"""


def test_without_judge_settings_the_training_generator_judges():
    assert judge_generate(load_pipeline_config(text=RECIPE)) is None


def test_the_judge_is_generate_with_another_model_over_every_held_out_document():
    config = load_pipeline_config(text=RECIPE, overrides=["select.judge_model=embedded:gemma3-270m"])
    judge = judge_generate(config)
    assert (judge.model, judge.prompt, judge.num_docs, judge.chat) == ("embedded:gemma3-270m", "inpars", None, False)
    assert judge.max_new_tokens == config.generate.max_new_tokens and judge.backend == config.generate.backend


def test_another_prompt_keeps_the_model_and_its_chat_template():
    judge = judge_generate(load_pipeline_config(text=RECIPE, overrides=["select.judge_prompt=inpars-gbq"]))
    assert (judge.model, judge.prompt, judge.chat) == ("embedded:smollm2-135m", "inpars-gbq", True)


@pytest.mark.parametrize(
    "line", ["select: {validation: 0.2, judge_model: embedded:smollm2-135m}", "select: {validation: 0.2, judge_prompt: inpars}"]
)
def test_a_judge_that_would_write_the_training_queries_again_is_refused_at_its_line(tmp_path, line):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.replace("select: {validation: 0.2}", line))
    with pytest.raises(InputError, match=r"r.yaml:3: 'select.judge_(model|prompt)' names the model and prompt that write"):
        load_pipeline_config(recipe)


def test_a_judge_changes_the_select_fingerprint_alone_and_its_absence_changes_nothing():
    plain = stage_specs(load_pipeline_config(text=RECIPE), "data")
    judged = stage_specs(load_pipeline_config(text=RECIPE, overrides=["select.judge_model=embedded:gemma3-270m"]), "data")
    other = stage_specs(load_pipeline_config(text=RECIPE, overrides=["select.judge_prompt=inpars-gbq"]), "data")
    for name in ("generate", "filter", "negatives", "train", "retrieve"):
        assert plain[name].fingerprint == judged[name].fingerprint == other[name].fingerprint
    assert len({plain["select"].fingerprint, judged["select"].fingerprint, other["select"].fingerprint}) == 3
    assert "judge_model" not in plain["select"].config["select"] and "judge" not in plain["select"].config
