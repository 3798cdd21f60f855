"""Query generation from GGUF files with llama-cpp-python (CPU or GPU, quantised models).

Requests run one after another; llama.cpp keeps the tokens it evaluated last and reuses the longest common
start, so the shared few-shot prefix is computed once and only each document is evaluated. Decoding stops
at a newline (``stop=["\\n"]``) and ``logprobs=1`` gives each chosen token's log-probability. Sampling
matches the other backends: temperature and top-p only (top-k, min-p and repetition penalty switched off).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from inpars.errors import InparsError, require
from inpars.generate.base import Generation, GenerationRequest, from_completion_choice
from inpars.models import SMOLLM2, smollm2_gguf

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = 2048
"""llama.cpp keeps logits for every context position (needed for log-probs), so the context is not the model's maximum."""


def gguf_path(model: str) -> Path:
    if model == SMOLLM2:
        return smollm2_gguf()
    path = Path(model).expanduser()
    if path.suffix != ".gguf":
        raise InparsError(f"the llamacpp backend loads GGUF files; '{model}' is not a .gguf path (or use {SMOLLM2})")
    if not path.is_file():
        raise InparsError(f"GGUF file not found: {path}")
    return path


class LlamaCppGenerator:
    name = "llamacpp"

    def __init__(self, model: str, seed: int = 0, context_length: int | None = None) -> None:
        llama_cpp = require("llama_cpp", "llamacpp")
        self.model_name = model
        n_ctx = context_length or DEFAULT_CONTEXT
        self.llm = llama_cpp.Llama(model_path=str(gguf_path(model)), n_ctx=n_ctx, seed=seed, logits_all=True, verbose=False)
        self.max_length = int(self.llm.n_ctx())

    @classmethod
    def from_config(cls, config) -> LlamaCppGenerator:
        return cls(config.model, seed=config.seed, context_length=config.context_length)

    def _tokens(self, text: str, bos: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=False) if text or bos else []

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self._tokens(text, bos=False)
        if len(ids) <= max_tokens:
            return text
        return self.llm.detokenize(ids[:max_tokens]).decode("utf-8", errors="ignore")

    def prompt_length(self, request: GenerationRequest) -> int:
        return len(self._tokens(request.prefix, bos=True)) + len(self._tokens(request.suffix, bos=False))

    def generate(
        self, requests: Sequence[GenerationRequest], max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[Generation]:
        out = []
        for request in requests:
            prompt = self._tokens(request.prefix, bos=True) + self._tokens(request.suffix, bos=False)
            completion = self.llm.create_completion(
                prompt=prompt, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=0, min_p=0.0,
                repeat_penalty=1.0, stop=["\n"], logprobs=1, seed=request.seed,
            )
            out.append(from_completion_choice(completion["choices"][0], f"llama.cpp ({self.model_name})"))
        return out
