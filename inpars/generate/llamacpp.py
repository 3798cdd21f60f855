"""Query generation from GGUF files with llama-cpp-python (CPU or GPU, quantised models).

Requests run one after another; llama.cpp keeps the tokens it evaluated last, so the shared few-shot prefix is
computed once and only each document is evaluated. Decoding stops at the first token whose text holds a newline, or at
an end-of-generation token, and each kept token's log-probability comes from the logits it was drawn from (the
model's distribution, before temperature). Sampling matches the other backends: temperature, then top-p, then a draw
seeded per request (llama-cpp-python's own chain applies top-p before temperature, and top-k and min-p by default).

The decoding loop is ours, over llama.cpp's sampler API, rather than ``create_completion``, for two reasons, both
measured on SmolLM2-135M Q4_1:

- A query must not depend on the requests before it. llama.cpp computes a batch of one token by another path than a
  batch of several (the logits differ by up to 0.45), and ``create_completion`` re-evaluates the last prompt token
  alone when the previous request had the same prompt (a second query of one document, a duplicate document), so
  that request got other queries. Here every prompt token is evaluated in a batch of at least two.
- Log-probabilities through ``create_completion(logprobs=...)`` need logits kept for every position of the context
  (``logits_all``: context x vocabulary floats, 400 MB at 2048 x 49152) and sort the whole vocabulary in Python for
  every token: 8 documents took 17.8 s that way and 7.1 s this way (one thread), with the same queries.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from inpars.errors import InparsError, require
from inpars.generate.base import CHAT_SLOT, Generation, GenerationRequest, kept_tokens, split_chat
from inpars.models import GGUF_GENERATORS, check_device, embedded_gguf
from inpars.threads import WAIT_POLICY, usable_cpus

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = 2048
"""llama.cpp allocates the key-value cache for the whole context up front, so the context is not the model's maximum:
an InPars prompt (a few examples and one truncated document) fits well within this."""
PROMPT_BATCH = 512
"""Prompt tokens per llama.cpp batch (at most the context), physical batch alike, so that the batches this backend cuts
are the ones computed."""


def default_threads() -> int:
    """``OMP_NUM_THREADS`` where the environment sets it (as torch takes it), else the cores this process may use
    (affinity, SLURM, cgroup quota); llama-cpp-python's own default counts every core of the machine."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return usable_cpus()


def placement(device: str, gpu_offload: bool) -> dict[str, int]:
    """The ``Llama`` arguments that put the model on ``device``: every layer on the GPU (CUDA, or Metal for ``mps``)
    where one is asked for and llama.cpp was built with one, none on ``cpu``; ``auto`` takes the GPU where the build has
    one. ``cuda:N`` keeps the whole model on GPU N."""
    check_device(device)
    if device == "cpu" or (device == "auto" and not gpu_offload):
        return {"n_gpu_layers": 0}
    if not gpu_offload:
        raise InparsError(
            f"generate.device is '{device}', but this llama-cpp-python was built without GPU offload; rebuild it with "
            'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir --no-binary llama-cpp-python '
            "llama-cpp-python (-DGGML_METAL=on on a Mac), or use device cpu"
        )
    if device.startswith("cuda:"):
        return {"n_gpu_layers": -1, "split_mode": 0, "main_gpu": int(device.split(":", 1)[1])}  # 0: LLAMA_SPLIT_MODE_NONE
    return {"n_gpu_layers": -1}


def gguf_path(model: str) -> Path:
    embedded = embedded_gguf(model)
    if embedded is not None:
        return embedded
    path = Path(model).expanduser()
    if path.suffix != ".gguf":
        raise InparsError(
            f"the llamacpp backend loads GGUF files; '{model}' is not a .gguf path (or use {' or '.join(GGUF_GENERATORS)})"
        )
    if not path.is_file():
        raise InparsError(f"GGUF file not found: {path}")
    return path


class LlamaCppGenerator:
    name = "llamacpp"

    def __init__(
        self, model: str, context_length: int | None = None, device: str = "auto", threads: int | None = None
    ) -> None:
        """``device``: see :func:`placement`; ``threads``: CPU threads for llama.cpp (None: :func:`default_threads`).
        Sampling is seeded per request (``GenerationRequest.seed``)."""
        # llama.cpp's threads meet at an OpenMP barrier after every operation; spinning there beside another busy
        # process made it 5 times slower on 2 cores (inpars.threads says why). OpenMP reads the policy when it loads:
        # here, unless torch was imported first (its wheel carries the same runtime, which llama.cpp then shares).
        os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
        llama_cpp = require("llama_cpp", "llamacpp")
        import numpy

        self._llama_cpp, self._numpy = llama_cpp, numpy
        self.model_name = model
        path = gguf_path(model)
        threads = threads or default_threads()
        where = placement(device, bool(llama_cpp.llama_supports_gpu_offload()))
        self.llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=context_length or DEFAULT_CONTEXT, n_batch=PROMPT_BATCH, n_ubatch=PROMPT_BATCH,
            n_threads=threads, n_threads_batch=threads, verbose=False, **where,
        )
        self.max_length = int(self.llm.n_ctx())
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self._n_vocab = int(self.llm.n_vocab())
        self._evaluated: list[int] = []
        """The prompt whose tokens llama.cpp holds, each evaluated in a batch of several (generated ones are not)."""
        logger.info(
            "llama.cpp: %s (context %d, %d threads, %s)", path.name, self.max_length, threads,
            "on the GPU" if where["n_gpu_layers"] else "on the CPU",
        )

    @classmethod
    def from_config(cls, config) -> LlamaCppGenerator:
        return cls(config.model, context_length=config.context_length, device=config.device)

    def _tokens(self, text: str, bos: bool) -> list[int]:
        # special: the text of a control token (a chat template's turn markers) is that token, as transformers reads it
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=True) if text or bos else []

    def chat_frame(self) -> tuple[str, str]:
        """The GGUF's chat template around one user turn (``tokenizer.chat_template`` in its metadata)."""
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise InparsError(
                f"generate.chat is true, but {self.model_name} has no chat template in its GGUF metadata (a base model, "
                "not instruction-tuned); set generate.chat: false or use an instruction-tuned model"
            )
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        bos_id, eos_id = self.llm.token_bos(), self.llm.token_eos()
        bos, eos = (self.llm.detokenize([i], special=True).decode("utf-8", errors="ignore") for i in (bos_id, eos_id))
        formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        rendered = formatter(messages=[{"role": "user", "content": CHAT_SLOT}]).prompt
        adds_bos = self._tokens("a", bos=True)[:1] == [bos_id]
        return split_chat(rendered, bos if adds_bos else None, self.model_name)

    def _prompt(self, request: GenerationRequest) -> list[int]:
        return self._tokens(request.prefix, bos=True) + self._tokens(request.suffix, bos=False)

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self._tokens(text, bos=False)
        if len(ids) <= max_tokens:
            return text
        return self.llm.detokenize(ids[:max_tokens]).decode("utf-8", errors="ignore")

    def prompt_length(self, request: GenerationRequest) -> int:
        return len(self._prompt(request))

    def generate(
        self, requests: Sequence[GenerationRequest], max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[Generation]:
        return [self._generate_one(request, max_new_tokens, temperature, top_p) for request in requests]

    def _evaluate_prompt(self, prompt: list[int]) -> None:
        """Bring llama.cpp's state to ``prompt``, reusing the longest start it shares with the previous prompt, and
        evaluating the rest in batches of at least two tokens (a batch of one takes another arithmetic path)."""
        shared = 0
        for mine, cached in zip(prompt, self._evaluated):
            if mine != cached:
                break
            shared += 1
        start = max(0, min(shared, len(prompt) - 2))
        self.llm.n_tokens = start  # eval drops the key-value entries from here on
        self._evaluated = []
        size = self.llm.n_batch
        while start < len(prompt):
            take = min(size, len(prompt) - start)
            if len(prompt) - start - take == 1:
                take -= 1
            self.llm.eval(prompt[start : start + take])
            start += take
        self._evaluated = prompt

    def _log_prob(self, token: int) -> float:
        """The log-probability of ``token`` under the logits it was just drawn from (the context's last)."""
        np = self._numpy
        logits = np.ctypeslib.as_array(self._llama_cpp.llama_get_logits_ith(self.llm.ctx, -1), shape=(self._n_vocab,))
        values = logits.astype(np.float64)
        top = values.max()
        return float(values[token] - top - np.log(np.exp(values - top).sum()))

    def _sampler(self, temperature: float, top_p: float, seed: int):
        lib = self._llama_cpp
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if temperature <= 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
            return chain
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(temperature))
        if top_p < 1.0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(top_p, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def _generate_one(self, request: GenerationRequest, max_new_tokens: int, temperature: float, top_p: float) -> Generation:
        lib = self._llama_cpp
        prompt = self._prompt(request)
        if len(prompt) + max_new_tokens > self.max_length:
            raise InparsError(
                f"a prompt of {len(prompt)} tokens and {max_new_tokens} new ones exceed the llama.cpp context of "
                f"{self.max_length}; raise generate.context_length or lower generate.max_doc_tokens"
            )
        tokens: list[int] = []
        pieces: list[bytes] = []
        log_probs: list[float] = []
        finished = False
        if max_new_tokens > 0:
            self._evaluate_prompt(prompt)
            sampler = self._sampler(temperature, top_p, request.seed)
            try:
                while True:
                    token = lib.llama_sampler_sample(sampler, self.llm.ctx, -1)
                    if lib.llama_vocab_is_eog(self._vocab, token):
                        finished = True
                        break
                    log_probs.append(self._log_prob(token))
                    pieces.append(self.llm.detokenize([token], prev_tokens=prompt + tokens))
                    tokens.append(token)
                    # A newline is one byte that no multi-byte character contains, so a piece can be searched as bytes.
                    if b"\n" in pieces[-1]:
                        finished = True
                        break
                    if len(tokens) >= max_new_tokens:
                        break
                    self.llm.eval([token])
            finally:
                lib.llama_sampler_free(sampler)
        end = kept_tokens([piece.decode("utf-8", errors="ignore") for piece in pieces])
        text = self.llm.detokenize(tokens[:end], prev_tokens=prompt).decode("utf-8", errors="ignore")
        return Generation(text=text.split("\n", 1)[0].strip(), log_probs=tuple(log_probs[:end]), finished=finished)
