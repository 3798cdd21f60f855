"""Index and search time of the two BM25 backends, bm25s and Lucene (pyserini), measured in the same run.

    python bench/retrieve.py [--repeat 1] [--rounds 3] [--top-k 100 1000] [--output results.json]

On faq-construction (503 documents, 503 queries), optionally with the corpus repeated ``--repeat`` times (copies
get new ids) to see how each backend scales. For each backend and thread count: building the index (with an
empty index cache), opening the cached index, and searching every query; the best of ``--rounds``. The JVM start
and pyserini import are timed once, apart. Ratios are Lucene time / bm25s time at the same thread count.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from inpars import io
from inpars.config import RetrieveConfig
from inpars.data import Doc
from inpars.datasets import load_dataset
from inpars.evaluate import evaluate
from inpars.retrieve import retrievers

BACKENDS = ("bm25s", "pyserini")


def corpus(repeat: int) -> tuple[list[Doc], dict, dict]:
    data = load_dataset("faq-construction")
    docs = [Doc(f"{d.doc_id}#{i}" if i else d.doc_id, d.text, d.title) for i in range(repeat) for d in data.docs.values()]
    return docs, data.queries, data.qrels


def best(seconds: list[float]) -> float:
    return min(seconds)


def measure(backend: str, threads: int, docs: list[Doc], queries: dict, top_ks: list[int], rounds: int) -> dict:
    config = RetrieveConfig(backend=backend, stemmer="porter", threads=threads)
    build, reopen, search = [], [], {k: [] for k in top_ks}
    run = {}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["INPARS_CACHE"] = cache
            retriever = retrievers.get(backend)(config)
            started = time.perf_counter()
            retriever.index(docs)
            build.append(time.perf_counter() - started)
            reopened = retrievers.get(backend)(config)
            started = time.perf_counter()
            reopened.index(docs)
            reopen.append(time.perf_counter() - started)
            for k in top_ks:
                started = time.perf_counter()
                run = reopened.search(queries, k)
                search[k].append(time.perf_counter() - started)
    return {
        "build_s": best(build),
        "open_cached_s": best(reopen),
        "search_s": {k: best(v) for k, v in search.items()},
        "hits": sum(len(hits) for hits in run.values()),
        "run": run,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="copies of the corpus to index (new ids per copy)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions; the best time is reported")
    parser.add_argument("--top-k", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--output", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("bm25s", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    docs, queries, qrels = corpus(args.repeat)
    started = time.perf_counter()
    from inpars.retrieve.pyserini import lucene

    lucene()
    jvm_s = time.perf_counter() - started

    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "documents": len(docs),
        "queries": len(queries),
        "jvm_start_and_import_s": jvm_s,
        "backends": {},
    }
    for backend in BACKENDS:
        for threads in sorted(set(args.threads)):
            figures = measure(backend, threads, docs, queries, args.top_k, args.rounds)
            run = figures.pop("run")
            figures["nDCG@10"] = evaluate(run, qrels, ["nDCG@10"])["nDCG@10"] if args.repeat == 1 else None
            results["backends"][f"{backend}/{threads}"] = figures

    print(
        f"{len(docs)} documents, {len(queries)} queries, {results['machine']}; JVM start + pyserini import {jvm_s:.1f} s (once "
        "per process)"
    )
    header = ["backend/threads", "build s", "open cached s", *(f"search@{k} s" for k in args.top_k), "nDCG@10"]
    print(" | ".join(header))
    for name, fig in results["backends"].items():
        ndcg = f"{fig['nDCG@10']:.4f}" if fig["nDCG@10"] is not None else "-"
        print(
            " | ".join(
                [
                    name, f"{fig['build_s']:.3f}", f"{fig['open_cached_s']:.3f}",
                    *(f"{fig['search_s'][k]:.3f}" for k in args.top_k), ndcg,
                ]
            )
        )
    print("ratios, Lucene / bm25s (above 1: Lucene slower):")
    ratios = {}
    for threads in sorted(set(args.threads)):
        lucene_fig, bm25s_fig = results["backends"][f"pyserini/{threads}"], results["backends"][f"bm25s/{threads}"]
        ratios[threads] = {
            "build": lucene_fig["build_s"] / bm25s_fig["build_s"],
            **{f"search@{k}": lucene_fig["search_s"][k] / bm25s_fig["search_s"][k] for k in args.top_k},
        }
        print(f"  {threads} thread(s): " + ", ".join(f"{key} x{value:.2f}" for key, value in ratios[threads].items()))
    results["ratios_lucene_over_bm25s"] = ratios
    if args.output:
        io.write_json(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
