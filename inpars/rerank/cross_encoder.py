"""Cross-encoder rerankers: any transformers encoder with a one-logit classification head."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

from inpars.config import TrainConfig
from inpars.data import TrainingExample
from inpars.models import device_of, pick_dtype, resolve
from inpars.rerank.base import score_in_batches
from inpars.rerank.training import ExampleDataset, PaddingCollator, check_kind, fit, plan_training, read_metadata

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
        dtype = getattr(torch, pick_dtype("auto", self.device, half=False))
        self.model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype).to(self.device)
        self.model.eval()
        self.max_length = max_length
        self.batch_size = batch_size

    def _encode(self, pairs: Sequence[tuple[str, str]]):
        queries = [q for q, _ in pairs]
        docs = [d for _, d in pairs]
        return self.tokenizer(
            queries, docs, truncation="only_second", max_length=self.max_length, padding=True, return_tensors="pt"
        )

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return score_in_batches(pairs, self.batch_size, self._score_batch)

    def _score_batch(self, pairs: list[tuple[str, str]]) -> list[float]:
        encoded = self._encode(pairs).to(self.device)
        return self.model(**encoded).logits[:, 0].float().tolist()

    @classmethod
    def train(
        cls, examples: Sequence[TrainingExample], config: TrainConfig, output_dir: str | Path, device: str = "auto"
    ) -> Path:
        """Fine-tune with binary cross-entropy on (query, document, label) examples; saves a sentence-transformers
        CrossEncoder folder (a transformers model and tokenizer, with the CrossEncoder's settings beside them)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

        plan = plan_training(examples, config)
        set_seed(config.seed)
        path = resolve(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="multi_label_classification")
        dataset = ExampleDataset(examples, functools.partial(_features, tokenizer, config.max_length))
        return fit(
            model=model, tokenizer=tokenizer, dataset=dataset, collator=PaddingCollator(tokenizer, "float32"), examples=examples,
            config=config, plan=plan, output_dir=output_dir, device=device, seq2seq=False, metadata={"reranker": cls.name},
            save=functools.partial(save_cross_encoder, model, tokenizer, config.max_length),
        )


def save_cross_encoder(model, tokenizer, max_length: int, folder: Path) -> None:
    """Save ``model`` and ``tokenizer`` as a sentence-transformers CrossEncoder folder whose ``predict`` gives the scores
    this reranker gives: the raw logit (a CrossEncoder's default for one label is its sigmoid) at the same max_length.

    transformers loads the same folder as it is (config, weights and tokenizer at its top), so inpars reads it as before.
    """
    import torch
    from sentence_transformers import CrossEncoder

    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    encoder = CrossEncoder(
        str(folder), device="cpu", max_length=max_length, activation_fn=torch.nn.Identity(), local_files_only=True
    )
    # inpars writes the model card (inpars.card) once the run has scores to put in it.
    encoder.save_pretrained(str(folder), create_model_card=False)


def _features(tokenizer, max_length: int, example: TrainingExample) -> dict:
    encoded = dict(tokenizer(example.query, example.doc, truncation="only_second", max_length=max_length))
    encoded["labels"] = [float(example.label)]
    return encoded
