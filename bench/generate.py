"""Generation speed: the naive way (batch of one, every prompt run whole, as the reference) against inpars' hf backend.

Same model (the embedded SmolLM2-135M-Instruct), same prompt (inpars), same faq-construction documents, same run,
greedy decoding; the outputs must be identical. Prints queries/s and query tokens/s of each, the ratio, and
where ours spends its time (document prefill against decoding). "copied" is the fallback for models whose
attention cannot be swapped: the prefix cache copied into every row.

    nice -n 10 python bench/generate.py --docs 32 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import platform
import time


def _timed(generator, requests, batch_size: int, max_new_tokens: int) -> tuple[float, list]:
    started = time.perf_counter()
    outputs = []
    for start in range(0, len(requests), batch_size):
        outputs += generator.generate(requests[start : start + batch_size], max_new_tokens=max_new_tokens)
    return time.perf_counter() - started, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=32, help="faq-construction documents (the first N by id)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[32], help="batch sizes of ours to measure")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-doc-tokens", type=int, default=256)
    parser.add_argument("--skip-naive", action="store_true", help="measure ours only")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice); 1 is steadier on a busy machine")
    parser.add_argument("--output", help="also write the figures here (JSON)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from inpars.datasets import load_dataset
    from inpars.generate.base import GenerationRequest
    from inpars.generate.hf import HFGenerator
    from inpars.prompt import load_prompt

    data = load_dataset("faq-construction")
    docs = [data.docs[i] for i in sorted(data.docs)[: args.docs]]
    prompt = load_prompt("inpars")
    ours = HFGenerator("embedded:smollm2-135m", device="cpu")
    requests = [GenerationRequest(prompt.prefix, prompt.suffix(ours.truncate(d.full_text, args.max_doc_tokens))) for d in docs]
    requests.sort(key=lambda r: len(ours.suffix_ids(r.suffix)))  # what the generation stage does
    prefix_tokens = len(ours.prefix_ids(prompt.prefix))
    doc_tokens = sum(len(ours.suffix_ids(r.suffix)) for r in requests) / len(requests)
    print(f"{len(docs)} documents; prompt prefix {prefix_tokens} tokens, document part {doc_tokens:.0f} tokens on average; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")

    results: dict = {"docs": len(docs), "prefix_tokens": prefix_tokens, "doc_tokens_mean": round(doc_tokens, 1), "runs": {}}
    reference = None
    if not args.skip_naive:
        naive = HFGenerator("embedded:smollm2-135m", device="cpu", reuse_prefix=False)
        naive.generate(requests[:1], max_new_tokens=2)  # warm-up
        seconds, reference = _timed(naive, requests, 1, args.max_new_tokens)
        results["runs"]["naive, batch 1"] = {"seconds": seconds, "tokens": sum(len(o.log_probs) for o in reference)}
    # The prefix cache copied into every row of a batch (what models whose attention cannot be swapped get).
    copied = HFGenerator("embedded:smollm2-135m", device="cpu")
    copied.model.set_attn_implementation("sdpa")
    copied.shared_attention = False
    variants = [(f"ours, batch {b}", ours, b) for b in args.batch_size] + [
        (f"copied, batch {max(args.batch_size)}", copied, max(args.batch_size))
    ]
    for name, generator, batch_size in variants:
        generator.generate(requests[:1], max_new_tokens=1)  # warm-up
        generator._prefix_cache.clear()  # the shared prefix is computed inside the timed run, once
        seconds, outputs = _timed(generator, requests, batch_size, args.max_new_tokens)
        # Where the time goes: the same batches with a single new token are (almost) all prefill.
        generator._prefix_cache.clear()
        prefill, _ = _timed(generator, requests, batch_size, 1)
        run = {"seconds": seconds, "prefill_seconds": prefill, "tokens": sum(len(o.log_probs) for o in outputs)}
        if reference is not None:
            run["identical"] = sum(a.text == b.text for a, b in zip(outputs, reference))
            pairs = [(x, y) for a, b in zip(outputs, reference) if a.text == b.text for x, y in zip(a.log_probs, b.log_probs)]
            run["max_log_prob_diff"] = max((abs(x - y) for x, y in pairs), default=0.0)
        results["runs"][name] = run

    naive_seconds = results["runs"].get("naive, batch 1", {}).get("seconds")
    print(f"{'run':<18}{'seconds':>9}{'queries/s':>11}{'tokens/s':>10}{'speed-up':>10}{'identical':>11}  prefill share")
    for name, run in results["runs"].items():
        run["queries_per_s"] = len(docs) / run["seconds"]
        run["tokens_per_s"] = run["tokens"] / run["seconds"]
        ratio = f"{naive_seconds / run['seconds']:.1f}x" if naive_seconds else "-"
        same = f"{run['identical']}/{len(docs)}" if "identical" in run else "-"
        share = f"{run['prefill_seconds'] / run['seconds']:.0%}" if "prefill_seconds" in run else ""
        print(
            f"{name:<18}{run['seconds']:>9.1f}{run['queries_per_s']:>11.2f}{run['tokens_per_s']:>10.1f}{ratio:>10}{same:>11}  "
            f"{share}"
        )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
