"""Cross-encoder rerankers: any transformers encoder with a one-logit classification head."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from inpars.config import TrainConfig
from inpars.data import TrainingExample
from inpars.models import resolve
from inpars.rerank.base import length_sorted_batches
from inpars.rerank.training import check_kind, device_of, fit, plan_training, read_metadata

logger = logging.getLogger(__name__)


class CrossEncoderReranker:
    """Scores a (query, document) pair as one sequence; the document is truncated, never the query."""

    name = "cross-encoder"

    def __init__(self, model: str, max_length: int = 256, batch_size: int = 64, device: str = "auto") -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.model_name = model
        self.device = device_of(device)
        path = resolve(model)
        check_kind(model, read_metadata(path), self.name, (self.name,))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = torch.bfloat16 if self.device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype).to(self.device)
        self.model.eval()
        self.max_length = max_length
        self.batch_size = batch_size

    def _encode(self, pairs: Sequence[tuple[str, str]]):
        queries = [q for q, _ in pairs]
        docs = [d for _, d in pairs]
        return self.tokenizer(queries, docs, truncation="only_second", max_length=self.max_length, padding=True, return_tensors="pt")

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        import torch
        from tqdm.auto import tqdm

        scores = [0.0] * len(pairs)
        batches = length_sorted_batches(pairs, self.batch_size)
        with torch.inference_mode():
            for batch in tqdm(batches, desc="rerank", unit="batch", disable=len(batches) < 4):
                encoded = self._encode([pairs[i] for i in batch]).to(self.device)
                logits = self.model(**encoded).logits[:, 0].float().tolist()
                for i, value in zip(batch, logits):
                    scores[i] = value
        return scores

    @classmethod
    def train(cls, examples: Sequence[TrainingExample], config: TrainConfig, output_dir: str | Path, device: str = "auto") -> Path:
        """Fine-tune with binary cross-entropy on (query, document, label) examples; saves model and tokenizer."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

        plan = plan_training(examples, config)
        set_seed(config.seed)
        path = resolve(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="multi_label_classification")
        dataset = _PairDataset(examples, tokenizer, config.max_length)
        return fit(
            model=model, tokenizer=tokenizer, dataset=dataset, collator=_Collator(tokenizer), examples=examples, config=config,
            plan=plan, output_dir=output_dir, device=device, seq2seq=False, metadata={"reranker": cls.name},
        )


class _PairDataset:
    def __init__(self, examples: Sequence[TrainingExample], tokenizer, max_length: int) -> None:
        self.examples = list(examples)
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        example = self.examples[index]
        encoded = self.tokenizer(example.query, example.doc, truncation="only_second", max_length=self.max_length)
        encoded["labels"] = [float(example.label)]
        return dict(encoded)


class _Collator:
    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        labels = torch.tensor([row.pop("labels") for row in rows], dtype=torch.float32)
        batch = self.tokenizer.pad(rows, return_tensors="pt")
        batch["labels"] = labels
        return batch
