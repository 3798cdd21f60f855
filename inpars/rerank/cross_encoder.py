"""Cross-encoder rerankers: any transformers encoder with a one-logit classification head."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from inpars.config import TrainConfig
from inpars.data import TrainingExample
from inpars.errors import InparsError
from inpars.models import resolve
from inpars.rerank.base import length_sorted_batches

logger = logging.getLogger(__name__)


def _device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class CrossEncoderReranker:
    """Scores a (query, document) pair as one sequence; the document is truncated, never the query."""

    name = "cross-encoder"

    def __init__(self, model: str, max_length: int = 256, batch_size: int = 64, device: str = "auto") -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.model_name = model
        self.device = _device(device)
        path = resolve(model)
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
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments, set_seed

        if not examples:
            raise InparsError("no training examples: the filter or negative mining kept nothing; check their settings")
        labels = {e.label for e in examples}
        if labels != {0, 1}:
            raise InparsError(f"training needs positive and negative examples; found only label(s) {sorted(labels)}")
        effective = config.batch_size * config.gradient_accumulation_steps
        steps = math.ceil(len(examples) / effective * config.epochs)
        if steps < 1:
            raise InparsError(f"{len(examples)} examples at an effective batch of {effective} for {config.epochs} epochs is zero steps")
        output_dir = Path(output_dir)
        set_seed(config.seed)
        path = resolve(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="multi_label_classification")
        dataset = _PairDataset(examples, tokenizer, config.max_length)
        on_gpu = _device(device).startswith("cuda")
        args = TrainingArguments(
            output_dir=str(output_dir / "checkpoints"),
            num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            warmup_steps=int(config.warmup_ratio * steps),
            lr_scheduler_type="linear",
            weight_decay=0.01,
            seed=config.seed,
            data_seed=config.seed,
            bf16=on_gpu and torch.cuda.is_bf16_supported(),
            use_cpu=not on_gpu,
            logging_steps=max(1, steps // 10),
            save_strategy="no",
            report_to=[],
            dataloader_num_workers=0,
            disable_tqdm=False,
        )
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=_Collator(tokenizer))
        logger.info("training %s on %d examples: %d steps at effective batch %d, lr %g", config.model, len(examples), steps, effective, config.learning_rate)
        trainer.train()
        model_dir = output_dir / "model"
        trainer.save_model(str(model_dir))
        tokenizer.save_pretrained(str(model_dir))
        return model_dir


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
