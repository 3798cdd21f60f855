"""Helpers for the generation tests: tiny language models (a word-level tokenizer that is not GPT-2's, a random
Llama, a "successor" Llama whose weights make it emit a fixed next token for each token, so stops are known),
documents made of their words, and comparisons of generations that allow for float rounding."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from inpars.data import Doc

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
PUNCTUATION = ["\n", "?\n", "?", ":", ".", ","]
WORDS = [
    "the", "a", "of", "and", "to", "in", "is", "on", "for", "with", "what", "how", "why", "where", "when", "which", "who", "does",
    "do", "can", "are", "this", "that", "it", "example", "document", "relevant", "query", "good", "bad", "question", "answer",
    "about", "water", "fire", "stone", "river", "house", "road", "green", "blue", "red", "small", "large", "old", "new", "quick",
    "slow", "cold", "warm", "bright", "dark", "build", "sell", "grow", "move", "open", "close",
]
VOCAB = SPECIALS + PUNCTUATION + WORDS + [str(i) for i in range(10)]


def build_tokenizer():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({piece: i for i, piece in enumerate(VOCAB)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"\?\n|\n|\?|:|\.|,|\d"), behavior="isolated"),
    ])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


def _config(**overrides):
    from transformers import LlamaConfig

    settings = {
        "vocab_size": len(VOCAB), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 1024, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3,
        "tie_word_embeddings": False, "initializer_range": 0.3,
    }
    settings.update(overrides)
    return LlamaConfig(**settings)


def save_random_llama(folder: Path, seed: int = 0, stop_boost: float = 2.0, **overrides) -> Path:
    """A randomly initialised Llama (grouped-query attention) with the tiny tokenizer.

    The output row of the '?\n' piece is scaled by ``stop_boost`` so that some queries end early.
    """
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(_config(**overrides))
    with torch.no_grad():
        model.lm_head.weight[VOCAB.index("?\n")] *= stop_boost
    model.save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    return folder


def save_successor_llama(folder: Path, successor: dict[str, str]) -> Path:
    """A Llama that, after token ``t``, emits ``successor[t]`` (tokens not listed lead to ``successor['*']``).

    Attention and MLP outputs are zeroed, so the last hidden state is the token's own (one-hot) embedding, and
    the output matrix maps each one-hot to the chosen successor.
    """
    import torch
    from transformers import LlamaForCausalLM

    size = len(VOCAB)
    model = LlamaForCausalLM(_config(hidden_size=size + (-size % 4), intermediate_size=8, num_hidden_layers=1))
    index = {piece: i for i, piece in enumerate(VOCAB)}
    with torch.no_grad():
        hidden = model.config.hidden_size
        model.model.embed_tokens.weight.copy_(torch.eye(size, hidden))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = torch.zeros(size, hidden)
        for piece, i in index.items():
            head[index[successor.get(piece, successor["*"])], i] = 1.0
        model.lm_head.weight.copy_(head)
    model.save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    return folder


def make_docs(count: int, seed: int = 0) -> list[Doc]:
    """Documents of tiny-vocabulary words, of varied lengths."""
    rng = random.Random(seed)
    return [
        Doc(doc_id=f"d{i:03d}", text=" ".join(rng.choice(WORDS) for _ in range(3 + rng.randrange(12))), title="")
        for i in range(count)
    ]


def assert_same(outputs, expected) -> None:
    """Same texts and stops; log-probs equal up to float rounding (batches of other shapes round differently)."""
    assert [(o.text, o.finished) for o in outputs] == [(e.text, e.finished) for e in expected]
    for o, e in zip(outputs, expected):
        assert o.log_probs == pytest.approx(e.log_probs, abs=1e-4)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same_rows(path: Path, expected: Path) -> None:
    """Same rows in the same order; log-probs equal up to float rounding."""
    rows, wanted = read_rows(path), read_rows(expected)
    assert [{k: v for k, v in r.items() if k != "log_probs"} for r in rows] == [
        {k: v for k, v in r.items() if k != "log_probs"} for r in wanted
    ]
    for a, b in zip(rows, wanted):
        assert a["log_probs"] == pytest.approx(b["log_probs"], abs=1e-4)
