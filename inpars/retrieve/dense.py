"""Dense retrieval with a sentence-transformers bi-encoder: exact cosine search over normalised embeddings."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from inpars.config import RetrieveConfig
from inpars.data import Doc, Query, Run
from inpars.errors import InparsError
from inpars.models import MINILM, device_of, resolve
from inpars.retrieve.base import check_top_k

logger = logging.getLogger(__name__)


class DenseRetriever:
    """Encodes title and text in one field (as BM25-flat does) and ranks by cosine similarity."""

    name = "dense"

    def __init__(
        self, config: RetrieveConfig | None = None, model: str | None = None, batch_size: int = 64, device: str = "auto"
    ) -> None:
        """``model`` wins over ``config.model``; with neither, all-MiniLM-L6-v2."""
        from sentence_transformers import SentenceTransformer

        self.config = config or RetrieveConfig(backend="dense")
        model = model or self.config.model or MINILM
        self.model_name = model
        self.batch_size = batch_size
        self.encoder = SentenceTransformer(resolve(model), device=device_of(device))
        self._doc_ids: list[str] = []
        self._embeddings = None

    def _encode(self, texts: list[str]):
        return self.encoder.encode(
            texts, batch_size=self.batch_size, convert_to_tensor=True, normalize_embeddings=True,
            show_progress_bar=len(texts) > 10 * self.batch_size,
        )

    def index(self, docs: Iterable[Doc]) -> None:
        docs = list(docs)
        if not docs:
            raise InparsError("cannot index an empty corpus")
        self._doc_ids = [d.doc_id for d in docs]
        logger.info("encoding %d documents with %s", len(docs), self.model_name)
        self._embeddings = self._encode([d.full_text for d in docs])

    def search(self, queries: Mapping[str, Query], top_k: int) -> Run:
        import torch

        check_top_k(top_k)
        if self._embeddings is None:
            raise InparsError("index documents before searching")
        ids = list(queries)
        if not ids:
            return {}
        k = min(top_k, len(self._doc_ids))
        scores = self._encode([queries[q].text for q in ids]) @ self._embeddings.T
        values, indices = torch.topk(scores, k, dim=1)
        return {
            qid: {self._doc_ids[i]: float(s) for i, s in zip(row_i.tolist(), row_s.tolist())}
            for qid, row_i, row_s in zip(ids, indices, values)
        }
