"""Filters compared on the same generated queries: each filter's output trains the recipe's reranker, which reranks.

Takes a run folder whose generate stage is done, copies its ``generate/`` into one run folder per condition
(so generation is skipped: same config, same fingerprint) and runs the rest of the pipeline once per training
seed with ``inpars.pipeline.run_seeds``: filter, negatives, train, retrieve, rerank, evaluate. Conditions: no
filter, the hygiene filters together, each selection filter alone, a reranker filter that uses the model trained
without filtering (its first seed), and the combination of the conditions that beat no filtering. Each row gives
the mean over the seeds with their standard deviation, the bootstrap interval and the randomization test against
the zero-shot first stage on the per-query scores averaged over the seeds.

    python bench/filters.py runs/demo --output-dir runs/bench-filters [--only none,hygiene] [--epochs 1] \\
        [--rerank-top-k 100] [--negatives 1] [--seeds 0,1,2]

Writes ``results.json`` and ``results.md`` (a table) into the output folder. The collection has no dev split:
the combination is chosen on the same queries it is scored on, so its figure is optimistic.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import generated_run, setup_logging

from inpars import io
from inpars.config import PipelineConfig, build
from inpars.pipeline import run_seeds

logger = logging.getLogger("bench.filters")

HALF = 250  # top-k conditions keep about half of the 503 queries

# Single filters, in the order a combination applies them (cheap hygiene first, selection last).
# The hygiene filters run as one condition: each drops under 3% of these queries, too few to measure alone.
SINGLE = {
    "hygiene": [
        {"name": "dedup"},
        {"name": "min_length", "min_words": 4},
        {"name": "max_length", "max_tokens": 32},
        {"name": "copied", "n": 3, "max_overlap": 0.75},
    ],
    "consistency-bm25": [{"name": "consistency", "retriever": "bm25s", "k": 1}],
    "consistency-dense": [{"name": "consistency", "retriever": "dense", "model": "embedded:minilm-l6", "k": 1}],
    "lm-mean-top250": [{"name": "lm_score", "method": "mean_log_probs", "top_k": HALF}],
    "lm-sum-top250": [{"name": "lm_score", "method": "sum_log_probs", "top_k": HALF}],
    "lm-probs-top250": [{"name": "lm_score", "method": "mean_probs", "top_k": HALF}],
    # InPars-v2 scores (query, source document) with a reranker trained elsewhere (monoT5-3B on MS MARCO); offline,
    # the only such model at hand is all-MiniLM-L6-v2 untrained, scoring as a bi-encoder.
    "reranker-minilm-top250": [
        {"name": "reranker", "reranker": "bi-encoder", "model": "embedded:minilm-l6", "top_k": HALF, "max_length": 256}
    ],
}


def self_reranker_steps(out: Path, reranker: str, seed: int) -> list[dict]:
    """InPars-v2's reranker filter with the reranker trained on the unfiltered queries."""
    return [
        {
            "name": "reranker",
            "reranker": reranker,
            "model": str(out / "none" / f"seed-{seed}" / "train" / "model"),
            "top_k": HALF,
            "max_length": 256,
        }
    ]


def condition_config(
    source: dict, out: Path, name: str, steps: list[dict], epochs: float, rerank_top_k: int, negatives: int | None
) -> PipelineConfig:
    data = json.loads(json.dumps(source))
    data.update(name=name, output_dir=str(out))
    data["filter"] = {"steps": steps} if steps else {}
    data["select"] = {}  # every condition trains on all its kept queries and reranks with the trained model
    data["train"].update(epochs=epochs)
    data["rerank"].update(top_k=rerank_top_k)
    if negatives is not None:
        data["negatives"].update(num_negatives=negatives)
    return build(PipelineConfig, data, source="bench/filters.py")


def run_condition(source_run: Path, config: PipelineConfig, seeds: list[int], dataset) -> dict:
    run_dir = config.run_dir
    first = run_dir / f"seed-{seeds[0]}"
    if not (first / "generate" / "queries.jsonl").is_file():
        shutil.copytree(source_run / "generate", first / "generate", dirs_exist_ok=True)
    result = run_seeds(config, seeds, dataset=dataset)
    generated = [s for s in result.stages if s.name.startswith("generate")]
    if not all(s.skipped for s in generated):
        raise SystemExit(f"{run_dir}: generation ran again; the source run's generate config must be used unchanged")
    stages = {s.name: s for s in result.stages if s.name.endswith(f"(seed {seeds[0]})")}
    stages = {name.split(" (seed")[0]: s for name, s in stages.items()}
    summary = io.read_json(first / "filter" / "summary.json")
    return {
        "condition": config.name,
        "kept": summary["kept"],
        "dropped": {k: v for k, v in summary["dropped"].items() if v},
        "train_examples": stages["negatives"].summary.get("examples"),
        "train_s": round(stages["train"].seconds, 1),
        "filter_s": round(stages["filter"].seconds, 1),
        "rerank_s": round(stages["rerank"].seconds, 1),
        "metrics": result.metrics,
        "statistics": io.read_json(run_dir / "metrics.json")["systems"],
    }


def table(rows: list[dict], reranker: str) -> str:
    """One row per condition: the reranker's nDCG@10 (mean ± standard deviation over the seeds) with its 95% bootstrap
    interval over the queries, its difference from the first stage and the paired randomization test's p-value against
    it, then the other measures."""
    measures = list(rows[0]["metrics"][reranker])
    head = ["condition", "kept", "train pairs", "nDCG@10 ± std [95%]", "Δ", "p", *measures[1:], "dropped by", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(stats: dict) -> str:
        main = stats[measures[0]]
        spread = f" ± {main['std']:.4f}" if main.get("std") is not None else ""
        interval = f"{main['mean']:.4f}{spread} [{main['ci'][0]:.3f}, {main['ci'][1]:.3f}]"
        tested = main.get("p_randomization") is not None
        diff = f"{main['diff']:+.4f}" if tested else ""
        p = f"{main['p_randomization']:.3f}" if tested else ""
        return " | ".join([interval, diff, p, *(f"{stats[m]['mean']:.4f}" for m in measures[1:])])

    for system, stats in rows[0]["statistics"].items():
        if system != reranker:  # the first stage(s): BM25, and the dense model untrained when it is the first stage
            lines.append(f"| {system} (no training) | | | {cells(stats)} | | |")
    for r in rows:
        dropped = ", ".join(f"{k} {v}" for k, v in r["dropped"].items()) or "-"
        scored = cells(r["statistics"][reranker])
        lines.append(f"| {r['condition']} | {r['kept']} | {r['train_examples']} | {scored} | {dropped} | {r['train_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_run", type=Path, help="a run folder whose generate stage is done")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/bench-filters"))
    parser.add_argument("--only", default="", help="comma-separated condition names (default: all)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--rerank-top-k", type=int, default=20)
    parser.add_argument("--negatives", type=int, help="BM25 negatives per query (default: the source run's)")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated (default: 0,1,2)")
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    setup_logging()
    source, dataset = generated_run(args.source_run)
    out = args.output_dir
    only = {c for c in args.only.split(",") if c}
    rows: list[dict] = []
    reranker = source["train"]["reranker"]

    def go(name: str, steps: list[dict]) -> dict | None:
        if only and name not in only:
            return None
        config = condition_config(source, out, name, steps, args.epochs, args.rerank_top_k, args.negatives)
        row = run_condition(args.source_run, config, seeds, dataset)
        row["steps"] = steps
        rows.append(row)
        logger.info("%s: kept %d, %s", name, row["kept"], row["metrics"][reranker])
        io.write_json(out / "results.json", rows)
        return row

    base = go("none", [])
    singles = {name: go(name, steps) for name, steps in SINGLE.items()}
    if (out / "none" / f"seed-{seeds[0]}" / "train" / "model").is_dir():
        go("reranker-self-top250", self_reranker_steps(out, reranker, seeds[0]))
    if base is not None and not only:
        baseline = base["metrics"][reranker]["nDCG@10"]
        better = [n for n, r in singles.items() if r is not None and r["metrics"][reranker]["nDCG@10"] > baseline]
        # Two top-k selections would compete for the same budget: keep only the best of them.
        selections = [n for n in better if n.startswith(("lm-", "reranker"))]
        if len(selections) > 1:
            best = max(selections, key=lambda n: singles[n]["metrics"][reranker]["nDCG@10"])
            better = [n for n in better if n not in selections or n == best]
        if len(better) > 1:
            logger.info("combination of %s", ", ".join(better))
            go("combination", [step for n in better for step in SINGLE[n]])
        else:
            logger.info("no combination: %d single filter(s) beat no filtering (%s)", len(better), better)
    if rows:
        md = table(rows, reranker)
        with io.atomic_write(out / "results.md") as handle:
            handle.write(md + "\n")
        sys.stdout.write(md + "\n")


if __name__ == "__main__":
    main()
