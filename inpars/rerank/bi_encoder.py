"""Bi-encoder rerankers: a sentence-transformers model that embeds query and document apart and scores by cosine.

Trained as Promptagator and GPL train their retrievers: each synthetic query against its source document, its
mined negatives and every other document in the batch (in-batch negatives, softmax over scaled cosines). A
document that is the positive of two queries in one batch is never counted as a negative of either.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from inpars.config import TrainConfig
from inpars.data import TrainingExample
from inpars.errors import InparsError
from inpars.models import device_of, resolve
from inpars.rerank.training import check_kind, fit, plan_training, read_metadata

logger = logging.getLogger(__name__)

CHUNK = 16
"""Texts encoded at once when training with gradient checkpointing."""

SCALE = 20.0
"""Cosine similarities are multiplied by this before the softmax (sentence-transformers' default for this loss)."""


class BiEncoderReranker:
    """Scores a (query, document) pair by the cosine of their embeddings.

    Each distinct text is embedded once per reranker and kept: a document among the candidates of many queries is
    encoded once, not once per query. Texts are encoded one at a time (no padding, no batch neighbours), so a text's
    embedding, and every score, is the same whichever queries it is reranked with: shards of a run merge to the whole.
    """

    name = "bi-encoder"

    def __init__(self, model: str, max_length: int = 256, batch_size: int = 64, device: str = "auto") -> None:
        from sentence_transformers import SentenceTransformer

        self.model_name = model
        self.device = device_of(device)
        path = resolve(model)
        check_kind(model, read_metadata(path), self.name, (self.name,))
        self.encoder = SentenceTransformer(path, device=self.device)
        self.encoder.max_seq_length = max_length
        self.batch_size = batch_size
        self._embeddings: dict[str, torch.Tensor] = {}

    def _embed(self, texts: list[str]) -> torch.Tensor:
        new = [text for text in dict.fromkeys(texts) if text not in self._embeddings]
        if new:
            vectors = self.encoder.encode(
                new,
                batch_size=1,
                convert_to_tensor=True,
                normalize_embeddings=True,
                show_progress_bar=len(new) > 20 * self.batch_size,
            )
            self._embeddings.update(zip(new, vectors))
        return torch.stack([self._embeddings[text] for text in texts])

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        q_emb = self._embed([q for q, _ in pairs])
        d_emb = self._embed([d for _, d in pairs])
        return (q_emb * d_emb).sum(dim=1).float().tolist()

    @classmethod
    def train(
        cls, examples: Sequence[TrainingExample], config: TrainConfig, output_dir: str | Path, device: str = "auto"
    ) -> Path:
        """Contrastive fine-tuning on (query, positive, negatives) groups; saves a sentence-transformers folder."""
        from sentence_transformers import SentenceTransformer
        from transformers import set_seed

        groups = training_groups(examples)
        plan = plan_training(examples, config, items=len(groups))
        set_seed(config.seed)
        encoder = SentenceTransformer(resolve(config.model), device=device_of(device))
        encoder.max_seq_length = config.max_length
        model = _ContrastiveModel(encoder)
        return fit(
            model=model,
            tokenizer=encoder.tokenizer,
            dataset=groups,
            collator=_GroupCollator(encoder),
            examples=examples,
            config=config,
            plan=plan,
            output_dir=output_dir,
            device=device,
            seq2seq=False,
            metadata={"reranker": cls.name, "scale": SCALE},
            save=lambda folder: encoder.save(str(folder)),
        )


def training_groups(examples: Sequence[TrainingExample]) -> list[dict]:
    """One item per (query, positive document): the query, the positive and the query's negatives.

    Every item gets as many negatives as the query with the fewest, so that batches stack; queries without any
    negative are dropped with a count in the log.
    """
    positives: dict[str, list[TrainingExample]] = defaultdict(list)
    negatives: dict[str, list[TrainingExample]] = defaultdict(list)
    for e in examples:
        (positives if e.label > 0 else negatives)[e.query_id].append(e)
    usable = [qid for qid in positives if negatives[qid]]
    if not usable:
        raise InparsError("bi-encoder training needs queries with a positive and at least one negative; mine negatives first")
    if len(usable) < len(positives):
        logger.info("%d of %d queries have no negative and are left out", len(positives) - len(usable), len(positives))
    width = min(len(negatives[qid]) for qid in usable)
    return [
        {
            "query": pos.query,
            "positive": pos.doc,
            "positive_id": pos.doc_id,
            "negatives": [n.doc for n in negatives[qid][:width]],
            "negative_ids": [n.doc_id for n in negatives[qid][:width]],
        }
        for qid in usable
        for pos in positives[qid]
    ]


class _GroupCollator:
    """Tokenises queries, positives and negatives of a batch apart, and numbers the batch's distinct documents."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder

    def __call__(self, rows: list[dict]) -> dict:
        ids: dict[str, int] = {}

        def number(doc_id: str) -> int:
            return ids.setdefault(doc_id, len(ids))

        return {
            "query": dict(self.encoder.preprocess([r["query"] for r in rows])),
            "documents": dict(self.encoder.preprocess([r["positive"] for r in rows] + [n for r in rows for n in r["negatives"]])),
            "document_ids": torch.tensor(
                [number(r["positive_id"]) for r in rows] + [number(n) for r in rows for n in r["negative_ids"]]
            ),
        }


class _ContrastiveModel(torch.nn.Module):
    """The encoder and its loss, as the Trainer wants a model: ``forward(**batch)`` returns the loss."""

    def __init__(self, encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.chunk: int | None = None

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Encode in chunks of ``CHUNK`` texts whose activations are recomputed in the backward pass: the batch's
        documents (a query's positive and negatives times the batch) then never hold their activations at once."""
        self.chunk = CHUNK

    def _embed(self, features: dict) -> torch.Tensor:
        if self.chunk is None or not self.training:
            return self.encoder(features)["sentence_embedding"]
        from torch.utils.checkpoint import checkpoint

        tensors = {k: v for k, v in features.items() if isinstance(v, torch.Tensor)}
        rest = {k: v for k, v in features.items() if not isinstance(v, torch.Tensor)}
        size = next(iter(tensors.values())).shape[0]
        parts = []
        for start in range(0, size, self.chunk):
            # Each chunk is padded to its own longest text, not to the batch's.
            chunk = {k: v[start : start + self.chunk] for k, v in tensors.items()}
            width = int(chunk["attention_mask"].sum(dim=1).max()) if "attention_mask" in chunk else None
            chunk = {k: (v[:, :width] if width is not None and v.dim() == 2 else v) for k, v in chunk.items()}
            parts.append(checkpoint(lambda c: self.encoder({**c, **rest})["sentence_embedding"], chunk, use_reentrant=False))
        return torch.cat(parts)

    def forward(self, query: dict, documents: dict, document_ids: torch.Tensor) -> dict:
        q = F.normalize(self._embed(query), dim=-1)
        d = F.normalize(self._embed(documents), dim=-1)
        batch = q.shape[0]
        scores = SCALE * q @ d.T
        # The first `batch` documents are the positives, row i's at column i: the same document elsewhere in the
        # batch (another copy of it, as a positive or a negative) must not count against row i.
        same = document_ids[:batch, None] == document_ids[None, :]
        same[torch.arange(batch), torch.arange(batch)] = False
        scores = scores.masked_fill(same, float("-inf"))
        return {"loss": F.cross_entropy(scores, torch.arange(batch, device=scores.device))}
