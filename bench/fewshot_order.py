"""What reordering the few-shot examples per document costs the hf backend: one shared prefix against one per order.

Same model (the embedded SmolLM2-135M-Instruct), the promptagator-fiqa prompt with 3 examples from the dataset,
the same faq-construction documents, greedy decoding; the generation stage runs once with ``fewshot_shuffle``
off (every document shares the prefix) and once on (3 examples make up to 6 prefixes; the stage groups the
requests by prefix, so each prefix is computed once and batches stay whole within a group). Prints the seconds
of each, the batches and distinct prefixes, and the ratio.

    nice -n 10 python bench/fewshot_order.py --docs 48 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path


class _Counting:
    """Passes requests to the generator and counts batches and distinct prefixes."""

    def __init__(self, inner) -> None:
        self.inner, self.batches, self.prefixes = inner, 0, set()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, requests, **kwargs):
        self.batches += 1
        self.prefixes.update(r.prefix for r in requests)
        return self.inner.generate(requests, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--output", help="also write the figures here (JSON)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from inpars.config import GenerateConfig
    from inpars.datasets import load_dataset
    from inpars.generate import generate_queries
    from inpars.generate.hf import HFGenerator

    data = load_dataset("faq-construction")
    generator = HFGenerator("embedded:smollm2-135m", device="cpu")
    config = GenerateConfig(
        model="embedded:smollm2-135m", device="cpu", prompt="promptagator-fiqa", num_examples=3, num_docs=args.docs,
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
    )
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, shuffle in (("shared prefix", False), ("per-document order", True)):
            counting = _Counting(generator)
            generator._prefix_cache = {}
            started = time.perf_counter()
            generate_queries(
                data.docs.values(), replace(config, fewshot_shuffle=shuffle), Path(folder) / label / "q.jsonl",
                generator=counting, dataset="faq-construction",
            )
            seconds = time.perf_counter() - started
            results[label] = {"seconds": round(seconds, 2), "batches": counting.batches, "prefixes": len(counting.prefixes)}
            print(f"{label:>20}: {seconds:6.1f}s, {counting.batches} batches, {len(counting.prefixes)} distinct prefixes")
    ratio = results["per-document order"]["seconds"] / results["shared prefix"]["seconds"]
    print(
        f"per-document order / shared prefix: {ratio:.2f}x ({args.docs} documents, batch {args.batch_size}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads)"
    )
    if args.output:
        Path(args.output).write_text(
            json.dumps({**results, "ratio": round(ratio, 3), "docs": args.docs, "batch_size": args.batch_size}, indent=2)
        )


if __name__ == "__main__":
    main()
