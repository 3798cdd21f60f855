"""Which embedded generator writes the better training queries, and can the select stage tell when training helped?

The demo recipe (faq-construction, a MiniLM bi-encoder trained on the queries, the untrained one as first stage) runs
over the seeds for each condition:

- ``smollm2``: SmolLM2-135M-Instruct with the ``inpars`` prompt as text (the demo today);
- ``smollm2-chat``: the same model with the prompt sent through its chat template (``generate.chat``);
- ``gemma``: Gemma 3 270M (the base model) with the ``inpars`` prompt;
- ``union``: both generators' queries for every document (two per document).

Each condition's queries are written once, in a child process that reports its own wall time and peak memory (RSS),
and every seed trains on them (``inpars run --seeds``): nDCG@10 mean ± std over the seeds, the bootstrap interval and
the randomization p against the zero-shot first stage. Then, for every seed, the select stage's choice is judged
three ways:

- ``same``: on the training generator's own held-out queries (what the recipe does by default);
- ``cross``: on queries another generator writes for the same held-out documents (``select.judge_model``);
- ``real``: on the collection's real questions, without the BM25 gate: the choice a judged test set would make.

It reports how often ``same`` and ``cross`` reach the real questions' verdict on training (the trained model alone
better than the untrained first stage alone, or not) and pick the real choice's source, the real nDCG@10 each choice
loses against the real choice (regret), and how often it ends below the better of BM25 and zero-shot.

    python bench/generators.py --output-dir runs/bench-generators [--seeds 0,1,2] [--conditions smollm2,gemma]
    python bench/generators.py --output-dir runs/bench-generators --speed-only 128   # generation speed alone

Writes ``results.json`` and ``results.md`` into the output folder; run it on a quiet machine (the generation times).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import cpu_flags, setup_logging

from inpars import io
from inpars.config import PipelineConfig, judge_generate, load_pipeline_config
from inpars.data import Query
from inpars.datasets import load_dataset
from inpars.evaluate import evaluate
from inpars.models import GEMMA3, SMOLLM2
from inpars.pipeline import run_seeds, seeded
from inpars.rerank.fusion import candidates, choose, fuse, judging_queries
from inpars.stage import load_context

logger = logging.getLogger("bench.generators")

GENERATORS = {
    "smollm2": ["generate.model=" + SMOLLM2],
    "smollm2-chat": ["generate.model=" + SMOLLM2, "generate.chat=true"],
    "gemma": ["generate.model=" + GEMMA3],
}
"""Conditions with a generator of their own: the demo recipe's overrides."""
UNION = {"union": ("smollm2", "gemma")}
JUDGE = {"smollm2": GEMMA3, "smollm2-chat": GEMMA3, "gemma": SMOLLM2, "union": None}
"""The generator that writes the cross-generator judging queries; None: SmolLM2 with another prompt (inpars-gbq)."""
MEASURE = "nDCG@10"

CHILD = """
import json, resource, sys, time
from inpars.config import load_pipeline_config
from inpars.datasets import load_dataset
from inpars.generate import generate_queries
config = load_pipeline_config(text=sys.argv[1], overrides=json.loads(sys.argv[2]))
dataset = load_dataset(config.dataset)
started = time.perf_counter()
summary = generate_queries(dataset.docs.values(), config.generate, sys.argv[3], dataset=config.dataset)
print(json.dumps({"wall_s": time.perf_counter() - started, "summary": summary.as_dict(),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def demo_text() -> str:
    return resources.files("inpars.recipes").joinpath("demo.yaml").read_text(encoding="utf-8")


def generate(name: str, out: Path, extra: tuple[str, ...] = ()) -> dict:
    """The condition's queries for every document (or as ``extra`` overrides say), written by a child process; its time
    and peak memory."""
    folder = out / "queries" / name
    record = folder / "generation.json"
    if record.is_file():
        return io.read_json(record)
    folder.mkdir(parents=True, exist_ok=True)
    overrides = [*GENERATORS[name], *extra]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, demo_text(), json.dumps(overrides), str(folder / "queries.jsonl")],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"generation of {name} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    generated = result["summary"]["generated"] - result["summary"]["resumed"]
    result["s_per_query"] = result["summary"]["seconds"] / max(generated, 1)
    io.write_json(record, result)
    return result


def union(names: tuple[str, ...], out: Path) -> Path:
    path = out / "queries" / "union" / "queries.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        for line in (out / "queries" / name / "queries.jsonl").open(encoding="utf-8"):
            row = json.loads(line)
            rows.append({**row, "query_id": f"{row['query_id']}-{name}"})
    with io.atomic_write(path) as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def recipe(name: str, out: Path) -> PipelineConfig:
    return load_pipeline_config(text=demo_text(), overrides=[*GENERATORS.get(name, []), f"output_dir={out}", f"name={name}"])


def judged(config: PipelineConfig, name: str) -> PipelineConfig:
    other = JUDGE[name]
    select = {"judge_model": other} if other else {"judge_model": SMOLLM2, "judge_prompt": "inpars-gbq"}
    return dataclasses.replace(config, select=dataclasses.replace(config.select, **select))


def score(run, qrels, measure):
    return evaluate(run, qrels, [measure])[measure]


def chosen_run(sources, lexical, choice):
    alone, pooled = sources[choice["source"]]
    return alone if choice["bm25_weight"] == 0 else fuse(pooled, lexical, choice["bm25_weight"])


def judge_seed(config: PipelineConfig, name: str, seed: int, dataset, out: Path) -> dict:
    """The three choices of one seed's run and what each scores on the real questions."""
    run_dir = config.run_dir / f"seed-{seed}"
    cfg = dataclasses.replace(seeded(config, seed), output_dir=str(config.run_dir), name=f"seed-{seed}")
    ctx = load_context(
        cfg, dataset, run_dir=run_dir, stages=frozenset({"train", "select", "rerank", "retrieve"}),
        model=str(run_dir / "train" / "model"),
    )
    held = io.read_synthetic(run_dir / "negatives" / "validation.jsonl")
    judge_cfg = judged(cfg, name)
    judging = judging_queries(ctx, judge_generate(judge_cfg), out / "queries" / name / "judging.jsonl", held)
    # Real questions: every candidate's score, no gate (real judgements need none).
    test_queries = {qid: Query(qid, q.text) for qid, q in dataset.queries.items() if dataset.qrels.get(qid)}
    real_sources, real_first, real_lexical = candidates(ctx, cfg, test_queries)
    real = choose(real_sources, real_first, real_lexical, cfg.select.bm25_weights, dataset.qrels, MEASURE, score, gate=False)
    real_score = {(r["source"], r["bm25_weight"]): r[MEASURE] for r in real["candidates"]}
    floor = max(score(real_first, dataset.qrels, MEASURE), score(real_lexical, dataset.qrels, MEASURE))
    same = io.read_json(run_dir / "select" / "selection.json")
    queries = {q.query_id: Query(q.query_id, q.text) for q in judging}
    qrels = {q.query_id: {q.doc_id: 1} for q in judging}
    sources, first, lexical = candidates(ctx, judge_cfg, queries)
    cross = choose(sources, first, lexical, cfg.select.bm25_weights, qrels, MEASURE, score, gate=cfg.select.bm25_gate)
    best = real_score[(real["source"], real["bm25_weight"])]
    row = {
        "seed": seed, "floor": floor,
        "real": {"source": real["source"], "bm25_weight": real["bm25_weight"], "score": best, "gain": gain(real)},
    }
    for label, choice in (("same", same), ("cross", cross)):
        key = (choice["source"], choice["bm25_weight"])
        row[label] = {
            "source": key[0], "bm25_weight": key[1], "score": real_score[key], "regret": best - real_score[key],
            "same_source": key[0] == real["source"], "same_choice": key == (real["source"], real["bm25_weight"]),
            "at_floor": real_score[key] >= floor - 1e-12, "judged_on": choice["queries"], "gain": gain(choice),
            "same_verdict": (gain(choice) > 0) == (gain(real) > 0),
        }
    return row


def gain(choice: dict) -> float:
    """The trained model alone minus the untrained first stage alone, as a selection's candidates scored them: whether
    training helped, the verdict the select stage has to get right."""
    alone = {row["source"]: row[MEASURE] for row in choice["candidates"] if row["bm25_weight"] == 0}
    return alone["reranker"] - alone["first-stage"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("runs/bench-generators"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--conditions", default="smollm2,smollm2-chat,gemma,union")
    parser.add_argument(
        "--speed-only", type=int, metavar="N",
        help="only time each generator on N sampled documents (a child process each, one after another) and stop",
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [n.strip() for n in args.conditions.split(",") if n.strip()]
    setup_logging()
    out = args.output_dir
    if args.speed_only:
        speeds = {n: generate(n, out / "speed", (f"generate.num_docs={args.speed_only}",)) for n in names if n in GENERATORS}
        lines = ["| generator | documents | s/query | queries/s | peak RSS MiB |", "|---|---|---|---|---|"]
        lines += [
            f"| {n} | {g['summary']['documents']} | {g['s_per_query']:.3f} | {1 / g['s_per_query']:.2f} | "
            f"{g['peak_rss_mib']:.0f} |" for n, g in speeds.items()
        ]
        sys.stdout.write("\n".join(lines) + f"\n\nCPU flags: {cpu_flags()}; {os.cpu_count()} cores.\n")
        return
    dataset = load_dataset("faq-construction")
    results_file = out / "results.json"
    results = io.read_json(results_file) if results_file.is_file() else {}
    for name in names:
        if name in UNION:
            generation = {part: generate(part, out) for part in UNION[name]}
            queries = union(UNION[name], out)
        else:
            generation = generate(name, out)
            queries = out / "queries" / name / "queries.jsonl"
        config = recipe(name, out)
        run_seeds(config, seeds, dataset=dataset, queries=queries)
        metrics = io.read_json(config.run_dir / "metrics.json")
        choices = [judge_seed(config, name, seed, dataset, out) for seed in seeds]
        results[name] = {"generation": generation, "metrics": metrics["systems"], "choices": choices, "cpu": cpu_flags()}
        io.write_json(results_file, results)
    write_table(results, out)


def write_table(results: dict, out: Path) -> None:
    lines = [
        (
            "| generator | s/query | peak RSS MiB | nDCG@10 mean ± std [95%] | Δ zero-shot | p | select on own queries: "
            "verdict, source, regret | cross-generator: verdict, source, regret | below BM25/zero-shot (own / cross) |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        parts = r["generation"] if "wall_s" in r["generation"] else None
        if parts:
            speed, memory = f"{r['generation']['s_per_query']:.3f}", f"{r['generation']['peak_rss_mib']:.0f}"
        else:
            speed = " + ".join(f"{g['s_per_query']:.3f}" for g in r["generation"].values())
            memory = " / ".join(f"{g['peak_rss_mib']:.0f}" for g in r["generation"].values())
        stats = r["metrics"]["bi-encoder"][MEASURE]
        choices, n = r["choices"], len(r["choices"])
        agree = {
            label: f"{sum(c[label]['same_verdict'] for c in choices)}/{n}, {sum(c[label]['same_source'] for c in choices)}/{n}, "
            f"{sum(c[label]['regret'] for c in choices) / n:.4f}" for label in ("same", "cross")
        }
        below = "/".join(str(sum(not c[label]["at_floor"] for c in choices)) for label in ("same", "cross"))
        lines.append(
            f"| {name} | {speed} | {memory} | {stats['mean']:.4f} ± {stats['std']:.4f} "
            f"[{stats['ci'][0]:.3f}, {stats['ci'][1]:.3f}] | {stats['diff']:+.4f} | {stats['p_randomization']:.3g} | "
            f"{agree['same']} | {agree['cross']} | {below} of {n} |"
        )
    cpu = next(iter(results.values()))["cpu"] if results else ""
    md = "\n".join(lines) + f"\n\nCPU flags: {cpu}; {os.cpu_count()} cores.\n"
    with io.atomic_write(out / "results.md") as handle:
        handle.write(md)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
