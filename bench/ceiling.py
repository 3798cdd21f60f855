"""How much could queries help at all? Real questions against synthetic ones, same documents, same training.

The documents are split in two halves by a hash of their id. One half's queries train the recipe's reranker, and the
other half's real questions, which no condition trains on, score it against the untrained first stage:

- ``real``: the collection's own questions about the first half's documents (what perfect synthetic queries would be);
- ``synthetic``: the source run's generated queries for the same documents.

Both go through the rest of the recipe unchanged (negatives, training, retrieval, reranking), without a filter and
without the select stage, once per training seed and per number of epochs. The difference between the two rows is
what the generator's queries lose against real ones; the ``real`` row is a ceiling for any filter or prompt.

    python bench/ceiling.py runs/demo --output-dir runs/bench-ceiling [--epochs 1,3] [--seeds 0]
        [--also gemma=runs/bench-generators/queries/gemma/queries.jsonl ...]

Each ``--also NAME=QUERIES`` adds a row trained on that file's queries for the same half of the documents (another
generator's, or the union of two). Every condition's queries are imported in place of generation.

Writes ``results.json`` and ``results.md`` (a table) into the output folder. Needs a collection whose queries each
have one relevant document (as faq-construction).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import generated_run, setup_logging

from inpars import io
from inpars.config import PipelineConfig, build
from inpars.evaluate import compare
from inpars.pipeline import baseline_system, run_seeds

logger = logging.getLogger("bench.ceiling")


def half(doc_id: str) -> int:
    """0 for a training document, 1 for a test document: a fixed hash, the same on every machine."""
    return zlib.crc32(doc_id.encode("utf-8")) % 2


def training_queries(kind: str, dataset, generated: list[dict]) -> list[dict]:
    """Rows in the synthetic-query format for the first half's documents: the collection's own questions (``real``),
    else the generated rows given."""
    if kind != "real":
        return [row for row in generated if half(row["doc_id"]) == 0]
    rows = []
    for qid, query in dataset.queries.items():
        relevant = [doc for doc, grade in dataset.qrels.get(qid, {}).items() if grade > 0]
        if len(relevant) == 1 and half(relevant[0]) == 0:
            rows.append({
                "query_id": f"{qid}-real", "doc_id": relevant[0], "text": query.text, "log_probs": [0.0],
                "prompt": "real", "model": "real", "finished": True,
            })
    return rows


def test_queries(dataset) -> list[str]:
    """The real questions about the second half's documents: no condition trains on them."""
    return [
        qid for qid in dataset.queries
        if any(half(doc) == 1 for doc, grade in dataset.qrels.get(qid, {}).items() if grade > 0)
    ]


def run_condition(source: dict, out: Path, kind: str, rows: list[dict], epochs: float, seeds: list[int], dataset):
    """The recipe on ``rows`` (imported in place of generation), without filter or selection."""
    data = json.loads(json.dumps(source))
    name = f"{kind}-epochs{epochs:g}"
    data.update(name=name, output_dir=str(out))
    data["filter"] = {}
    data["select"] = {}
    data["train"].update(epochs=epochs)
    config = build(PipelineConfig, data, source="bench/ceiling.py")
    queries = out / "queries" / f"{kind}.jsonl"
    queries.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_write(queries) as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    run_seeds(config, seeds, dataset=dataset, queries=queries)
    return config


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def scores_on(run_dir: Path, seeds: list[int], system: str, queries: list[str]) -> list[dict]:
    """Per-query scores of one system, restricted to ``queries``, one dict per seed."""
    out = []
    for seed in seeds:
        per_query = io.read_json(run_dir / f"seed-{seed}" / "evaluate" / "per_query.json")[system]
        out.append({measure: {q: values[q] for q in queries} for measure, values in per_query.items()})
    return out


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


def judged_gains(config: PipelineConfig, seed: int, dataset, generated: dict[str, list[dict]]) -> dict[str, float]:
    """The trained model's nDCG@10 minus the first stage's on each generator's queries for the test half's documents
    (each judged by its source document), as the select stage would search them."""
    from inpars.data import Query
    from inpars.evaluate import evaluate
    from inpars.pipeline import seeded
    from inpars.rerank.fusion import candidates
    from inpars.stage import load_context

    cfg = dataclasses.replace(seeded(config, seed), output_dir=str(config.run_dir), name=f"seed-{seed}")
    run_dir = config.run_dir / f"seed-{seed}"
    ctx = load_context(cfg, dataset, run_dir=run_dir, stages=frozenset({"train"}), model=str(run_dir / "train" / "model"))
    cfg = dataclasses.replace(cfg, select=dataclasses.replace(cfg.select, sources=("reranker", "first-stage")))
    gains = {}
    for name, rows in generated.items():
        test = [row for row in rows if half(row["doc_id"]) == 1 and row["text"].strip()]
        queries = {row["query_id"]: Query(row["query_id"], row["text"]) for row in test}
        qrels = {row["query_id"]: {row["doc_id"]: 1} for row in test}
        sources, first, _ = candidates(ctx, cfg, queries)
        gains[name] = evaluate(sources["reranker"][0], qrels, ["nDCG@10"])["nDCG@10"] - evaluate(first, qrels, ["nDCG@10"])[
            "nDCG@10"
        ]
    return gains


def judge_table(judged: list[dict], judges: list[str]) -> str:
    """Each trained model's gain over the first stage on the real questions and on each generator's queries, and how
    often a generator's verdict (a gain above zero or not) is the real questions'."""
    lines = [
        "| trained on | epochs | seed | real Δ | " + " | ".join(f"Δ on {j}'s queries" for j in judges) + " |",
        "|---|---|---|---|" + "---|" * len(judges),
    ]
    for r in judged:
        cells = " | ".join(f"{r[j]:+.4f}" for j in judges)
        lines.append(f"| {r['queries']} | {r['epochs']:g} | {r['seed']} | {r['real']:+.4f} | {cells} |")
    agree = " | ".join(f"{sum((r[j] > 0) == (r['real'] > 0) for r in judged)}/{len(judged)}" for j in judges)
    lines.append(f"| verdict as the real questions' | | | | {agree} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_run", type=Path, help="a run folder whose generate stage is done")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/bench-ceiling"))
    parser.add_argument("--epochs", default="1,3", help="training epochs, comma-separated (default: 1,3)")
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated (default: 0)")
    parser.add_argument(
        "--judge-agreement", action="store_true",
        help="also score each trained model against the first stage on every generator's queries for the test half's "
        "documents, and count how often their verdict (trained better or not) is the real questions'",
    )
    parser.add_argument(
        "--also", action="append", default=[], metavar="NAME=QUERIES",
        help="another generator's queries (a synthetic-query JSONL of the same collection), as one more row (repeatable)",
    )
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    epochs = [float(e) for e in args.epochs.split(",") if e.strip()]
    setup_logging()
    source, dataset = generated_run(args.source_run)
    generated = {"synthetic": read_rows(args.source_run / "generate" / "queries.jsonl")}
    for item in args.also:
        name, _, path = item.partition("=")
        if not name or not path or name in ("real", "synthetic"):
            raise SystemExit(f"--also {item}: give NAME=QUERIES.jsonl with a name other than real and synthetic")
        generated[name] = read_rows(Path(path))
    kinds = ["real", *generated]
    reranker = source["train"]["reranker"]
    held_out = test_queries(dataset)
    rows: list[dict] = []
    judged: list[dict] = []
    for n in epochs:
        systems = {}
        trained = {}
        for kind in kinds:
            training = training_queries(kind, dataset, generated.get(kind, []))
            config = run_condition(source, args.output_dir, kind, training, n, seeds, dataset)
            run_dir, first_stage = config.run_dir, baseline_system(config)  # the system metrics.json tests against
            systems.setdefault(first_stage, scores_on(run_dir, seeds[:1], first_stage, held_out))
            systems[kind] = scores_on(run_dir, seeds, reranker, held_out)
            trained[kind] = len(training)
            if args.judge_agreement:
                for seed in seeds:
                    real = _mean(systems[kind][seeds.index(seed)]["nDCG@10"]) - _mean(systems[first_stage][0]["nDCG@10"])
                    judged.append({"queries": kind, "epochs": n, "seed": seed, "real": real,
                                   **judged_gains(config, seed, dataset, generated)})
        stats = compare(systems, baseline=first_stage)
        for kind in kinds:
            rows.append({"queries": kind, "epochs": n, "trained_on": trained[kind], "test_queries": len(held_out),
                         "first_stage": stats[first_stage]["nDCG@10"].as_dict(), "trained": stats[kind]["nDCG@10"].as_dict()})
        io.write_json(args.output_dir / "results.json", {"rows": rows, "judged": judged})
    lines = [
        "| queries trained on | epochs | count | first stage nDCG@10 | trained nDCG@10 [95%] | Δ | p |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["trained"]
        spread = f" ± {t['std']:.4f}" if t["std"] is not None else ""
        lines.append(
            f"| {r['queries']} | {r['epochs']:g} | {r['trained_on']} | {r['first_stage']['mean']:.4f} | "
            f"{t['mean']:.4f}{spread} [{t['ci'][0]:.3f}, {t['ci'][1]:.3f}] | {t['diff']:+.4f} | {t['p_randomization']:.3g} |"
        )
    if judged:
        lines += ["", judge_table(judged, list(generated))]
    md = "\n".join(lines)
    with io.atomic_write(args.output_dir / "results.md") as handle:
        handle.write(md + "\n")
    sys.stdout.write(md + "\n")


if __name__ == "__main__":
    main()
