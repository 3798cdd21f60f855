"""What is particular to the bi-encoder reranker: training groups, the in-batch loss and its duplicate masking."""

from __future__ import annotations

import math

import pytest

from inpars.data import TrainingExample
from inpars.errors import InparsError
from inpars.models import MINILM


def ex(qid: str, doc_id: str, label: int) -> TrainingExample:
    return TrainingExample(qid, f"query {qid}", doc_id, f"document {doc_id}", label)


def test_groups_take_the_fewest_negatives_and_drop_queries_without_any():
    from inpars.rerank.bi_encoder import training_groups

    examples = [ex("a", "d1", 1), ex("a", "d2", 0), ex("a", "d3", 0), ex("b", "d4", 1), ex("b", "d5", 0), ex("c", "d6", 1)]
    assert training_groups(examples) == [
        {
            "query": "query a",
            "positive": "document d1",
            "positive_id": "d1",
            "negatives": ["document d2"],
            "negative_ids": ["d2"],
        },
        {
            "query": "query b",
            "positive": "document d4",
            "positive_id": "d4",
            "negatives": ["document d5"],
            "negative_ids": ["d5"],
        },
    ]


def test_groups_need_a_negative():
    from inpars.rerank.bi_encoder import training_groups

    with pytest.raises(InparsError, match="needs queries with a positive and at least one negative; mine negatives first"):
        training_groups([ex("a", "d1", 1)])


class _Fixed:
    """An 'encoder' that returns given embeddings in order, to check the loss by hand."""

    def __init__(self, *outputs):
        self.outputs = list(outputs)

    def __call__(self, features):
        return {"sentence_embedding": self.outputs.pop(0)}


def test_loss_by_hand_and_a_shared_positive_is_not_a_negative():
    import torch

    from inpars.rerank.bi_encoder import SCALE, _ContrastiveModel

    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # two positives (rows 0 and 1), then one negative per row
    d = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [1.0, 0.0]])
    ids = torch.tensor([0, 1, 2, 3])
    model = _ContrastiveModel(_Fixed(q, d))
    loss = model(query={}, documents={}, document_ids=ids)["loss"].item()
    scores = (SCALE * q @ d.T).tolist()
    expected = sum(math.log(sum(math.exp(s) for s in row)) - row[i] for i, row in enumerate(scores)) / 2
    assert loss == pytest.approx(expected, rel=1e-5)

    # the same document is both rows' positive: neither row may count the other's copy against itself
    shared = torch.tensor([0, 0, 2, 3])
    masked = _ContrastiveModel(_Fixed(q, d))(query={}, documents={}, document_ids=shared)["loss"].item()
    kept = [[s for j, s in enumerate(row) if j == i or j >= 2] for i, row in enumerate(scores)]
    expected = sum(math.log(sum(math.exp(s) for s in row)) - row[0] for row in kept) / 2
    assert masked == pytest.approx(expected, rel=1e-5)


def test_score_encodes_each_text_once_across_calls_and_matches_cosine():
    import torch
    from sentence_transformers import SentenceTransformer

    from inpars.models import resolve
    from inpars.rerank.bi_encoder import BiEncoderReranker

    torch.set_num_threads(1)
    reranker = BiEncoderReranker(MINILM, device="cpu")
    encoded = []
    original = reranker.encoder.encode
    reranker.encoder.encode = lambda texts, **kw: encoded.extend(texts) or original(texts, **kw)
    pairs = [
        ("roof permit", "a permit is needed for a new roof"), ("roof permit", "taxes on a garden"), ("tax", "taxes on a garden"),
    ]
    scores = reranker.score(pairs)
    assert reranker.score([("tax", "taxes on a garden"), ("tax", "a permit is needed for a new roof")])[0] == scores[2]
    assert sorted(encoded) == sorted(["roof permit", "tax", "a permit is needed for a new roof", "taxes on a garden"])
    plain = SentenceTransformer(resolve(MINILM), device="cpu")
    q = plain.encode([p[0] for p in pairs], normalize_embeddings=True, convert_to_tensor=True)
    d = plain.encode([p[1] for p in pairs], normalize_embeddings=True, convert_to_tensor=True)
    assert scores == pytest.approx((q * d).sum(dim=1).tolist(), abs=1e-5)


def test_a_score_does_not_depend_on_the_other_pairs_scored_with_it():
    """Texts are encoded alone, so a fresh reranker given a pair among others scores it exactly as given it alone."""
    from inpars.rerank.bi_encoder import BiEncoderReranker

    pair = ("how deep must a fence post be", "Fence posts go a third of their height into the ground.")
    crowd = [("garden tax", "A very long answer about municipal taxes " * 8), pair, ("x", "short")]
    alone = BiEncoderReranker(MINILM, device="cpu").score([pair])[0]
    assert BiEncoderReranker(MINILM, device="cpu").score(crowd)[1] == alone


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    """Chunked, recomputed encoding is a memory saving only: the loss and every gradient stay what they were."""
    import torch
    from sentence_transformers import SentenceTransformer

    from inpars.models import resolve
    from inpars.rerank.bi_encoder import _ContrastiveModel, _GroupCollator

    encoder = SentenceTransformer(resolve(MINILM), device="cpu")
    encoder.max_seq_length = 64
    for module in encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # the two passes must see the same network
    rows = [
        {
            "query": f"question {i}",
            "positive": "word " * (3 + 7 * i),
            "positive_id": f"p{i}",
            "negatives": ["other text " * (i + 1)],
            "negative_ids": [f"n{i}"],
        }
        for i in range(5)
    ]
    batch = _GroupCollator(encoder)(rows)
    model = _ContrastiveModel(encoder).train()
    results = []
    for chunked in (False, True):
        model.zero_grad()
        model.chunk = None
        if chunked:
            model.gradient_checkpointing_enable()
            model.chunk = 3  # 10 documents in chunks of 3, 3, 3 and 1, each padded to its own longest
        loss = model(**batch)["loss"]
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (plain, grads), (chunked, chunked_grads) = results
    assert chunked == pytest.approx(plain, rel=1e-5)
    assert len(grads) == len(chunked_grads) > 0
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-3) for a, b in zip(grads, chunked_grads))
