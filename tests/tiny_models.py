"""Tiny randomly initialised T5 rerankers built offline: a Unigram tokenizer trained on a few sentences and a
two-layer T5 from a config, with the true/false and yes/no tokens in the vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL = ["<pad>", "</s>", "<unk>"]
ANSWERS = "true false yes no"
TEMPLATE_WORDS = "Query: Document: Relevant: Passage: Is the passage relevant to the query? Answer yes or no."


def build_tokenizer(sentences: list[str]):
    """A sentencepiece-like Unigram tokenizer (``▁`` marks a word start) that appends ``</s>`` like T5's."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    corpus = list(sentences) + [ANSWERS] * 50 + [TEMPLATE_WORDS] * 50
    trainer = trainers.UnigramTrainer(vocab_size=600, special_tokens=SPECIAL, unk_token="<unk>", shrinking_factor=0.75)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    # Unigram may split short words; the answer words must be single pieces, as in T5's vocabulary.
    data = json.loads(tokenizer.to_str())
    pieces = {piece for piece, _ in data["model"]["vocab"]}
    data["model"]["vocab"] += [[f"▁{word}", -1.0] for word in ANSWERS.split() if f"▁{word}" not in pieces]
    tokenizer = Tokenizer.from_str(json.dumps(data))
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512)
    vocab = fast.get_vocab()
    missing = [t for t in ("▁true", "▁false", "▁yes", "▁no") if t not in vocab]
    assert not missing, f"the tiny tokenizer lacks {missing}"
    return fast


def build_t5(folder: Path, sentences: list[str], seed: int = 0) -> Path:
    """Save a tiny random T5 (2+2 layers, d_model 32) and its tokenizer in ``folder``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = build_tokenizer(sentences)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        num_decoder_layers=2,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
