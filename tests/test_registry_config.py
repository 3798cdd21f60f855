from __future__ import annotations

import pytest

from inpars.config import GenerateConfig, InvalidValue, PipelineConfig, dump_yaml, fingerprint, identity, load_pipeline_config
from inpars.errors import InputError
from inpars.generate import generators
from inpars.generate.openai import OpenAIOptions
from inpars.registry import Registry, UnknownNameError, did_you_mean, suggest
from inpars.rerank import rerankers
from inpars.retrieve import retrievers


def test_registry_suggests_and_lists():
    reg = Registry("generator")
    for name in ("hf", "vllm", "openai"):
        reg.register(name, f"inpars.x:{name}")
    with pytest.raises(UnknownNameError, match=r"unknown generator 'vlm'; did you mean 'vllm'\? available: hf, openai, vllm"):
        reg.get("vlm")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("hf", "inpars.x:y")


def test_one_suggestion_helper_serves_every_unknown_name():
    assert did_you_mean("modle", ["model", "prompt"]) == "did you mean 'model'?"
    assert did_you_mean("zzz", ["model", "prompt"], "known keys: model, prompt") == "known keys: model, prompt"
    assert suggest("vlm", ["hf", "vllm"]) == "did you mean 'vllm'? available: hf, vllm"
    assert suggest("zzz", ["hf", "vllm"]) == "available: hf, vllm"
    reg = Registry("generator")
    reg.register("hf", "inpars.x:hf")
    with pytest.raises(UnknownNameError, match=r"^unknown generator 'zzz'; available: hf$"):
        reg.check("zzz")


def test_registered_backends_import():
    for registry in (generators, retrievers, rerankers):
        for name in registry.names():
            assert callable(registry.get(name))


def test_yaml_defaults_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: exp\ngenerate:\n  num_docs: 10\n  temperature: 0.7\nfilter:\n  top_k: 5\n")
    config = load_pipeline_config(recipe, ["generate.num_docs=20", "evaluate.measures=nDCG@10,P@5"])
    assert config.name == "exp"
    assert config.generate.num_docs == 20  # the override wins over YAML
    assert config.generate.temperature == 0.7  # YAML wins over the default
    assert config.generate.max_new_tokens == PipelineConfig().generate.max_new_tokens
    assert config.evaluate.measures == ("nDCG@10", "P@5")


def test_yaml_errors_name_file_and_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: exp\ngenerate:\n  num_dcs: 10\n")
    with pytest.raises(InputError, match=r"r.yaml:3: unknown key 'generate.num_dcs'; did you mean 'num_docs'\?"):
        load_pipeline_config(recipe)
    recipe.write_text("name: exp\ntrain:\n  learning_rate: fast\n")
    with pytest.raises(InputError, match=r"r.yaml:3: 'train.learning_rate' should be float, got 'fast'"):
        load_pipeline_config(recipe)
    recipe.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match=r"r.yaml:\d+: invalid YAML"):
        load_pipeline_config(recipe)
    with pytest.raises(InputError, match=r"override 'oops' has no '='"):
        load_pipeline_config(None, ["oops"])


def test_fingerprint_changes_with_config():
    a = PipelineConfig()
    b = load_pipeline_config(None, ["generate.seed=1"])
    assert fingerprint(a.generate) == fingerprint(PipelineConfig().generate)
    assert fingerprint(a.generate) != fingerprint(b.generate)


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (
            "generate:\n  backend: vlm\n",
            (
                "r.yaml:3: 'generate.backend' is 'vlm', an unknown generator; did you mean 'vllm'? available: hf, llamacpp, "
                "openai, vllm"
            ),
        ),
        (
            "retrieve:\n  backend: bm25\n",
            (
                "r.yaml:3: 'retrieve.backend' is 'bm25', an unknown retriever; did you mean 'bm25s'? available: bm25s, dense, "
                "pyserini"
            ),
        ),
        (
            "train:\n  reranker: monoT5\n",
            (
                "r.yaml:3: 'train.reranker' is 'monoT5', an unknown reranker; did you mean 'monot5'? available: bi-encoder, "
                "cross-encoder, flan-t5, monot5"
            ),
        ),
        (
            "filter:\n  method: median\n",
            "r.yaml:3: 'filter.method' is 'median', an unknown LM score; available: sum_log_probs, mean_log_probs, mean_probs",
        ),
        ("filter:\n  method: sum_log_probs\n  top_k: 0\n", "r.yaml:4: 'filter.top_k' is 0; it must be at least 1"),
        ("rerank:\n  top_k: 10\n  max_length: 0\n", "r.yaml:4: 'rerank.max_length' is 0; it must be at least 1"),
        *(
            (f"generate:\n  backend: openai\n  openai:{block}", message)
            for block, message in (
                ("\n    concurency: 16\n", "r.yaml:5: unknown key 'generate.openai.concurency'; did you mean 'concurrency'?"),
                ("\n    concurrency: 0\n", "r.yaml:5: 'generate.openai.concurrency' is 0; it must be at least 1"),
                ("\n    request_timeout: 0\n", "r.yaml:5: 'generate.openai.request_timeout' is 0.0; it must be above 0"),
                ("\n    retry_wait: x\n", "r.yaml:5: 'generate.openai.retry_wait' should be float, got 'x'; fix the value"),
                (" 3\n", "r.yaml:4: 'generate.openai' should be a mapping; indent its keys under it"),
            )
        ),
        (
            "generate:\n  backend: hf\n  openai:\n    concurrency: 16\n",
            "r.yaml:4: 'generate.openai' is set, but backend is 'hf'; use backend: openai, or leave the block out",
        ),
        ("generate:\n  api_base: x\n", "r.yaml:3: unknown key 'generate.api_base'; it moved to 'generate.openai.api_base'"),
    ],
)
def test_every_section_checks_its_values_as_it_is_made(tmp_path, recipe, message):
    path = tmp_path / "r.yaml"
    path.write_text("name: exp\n" + recipe)
    with pytest.raises(InputError) as caught:
        load_pipeline_config(path)
    assert str(caught.value) == f"{path.parent / message}"


def test_the_openai_block_is_built_from_yaml_with_its_checks(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("generate:\n  backend: openai\n  openai:\n    api_base: http://localhost:8000/v1\n    concurrency: 16\n")
    options = load_pipeline_config(path).generate.openai
    assert isinstance(options, OpenAIOptions)
    assert (options.api_base, options.concurrency, options.max_retries) == ("http://localhost:8000/v1", 16, 5)
    assert PipelineConfig().generate.openai == OpenAIOptions()


def test_a_block_for_another_backend_is_refused_but_its_defaults_are_not():
    with pytest.raises(InvalidValue, match="'openai' is set, but backend is 'vllm'"):
        GenerateConfig(backend="vllm", openai=OpenAIOptions(tokenizer="gpt2"))
    # Defaults, written out or not, are no block at all: a dumped config loads again.
    assert load_pipeline_config(text=dump_yaml(PipelineConfig())) == PipelineConfig()
    assert load_pipeline_config(None, ["generate.openai.concurrency=8"]).generate.backend == "hf"


def test_the_old_flat_openai_keys_point_to_their_new_place():
    for key in ("tokenizer", "api_base", "api_key_env", "concurrency", "max_retries", "retry_wait", "request_timeout"):
        moved = rf"^command line: unknown key 'generate.{key}'; it moved to 'generate.openai.{key}'$"
        with pytest.raises(InputError, match=moved):
            load_pipeline_config(None, [f"generate.{key}=1"])


def test_dotted_overrides_reach_the_openai_block():
    overrides = ["generate.backend=openai", "generate.openai.concurrency=4", "generate.openai.api_base=x"]
    config = load_pipeline_config(None, overrides)
    assert (config.generate.openai.concurrency, config.generate.openai.api_base) == (4, "x")


def test_openai_speed_settings_keep_the_generate_fingerprint_and_its_tokenizer_changes_it():
    base = load_pipeline_config(None, ["generate.backend=openai"]).generate
    speed = load_pipeline_config(
        None,
        [
            "generate.backend=openai", "generate.openai.concurrency=32", "generate.openai.api_base=http://other:8000/v1",
            "generate.openai.api_key_env=OTHER_KEY", "generate.openai.max_retries=0", "generate.openai.retry_wait=3",
            "generate.openai.request_timeout=5",
        ],
    ).generate
    tokens = load_pipeline_config(None, ["generate.backend=openai", "generate.openai.tokenizer=gpt2"]).generate
    assert fingerprint(identity(speed)) == fingerprint(identity(base))
    assert fingerprint(identity(tokens)) != fingerprint(identity(base))
    assert identity(base)["openai"] == {"tokenizer": None}
