"""What every generator backend takes and returns, and what the backends share.

A backend is a class registered under a name in ``generators``; ``from_config(GenerateConfig)`` builds it.
It answers ``truncate(text, max_tokens)``, ``prompt_length(request)`` (None when it cannot count) and
``generate(requests, max_new_tokens, temperature, top_p)``, and has a ``max_length`` (its context, or None).
Every backend stops a query at the first newline and returns the log-probability of each token it kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from inpars.errors import InparsError
from inpars.registry import Registry


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt split into the part shared by all documents and the part for this document.

    ``seed`` drives sampling for this request alone, so a query does not depend on its batch.
    """

    prefix: str
    suffix: str
    seed: int = 0


@dataclass(frozen=True)
class Generation:
    text: str
    log_probs: tuple[float, ...]
    finished: bool = True
    """True when the query ended at a newline or end of sequence, False when it ran into ``max_new_tokens``."""


def request_seed(seed: int, key: str) -> int:
    """A per-query seed derived from the run's seed and the query id (stable across runs and batchings)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def stop_token_ids(tokenizer) -> set[int]:
    """Token ids that end a query: end-of-sequence tokens and every token whose text contains a newline.

    Computed from the vocabulary, so generation stops at a newline whatever the tokenizer.
    """
    ids: set[int] = set()
    for special in (tokenizer.eos_token_id,):
        if special is not None:
            ids.add(int(special))
    pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=False)
    ids.update(i for i, piece in enumerate(pieces) if "\n" in piece)
    return ids


def kept_tokens(pieces: Sequence[str], end_of_sequence: Sequence[bool] = ()) -> int:
    """How many of the generated tokens (given as text pieces) make the query.

    The query ends at the first piece holding a newline or at an end-of-sequence token; a piece such as
    ``"?\\n"`` carries text before its newline, so it belongs to the query (and its log-prob counts).
    """
    for i, piece in enumerate(pieces):
        if i < len(end_of_sequence) and end_of_sequence[i]:
            return i
        if "\n" in piece:
            return i + 1 if piece.split("\n", 1)[0].strip() else i
    return len(pieces)


def from_completion_choice(choice: dict, where: str) -> Generation:
    """A Generation from one choice of an OpenAI-style completion (``text``, ``logprobs.tokens``, ``finish_reason``)."""
    logprobs = choice.get("logprobs") or {}
    tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    if tokens is None or values is None:
        raise InparsError(
            f"{where} returned no token log-probabilities; use a server and model that support 'logprobs' on completions"
        )
    stopped = choice.get("finish_reason") == "stop"
    # A special token (end of sequence) comes back as an empty piece at the end of a stopped completion.
    end_of_sequence = [stopped and i == len(tokens) - 1 and not piece for i, piece in enumerate(tokens)]
    end = kept_tokens(tokens, end_of_sequence)
    return Generation(
        text=(choice.get("text") or "").split("\n", 1)[0].strip(),
        log_probs=tuple(float(v) for v in values[:end] if v is not None),
        finished=stopped,
    )


PREFIX_IDS_KEPT = 32
"""Tokenized prefixes a generator keeps (3 examples in every order make 6)."""


CHAT_SLOT = "\ue000inpars-prompt\ue000"
"""Stands for the prompt while a chat template is rendered (private-use characters no template writes)."""


def split_chat(rendered: str, bos: str | None, where: str) -> tuple[str, str]:
    """The text a chat template puts before and after the one user turn it rendered around :data:`CHAT_SLOT`.

    ``bos``: the beginning-of-sequence text the tokenizer adds on its own, dropped from the front of the template's
    text so that it is not there twice.
    """
    if rendered.count(CHAT_SLOT) != 1:
        raise InparsError(
            f"the chat template of {where} does not write the user's message once as it is; set generate.chat: false"
        )
    before, after = rendered.split(CHAT_SLOT)
    if bos and before.startswith(bos):
        before = before[len(bos):]
    return before, after


def chat_frame(generator, where: str) -> tuple[str, str]:
    """What ``generate.chat`` puts around every prompt: the chat template's text before and after one user turn
    whose content is the prompt, the assistant's turn opened (``add_generation_prompt``)."""
    frame = getattr(generator, "chat_frame", None)
    if frame is None:
        raise InparsError(f"generate.chat is true, but the {where} backend cannot apply a chat template; set chat: false")
    return frame()


class TokenizerOps:
    """Truncation and prompt lengths with a transformers tokenizer (``self.tokenizer``)."""

    tokenizer = None

    def chat_frame(self) -> tuple[str, str]:
        name = getattr(self, "model_name", "the model")
        tokenizer = self.tokenizer
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise InparsError(
                f"generate.chat is true, but the tokenizer of {name} has no chat template (a base model, not "
                "instruction-tuned, or no tokenizer given); set generate.chat: false or use an instruction-tuned model"
            )
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": CHAT_SLOT}], tokenize=False, add_generation_prompt=True
        )
        from inpars.models import tokenizer_adds_bos

        return split_chat(rendered, tokenizer.bos_token if tokenizer_adds_bos(tokenizer) else None, name)

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            return text
        return self.tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)

    def prefix_ids(self, prefix: str) -> list[int]:
        # Documents share a prefix, or one of a few (the orders of the few-shot examples): keep the latest few.
        cached: dict[str, tuple[int, ...]] = self.__dict__.setdefault("_prefix_ids", {})
        if prefix in cached:
            return list(cached[prefix])
        ids = self.tokenizer(prefix, add_special_tokens=True)["input_ids"] if prefix else []
        if not ids and self.tokenizer.bos_token_id is not None:
            ids = [self.tokenizer.bos_token_id]
        if len(cached) >= PREFIX_IDS_KEPT:
            del cached[next(iter(cached))]
        cached[prefix] = tuple(ids)
        return ids

    def suffix_ids(self, suffix: str) -> list[int]:
        return self.tokenizer(suffix, add_special_tokens=False)["input_ids"]

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt as the model sees it: the prefix and the suffix tokenized apart, then joined."""
        return self.prefix_ids(request.prefix) + self.suffix_ids(request.suffix)

    def prompt_length(self, request: GenerationRequest) -> int | None:
        return len(self.prefix_ids(request.prefix)) + len(self.suffix_ids(request.suffix))


def truncate_words(text: str, max_words: int) -> str:
    """Truncation when no tokenizer is at hand: whitespace-separated words."""
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words])


generators = Registry("generator")
generators.register("hf", "inpars.generate.hf:HFGenerator")
generators.register("vllm", "inpars.generate.vllm:VLLMGenerator")
generators.register("openai", "inpars.generate.openai:OpenAIGenerator")
generators.register("llamacpp", "inpars.generate.llamacpp:LlamaCppGenerator")
