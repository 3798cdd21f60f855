"""Reranking throughput: the naive way (pairs in first-stage order, fixed batches of 8, as the reference code
does) against inpars (pairs sorted by length, larger batches), with the same model, in the same run.

The pairs are faq-construction BM25 top-k pairs; the model is the all-MiniLM-L6-v2 cross-encoder (the scoring
head is untrained, which does not change the cost). Scores of both ways are compared, so the faster path is
checked to compute the same thing.

    PYTHONPATH=. python bench/rerank.py --queries 12 --top-k 25
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from inpars.config import RetrieveConfig
from inpars.datasets import load_dataset
from inpars.models import MINILM
from inpars.rerank.base import length_sorted_batches
from inpars.rerank.cross_encoder import CrossEncoderReranker
from inpars.retrieve import retrievers


def bm25_pairs(queries: int, top_k: int) -> list[tuple[str, str]]:
    data = load_dataset("faq-construction")
    retriever = retrievers.get("bm25s")(RetrieveConfig())
    retriever.index(data.docs.values())
    chosen = {q: data.queries[q] for q in sorted(data.queries)[:: max(1, len(data.queries) // queries)][:queries]}
    run = retriever.search(chosen, top_k)
    pairs = []
    for qid, scores in run.items():
        for doc_id, _ in sorted(scores.items(), key=lambda item: -item[1]):
            pairs.append((data.queries[qid].text, data.docs[doc_id].full_text))
    return pairs


def score_in_order(reranker: CrossEncoderReranker, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
    """The naive loop: consecutive slices of the first-stage order, each padded to its longest pair."""
    scores: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            encoded = reranker._encode(pairs[start : start + batch_size]).to(reranker.device)
            scores += reranker.model(**encoded).logits[:, 0].float().tolist()
    return scores


def padded_tokens(reranker: CrossEncoderReranker, pairs: list[tuple[str, str]], batches: list[list[int]]) -> int:
    return sum(len(batch) * reranker._encode([pairs[i] for i in batch])["input_ids"].shape[1] for batch in batches)


def timed(func, repeats: int) -> tuple[float, list[float]]:
    best, out = float("inf"), []
    for _ in range(repeats):
        started = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - started)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=12)
    parser.add_argument("--top-k", type=int, default=25)
    parser.add_argument("--naive-batch", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--output", help="also write the figures as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars would interleave with the table
    if args.threads:
        torch.set_num_threads(args.threads)

    pairs = bm25_pairs(args.queries, args.top_k)
    reranker = CrossEncoderReranker(MINILM, max_length=args.max_length, batch_size=args.batch, device=args.device)
    reranker.score(pairs[: args.batch])  # warm up

    naive_s, naive = timed(lambda: score_in_order(reranker, pairs, args.naive_batch), args.repeats)
    reranker.batch_size = args.naive_batch
    sorted_small_s, _ = timed(lambda: reranker.score(pairs), args.repeats)
    reranker.batch_size = args.batch
    ours_s, ours = timed(lambda: reranker.score(pairs), args.repeats)

    in_order = [list(range(i, min(i + args.naive_batch, len(pairs)))) for i in range(0, len(pairs), args.naive_batch)]
    rows = {
        f"naive: first-stage order, batch {args.naive_batch}": (naive_s, padded_tokens(reranker, pairs, in_order)),
        f"length-sorted, batch {args.naive_batch}": (
            sorted_small_s,
            padded_tokens(reranker, pairs, length_sorted_batches(pairs, args.naive_batch)),
        ),
        f"inpars: length-sorted, batch {args.batch}": (
            ours_s,
            padded_tokens(reranker, pairs, length_sorted_batches(pairs, args.batch)),
        ),
    }
    difference = max(abs(a - b) for a, b in zip(naive, ours))
    print(
        f"{len(pairs)} pairs ({args.queries} faq-construction queries x BM25 top {args.top_k}), all-MiniLM-L6-v2 cross-encoder, "
        f"max_length {args.max_length}, {args.device}, {torch.get_num_threads()} torch threads, best of {args.repeats}"
    )
    print(f"{'':45s} {'seconds':>8s} {'pairs/s':>8s} {'tokens fed':>11s} {'speed-up':>8s}")
    for name, (seconds, tokens) in rows.items():
        print(f"{name:45s} {seconds:8.2f} {len(pairs) / seconds:8.1f} {tokens:11d} {naive_s / seconds:7.2f}x")
    print(f"largest score difference between naive and inpars: {difference:.2e}")
    if args.output:
        figures = {
            "pairs": len(pairs), "device": args.device, "threads": torch.get_num_threads(), "machine": platform.machine(),
            "rows": {name: {"seconds": s, "pairs_per_s": len(pairs) / s, "tokens": t} for name, (s, t) in rows.items()},
            "speedup": naive_s / ours_s, "max_score_difference": difference,
        }
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
