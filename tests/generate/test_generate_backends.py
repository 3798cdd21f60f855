"""Every registered generator backend through one contract, plus what is particular to each."""

from __future__ import annotations

import importlib.util
import json
import logging
import math

import pytest
from generate_helpers import assert_same, make_docs

from inpars.config import GenerateConfig
from inpars.errors import InparsError, MissingDependencyError
from inpars.generate import GenerationRequest, generate_queries, generators
from inpars.generate.openai import OpenAIOptions
from inpars.prompt import load_prompt

SECRET = "sk-test-0123456789abcdef"


def _config(name: str, tmp_path, completion_server=None, random_lm=None) -> GenerateConfig:
    if name == "hf":
        return GenerateConfig(backend="hf", model=str(random_lm), device="cpu", max_new_tokens=8, batch_size=4)
    if name == "openai":
        return GenerateConfig(
            backend="openai", model="served-model", max_new_tokens=8, batch_size=4,
            openai=OpenAIOptions(api_base=completion_server.url, retry_wait=0.0, concurrency=3),
        )
    if name == "llamacpp":
        return GenerateConfig(backend="llamacpp", model="embedded:smollm2-135m", max_new_tokens=8, batch_size=4)
    raise AssertionError(f"no contract set-up for backend '{name}': add one")


_NEEDS = {"llamacpp": ("llama_cpp", "llama-cpp-python is not installed: 'make test-llamacpp' builds it and runs this")}
_MARKS = {"llamacpp": pytest.mark.llamacpp}
"""Backends whose engine only a tier of its own installs: the default run deselects them by marker."""
_ELSEWHERE = {
    "vllm": "test_vllm_backend.py checks this contract for vllm with one engine in a process of its own ('make test-vllm')"
}


@pytest.fixture(params=[pytest.param(name, marks=_MARKS.get(name, ())) for name in generators.names()])
def backend(request, tmp_path, completion_server, random_lm, monkeypatch):
    name = request.param
    if name in _ELSEWHERE:
        pytest.skip(_ELSEWHERE[name])
    if name in _NEEDS and importlib.util.find_spec(_NEEDS[name][0]) is None:
        pytest.skip(_NEEDS[name][1])
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    config = _config(name, tmp_path, completion_server, random_lm)
    return config, generators.get(name).from_config(config)


def test_every_backend_keeps_the_contract(backend, tmp_path, caplog):
    config, generator = backend
    prompt = load_prompt("inpars")
    docs = make_docs(6)
    requests = [
        GenerationRequest(prompt.prefix, prompt.suffix(generator.truncate(d.text, 64)), seed=i) for i, d in enumerate(docs)
    ]
    first = generator.generate(requests, max_new_tokens=8)
    assert len(first) == len(requests)
    for out in first:
        assert "\n" not in out.text and out.text == out.text.strip()
        assert all(isinstance(lp, float) and lp <= 0 and math.isfinite(lp) for lp in out.log_probs)
        assert 0 < len(out.log_probs) <= 8 or not out.text
        assert isinstance(out.finished, bool)
    # Greedy decoding is repeatable, and a request's answer does not depend on its batch (up to float rounding).
    assert_same(generator.generate(requests, max_new_tokens=8), first)
    assert_same(generator.generate(requests[2:3], max_new_tokens=8), first[2:3])
    long_text = " ".join(["water"] * 300)
    assert len(generator.truncate(long_text, 10)) < len(long_text)
    length = generator.prompt_length(requests[0])
    assert length is None or length > 0

    with caplog.at_level(logging.DEBUG):
        summary = generate_queries(docs, config, tmp_path / "q.jsonl", generator=generator)
    assert summary.generated == len(docs) and summary.documents == len(docs)
    rows = [json.loads(line) for line in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [r["doc_id"] for r in rows] == sorted(d.doc_id for d in docs)
    for row in rows:
        assert set(row) >= {"query_id", "doc_id", "text", "log_probs", "prompt", "model", "finished"}
        assert row["prompt"] == "inpars" and row["model"] == config.model
    # The API key (set for every backend) never reaches an output or a log.
    for path in tmp_path.iterdir():
        assert SECRET not in path.read_text()
    assert SECRET not in caplog.text


# ---------------------------------------------------------------------------------------------- openai


def _openai(completion_server, context_length=None, **overrides):
    from inpars.generate.openai import OpenAIGenerator

    settings = {"api_base": completion_server.url, "retry_wait": 0.0, "max_retries": 3}
    settings.update(overrides)
    return OpenAIGenerator("served-model", OpenAIOptions(**settings), context_length=context_length)


def test_openai_sends_the_request_the_servers_expect(completion_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    out = _openai(completion_server).generate(
        [GenerationRequest("Intro\n", "Document: green river house road\nQuery:", seed=7)], max_new_tokens=10, temperature=0.7,
        top_p=0.9,
    )
    assert out[0].text == "about green river house"
    assert out[0].log_probs == pytest.approx((-0.1, -0.2, -0.3, -0.4))  # the newline token is not part of the query
    assert out[0].finished
    body = completion_server.bodies[-1]
    assert body["prompt"] == "Intro\nDocument: green river house road\nQuery:"
    assert body["stop"] == ["\n"] and body["logprobs"] == 1 and body["seed"] == 7
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (10, 0.7, 0.9)
    assert completion_server.authorizations[-1] == f"Bearer {SECRET}"


def test_openai_marks_a_completion_cut_by_max_tokens(completion_server):
    out = _openai(completion_server).generate([GenerationRequest("", "Document: green river house road")], max_new_tokens=2)
    assert out[0].text == "about green" and not out[0].finished and len(out[0].log_probs) == 2


def test_openai_retries_429_and_5xx_then_succeeds(completion_server, caplog):
    completion_server.fail = [429, 500, 503]
    with caplog.at_level(logging.WARNING):
        out = _openai(completion_server).generate([GenerationRequest("", "Document: cold water")])
    assert out[0].text == "about cold water"
    assert len(completion_server.bodies) == 4
    assert "retry 3 of 3" in caplog.text


def test_openai_gives_up_after_max_retries_without_showing_the_key(completion_server, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    completion_server.fail = [500] * 10
    with caplog.at_level(logging.DEBUG), pytest.raises(InparsError, match="failed 3 times, last: HTTP 500") as err:
        _openai(completion_server, max_retries=2).generate([GenerationRequest("", "Document: cold water")])
    # The server echoes the Authorization header in its error body; the message masks the key.
    assert "Bearer ***" in str(err.value) and SECRET not in str(err.value)
    assert SECRET not in caplog.text


def test_openai_retries_a_200_answer_that_is_an_html_page(completion_server, caplog):
    completion_server.html = 2
    with caplog.at_level(logging.WARNING):
        out = _openai(completion_server).generate([GenerationRequest("", "Document: cold water")])
    assert out[0].text == "about cold water" and len(completion_server.bodies) == 3
    assert "HTTP 200 with a body that is not JSON (text/html)" in caplog.text


def test_openai_gives_up_on_html_pages_in_one_line_with_the_status_and_the_body(completion_server):
    completion_server.html = 10
    with pytest.raises(InparsError) as err:
        _openai(completion_server, max_retries=2).generate([GenerationRequest("", "Document: cold water")])
    message = str(err.value)
    assert "\n" not in message and len(completion_server.bodies) == 3
    assert message.startswith(
        f"{completion_server.url}/completions failed 3 times, last: HTTP 200 with a body that is not JSON (text/html): "
        "'<!DOCTYPE html><html><head><title>502 Bad"
    )


def test_a_failed_rerun_leaves_the_finished_output_and_its_meta_alone(completion_server, tmp_path):
    """A rerun with other settings that fails must not touch what the first run finished."""
    from dataclasses import replace

    from inpars.generate.stage import meta_path

    config = _config("openai", tmp_path, completion_server)
    config = replace(config, openai=replace(config.openai, max_retries=0, concurrency=1), batch_size=2)
    out = tmp_path / "q.jsonl"
    docs = make_docs(6)
    generate_queries(docs, config, out)
    finished = {path.name: path.read_bytes() for path in (out, meta_path(out))}
    completion_server.fail = [200, 200, 500]  # the second run gets one batch done, then the server fails
    with pytest.raises(InparsError, match="failed 1 times, last: HTTP 500"):
        generate_queries(docs, replace(config, max_new_tokens=3), out)
    assert {path.name: path.read_bytes() for path in (out, meta_path(out))} == finished
    # The first command, run again, finds its output complete and does nothing.
    summary = generate_queries(docs, config, out)
    assert summary.resumed == summary.generated == 6 and out.read_bytes() == finished["q.jsonl"]
    # So does it with other connection settings (generate.openai's runtime_only fields).
    faster = replace(config, openai=replace(config.openai, concurrency=4, max_retries=2, request_timeout=30.0))
    assert generate_queries(docs, faster, out).resumed == 6 and out.read_bytes() == finished["q.jsonl"]


def test_openai_does_not_retry_a_bad_request(completion_server):
    completion_server.fail = [400]
    with pytest.raises(InparsError, match="rejected the request \\(HTTP 400"):
        _openai(completion_server).generate([GenerationRequest("", "Document: cold water")])
    assert len(completion_server.bodies) == 1


def test_openai_names_the_key_variable_when_refused(completion_server):
    completion_server.fail = [401]
    with pytest.raises(InparsError, match="check the API key in \\$MY_KEY"):
        _openai(completion_server, api_key_env="MY_KEY").generate([GenerationRequest("", "Document: x")])


def test_openai_retries_a_refused_connection_then_gives_up():
    from inpars.generate.openai import OpenAIGenerator

    generator = OpenAIGenerator("m", OpenAIOptions(api_base="http://127.0.0.1:9/v1", retry_wait=0.0, max_retries=1))
    with pytest.raises(InparsError, match="failed 2 times, last: ConnectError"):
        generator.generate([GenerationRequest("", "Document: x")])


def test_openai_without_a_key_sends_no_authorization(completion_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    _openai(completion_server).generate([GenerationRequest("", "Document: x")])
    assert completion_server.authorizations == [None]


def test_openai_requires_log_probs(completion_server, monkeypatch):
    def no_logprobs(body):
        return {"choices": [{"text": "q", "logprobs": None, "finish_reason": "stop"}]}

    monkeypatch.setattr(completion_server, "complete", no_logprobs)
    with pytest.raises(InparsError, match="returned no token log-probabilities"):
        _openai(completion_server).generate([GenerationRequest("", "Document: x")])


def test_openai_truncates_by_words_without_a_tokenizer_and_by_tokens_with_one(completion_server, random_lm):
    assert _openai(completion_server).truncate("one two three four", 2) == "one two"
    assert _openai(completion_server).prompt_length(GenerationRequest("a", "b")) is None
    with_tokenizer = _openai(completion_server, tokenizer=str(random_lm), context_length=100)
    assert with_tokenizer.truncate("water fire stone river", 2) == "water fire"
    assert with_tokenizer.prompt_length(GenerationRequest("water fire", "stone")) == 3


# ---------------------------------------------------------------------------------------------- missing engines


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_missing_names_the_extra():
    from inpars.generate.vllm import VLLMGenerator

    with pytest.raises(MissingDependencyError, match='pip install "inpars\\[vllm\\]"'):
        VLLMGenerator("some/model")


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is not None, reason="llama-cpp-python is installed")
def test_llamacpp_missing_names_the_extra(monkeypatch):
    from inpars.generate.llamacpp import LlamaCppGenerator

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)  # the backend sets it before importing llama_cpp; undone after
    with pytest.raises(MissingDependencyError, match='pip install "inpars\\[llamacpp\\]"'):
        LlamaCppGenerator("model.gguf")


def test_llamacpp_places_the_model_where_the_device_and_the_build_allow():
    from inpars.generate.llamacpp import placement

    assert placement("cpu", gpu_offload=True) == {"n_gpu_layers": 0}
    assert placement("auto", gpu_offload=False) == {"n_gpu_layers": 0}
    assert placement("auto", gpu_offload=True) == placement("cuda", gpu_offload=True) == {"n_gpu_layers": -1}
    assert placement("cuda:1", gpu_offload=True) == {"n_gpu_layers": -1, "split_mode": 0, "main_gpu": 1}
    with pytest.raises(InparsError, match="device is 'cuda', but this llama-cpp-python was built without GPU offload"):
        placement("cuda", gpu_offload=False)
    with pytest.raises(InparsError, match=r"'device' is 'gpu', not a device inpars can use; did you mean 'cuda'\?"):
        placement("gpu", gpu_offload=True)


def test_llamacpp_wants_a_gguf_file(tmp_path):
    from inpars.generate.llamacpp import gguf_path

    with pytest.raises(InparsError, match="loads GGUF files; 'some/model' is not a .gguf path"):
        gguf_path("some/model")
    with pytest.raises(InparsError, match="GGUF file not found"):
        gguf_path(str(tmp_path / "absent.gguf"))


def test_unknown_backend_suggests_the_closest():
    with pytest.raises(
        InparsError, match="unknown generator 'vlm'; did you mean 'vllm'\\? available: hf, llamacpp, openai, vllm"
    ):
        generators.get("vlm")
