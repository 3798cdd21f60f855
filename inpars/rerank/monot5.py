"""Seq2seq rerankers: monoT5 (``true``/``false``) and FLAN-T5 (``yes``/``no``).

The relevance of a pair is read from the first decoder step: the log-softmax over the logits of the true and
false tokens, taking the true one (so scores are log P(true), higher is better). Any T5-family model loads: a
Hugging Face id (``castorini/monot5-base-msmarco-10k``, ``zeta-alpha-ai/monot5-3b-inpars-v2-trec-covid``,
``google/flan-t5-base``) or a local folder; a folder trained by inpars carries its template and tokens.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inpars.config import TrainConfig
from inpars.data import TrainingExample
from inpars.errors import InparsError
from inpars.models import device_of, pick_dtype, resolve
from inpars.rerank.base import score_in_batches
from inpars.rerank.training import ExampleDataset, PaddingCollator, check_kind, fit, plan_training, read_metadata

logger = logging.getLogger(__name__)

_FIELD = re.compile(r"\{(query|document)\}")
_SEQ2SEQ_KINDS = ("monot5", "flan-t5")


@dataclass(frozen=True)
class PromptTemplate:
    """An input template with exactly one ``{query}`` and one ``{document}``; other text is kept verbatim."""

    text: str

    def __post_init__(self) -> None:
        names = _FIELD.findall(self.text)
        if sorted(names) != ["document", "query"]:
            raise InparsError(
                f"template {self.text!r} must contain {{query}} and {{document}} exactly once each (found "
                f"{', '.join('{' + n + '}' for n in names) or 'neither'}); "
                "e.g. 'Query: {query} Document: {document} Relevant:'"
            )

    def render(self, query: str, document: str) -> tuple[str, dict[str, tuple[int, int]]]:
        """The filled-in text and the character span of each field in it."""
        parts: list[str] = []
        spans: dict[str, tuple[int, int]] = {}
        position = 0
        last = 0
        for match in _FIELD.finditer(self.text):
            literal = self.text[last : match.start()]
            parts.append(literal)
            position += len(literal)
            value = query if match.group(1) == "query" else document
            spans[match.group(1)] = (position, position + len(value))
            parts.append(value)
            position += len(value)
            last = match.end()
        parts.append(self.text[last:])
        return "".join(parts), spans


def _field_range(offsets: list[tuple[int, int]], special: list[int], span: tuple[int, int]) -> tuple[int, int]:
    """The token positions ``[first, end)`` whose characters overlap ``span`` (an empty range if none do)."""
    start, stop = span
    inside = [i for i, (a, b) in enumerate(offsets) if not special[i] and b > start and a < stop]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def encode_prompts(tokenizer, template: PromptTemplate, pairs: Sequence[tuple[str, str]], max_length: int) -> list[list[int]]:
    """Token ids of each filled-in template, at most ``max_length`` long.

    Only the document is cut (from its end), so the text after it (``Relevant:``) and the special tokens always
    survive; a query is cut only if the template and the query alone exceed ``max_length``.
    """
    rendered = [template.render(q, d) for q, d in pairs]
    encoded = tokenizer(
        [text for text, _ in rendered],
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=False,
        verbose=False,
    )
    rows: list[list[int]] = []
    for index, (_, spans) in enumerate(rendered):
        ids = list(encoded["input_ids"][index])
        excess = len(ids) - max_length
        if excess > 0:
            offsets = [tuple(o) for o in encoded["offset_mapping"][index]]
            special = encoded["special_tokens_mask"][index]
            for name in ("document", "query"):
                first, end = _field_range(offsets, special, spans[name])
                cut = min(excess, end - first)
                if cut:
                    del ids[end - cut : end]
                    del offsets[end - cut : end]
                    del special[end - cut : end]
                    excess -= cut
                if excess <= 0:
                    break
            if excess > 0:
                raise InparsError(
                    f"max_length {max_length} cannot hold the template {template.text!r} even with an empty query and document; "
                    "raise max_length or shorten the template"
                )
        rows.append(ids)
    return rows


def training_features(
    tokenizer, template: PromptTemplate, max_length: int, targets: tuple[int, int], example: TrainingExample
) -> dict:
    """The input ids of an example and its target: the false or true token (``targets[label]``), then end of sequence."""
    ids = encode_prompts(tokenizer, template, [(example.query, example.doc)], max_length)[0]
    return {"input_ids": ids, "labels": [targets[example.label], tokenizer.eos_token_id]}


def _token_id(tokenizer, token: str, model: str, what: str) -> int:
    vocab = tokenizer.get_vocab()
    if token not in vocab:
        spaced = [t for t in (f"▁{token.lstrip('▁')}", f"Ġ{token.lstrip('Ġ')}", token.lstrip("▁Ġ")) if t in vocab and t != token]
        hint = f"; the vocabulary has {spaced[0]!r}" if spaced else ""
        raise InparsError(
            f"the {what} token {token!r} is not in the vocabulary of {model}{hint}; set {what}_token to one of its tokens"
        )
    return vocab[token]


def true_log_probs(model, input_ids, attention_mask, true_id: int, false_id: int) -> list[float]:
    """log P(true) of each row of a padded batch: the log-softmax over the true and false logits of the first decoder step.

    Takes any seq2seq model object, so a model built in memory (``bench/gpu_rehearsal.py``) is scored as a loaded one is.
    """
    import torch

    decoder = torch.full((input_ids.shape[0], 1), model.config.decoder_start_token_id, dtype=torch.long, device=input_ids.device)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder).logits
    return torch.log_softmax(logits[:, 0, [true_id, false_id]].float(), dim=-1)[:, 0].tolist()


class MonoT5Reranker:
    """monoT5: ``Query: {query} Document: {document} Relevant:`` answered with ``▁true`` or ``▁false``."""

    name = "monot5"
    default_template = "Query: {query} Document: {document} Relevant:"
    default_true_token = "▁true"
    default_false_token = "▁false"

    def __init__(
        self,
        model: str,
        max_length: int = 512,
        batch_size: int = 64,
        device: str = "auto",
        template: str | None = None,
        true_token: str | None = None,
        false_token: str | None = None,
        dtype: str = "auto",
    ) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.model_name = model
        path = resolve(model)
        metadata = read_metadata(path)
        check_kind(model, metadata, self.name, _SEQ2SEQ_KINDS)
        self.template = PromptTemplate(template or metadata.get("template") or self.default_template)
        self.device = device_of(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.true_id = _token_id(
            self.tokenizer, true_token or metadata.get("true_token") or self.default_true_token, model, "true"
        )
        self.false_id = _token_id(
            self.tokenizer, false_token or metadata.get("false_token") or self.default_false_token, model, "false"
        )
        if self.true_id == self.false_id:
            raise InparsError(
                f"the true and false tokens of {model} are the same token (id {self.true_id}); give two different tokens"
            )
        self.model = AutoModelForSeq2SeqLM.from_pretrained(
            path, dtype=getattr(torch, pick_dtype(dtype, self.device, half=False))
        )  # T5 overflows in float16.to(self.device)
        self.model.eval()
        self.max_length = max_length
        self.batch_size = batch_size

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """log P(true) of each (query, document) pair, computed in batches of similar length."""
        return score_in_batches(pairs, self.batch_size, self._score_batch)

    def _score_batch(self, pairs: list[tuple[str, str]]) -> list[float]:
        ids = encode_prompts(self.tokenizer, self.template, pairs, self.max_length)
        inputs = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(self.device)
        return true_log_probs(self.model, inputs["input_ids"], inputs["attention_mask"], self.true_id, self.false_id)

    @classmethod
    def train(
        cls, examples: Sequence[TrainingExample], config: TrainConfig, output_dir: str | Path, device: str = "auto"
    ) -> Path:
        """Fine-tune on (query, document, label) examples with targets ``true``/``false``; saves model, tokenizer and format."""
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, set_seed

        plan = plan_training(examples, config)
        template = PromptTemplate(config.template or cls.default_template)
        true_token = config.true_token or cls.default_true_token
        false_token = config.false_token or cls.default_false_token
        set_seed(config.seed)
        path = resolve(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        true_id = _token_id(tokenizer, true_token, config.model, "true")
        false_id = _token_id(tokenizer, false_token, config.model, "false")
        if tokenizer.eos_token_id is None:
            raise InparsError(f"the tokenizer of {config.model} has no end-of-sequence token; monoT5 targets end with one")
        model = AutoModelForSeq2SeqLM.from_pretrained(path)
        dataset = ExampleDataset(
            examples, functools.partial(training_features, tokenizer, template, config.max_length, (false_id, true_id))
        )
        metadata = {"reranker": cls.name, "template": template.text, "true_token": true_token, "false_token": false_token}
        return fit(
            model=model, tokenizer=tokenizer, dataset=dataset, collator=PaddingCollator(tokenizer, "long"), examples=examples,
            config=config, plan=plan, output_dir=output_dir, device=device, seq2seq=True, metadata=metadata,
        )


class FlanT5Reranker(MonoT5Reranker):
    """FLAN-T5 asked whether the passage is relevant, answered with ``▁yes`` or ``▁no``."""

    name = "flan-t5"
    default_template = "Query: {query}\nPassage: {document}\nIs the passage relevant to the query? Answer yes or no."
    default_true_token = "▁yes"
    default_false_token = "▁no"
