"""Bi-encoder reranking of a dense first stage: the naive way (each query's candidates encoded in one batch, so a
document among the candidates of many queries is encoded once per query) against inpars (each distinct text
encoded once per reranker, alone), with the same model, in the same run.

The candidates are faq-construction's zero-shot dense top-k; the model is all-MiniLM-L6-v2. Scores of both ways
are compared, so the faster path is checked to compute the same thing.

    PYTHONPATH=. python bench/rerank_bi_encoder.py --queries 50 --top-k 100
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from inpars.config import RetrieveConfig
from inpars.data import ranked
from inpars.datasets import load_dataset
from inpars.models import MINILM
from inpars.rerank import rerank_run
from inpars.rerank.bi_encoder import BiEncoderReranker
from inpars.retrieve import retrievers


def naive_scores(reranker: BiEncoderReranker, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
    """One query's pairs: the query and its candidates encoded in batches, nothing kept between queries."""
    encode = reranker.encoder.encode
    q = encode([pairs[0][0]], batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)
    d = encode([doc for _, doc in pairs], batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)
    return (q * d).sum(dim=1).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data = load_dataset("faq-construction")
    chosen = {q: data.queries[q] for q in sorted(data.queries)[: args.queries]}
    dense = retrievers.get("dense")(RetrieveConfig(backend="dense", model=MINILM))
    dense.index(data.docs.values())
    first = dense.search(chosen, args.top_k)

    naive = BiEncoderReranker(MINILM, device="cpu", batch_size=args.batch_size)
    started = time.perf_counter()
    naive_run = {}
    for qid, scores in first.items():
        head = [d for d, _ in ranked(scores)][: args.top_k]  # the candidates rerank_run takes, ties included
        values = naive_scores(naive, [(chosen[qid].text, data.docs[d].full_text) for d in head], args.batch_size)
        naive_run[qid] = dict(zip(head, values))
    naive_s = time.perf_counter() - started

    started = time.perf_counter()
    ours = rerank_run(BiEncoderReranker(MINILM, device="cpu", batch_size=args.batch_size), first, chosen, data.docs, args.top_k)
    ours_s = time.perf_counter() - started

    gap = max(abs(naive_run[q][d] - ours[q][d]) for q in naive_run for d in naive_run[q])
    pairs = sum(len(v) for v in naive_run.values())
    print(json.dumps({
        "queries": len(chosen), "pairs": pairs, "distinct_documents": len({d for v in naive_run.values() for d in v}),
        "naive_s": round(naive_s, 2), "inpars_s": round(ours_s, 2), "speedup": round(naive_s / ours_s, 1),
        "max_score_difference": gap, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
