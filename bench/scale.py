"""Every CPU-side stage from ten thousand to a million documents: wall time, peak resident memory and how each grows.

    python bench/scale.py [--sizes 10000,100000,1000000] [--with-5m] [--generated 100000] [--mine 10000,100000]
                          [--work DIR] [--output results.json] [--no-lucene]

No download: each size is a deterministic synthetic BEIR folder (``corpus.jsonl``, ``queries.jsonl``,
``qrels/test.tsv``) written once under ``--work`` and reused.

- Words follow a Zipf law (exponent 1.07, a vocabulary of 500,000 words; the 42 most frequent are English
  stopwords, the rest made-up syllable words), so posting lists are as skewed as in real text.
- Document lengths in words are log-normal with the mean 84.8 words that BEIR reports for its FEVER and Climate-FEVER
  corpus of 5.4 million Wikipedia abstracts (Thakur et al., 2021, Table 1), sigma 0.6 (95% of documents between 26
  and 270 words), cut to 5..1,000. Two documents in three have a title of 2 to 6 words.
- 1,000 test queries of 3 to 6 words, each drawn from the non-stopwords of one document (its one relevant document).

Each stage runs in a process of its own, as ``inpars`` runs a stage command, with what it reads loaded first (not
timed): the time is the stage's own, the memory the process's peak resident set while the stage ran (the corpus it
holds included; the peak is reset before the stage through ``/proc/self/clear_refs``). The stages go through the
library exactly as ``inpars run`` calls them:

- ``load``: the BEIR folder into the data model; ``fix_text``: the recipe's text repair (ftfy) of every text;
- ``sample``: 100,000 documents (or all) sampled for generation;
- ``generate``, ``generate-resume``, ``generate-shards``: the generate stage's bookkeeping with a trivial stand-in
  generator (a few words of the document, seeded log-probabilities): writing every query, resuming a run killed
  half-way, and two shards plus their merge;
- ``bm25s-index``/``bm25s-search`` and ``lucene-index``/``lucene-search``: BM25 over the corpus, searching the
  1,000 test queries to depth 1,000;
- ``filter``: the filter stage on the generated queries (LM-score top 10%, dedup, BM25 round-trip consistency);
- ``negatives-<n>``: the negatives stage for n generated queries at depth 1,000 (one random negative each);
- ``retrieve``, ``rerank``, ``evaluate``: the 1,000 test queries to depth 1,000, reranked through the rerank stage and
  scored. The reranker is a stand-in without a model (word overlap): the stage's own work (reading the run, pairing
  a million documents with their queries, ranking, writing) is what grows with the corpus. Even the tiny random
  monoT5 (``embedded:t5-tiny-random``, d_model 32) costs about 3 ms a pair on a 2-core CPU, 50 minutes for a million
  pairs; GPU reranking rates are ``bench/gpu_rehearsal.py``'s.

The last table gives each stage's growth exponent: the slope of log time and of log memory (peak less the
interpreter's resident set before loading) against log corpus size, fitted over the sizes run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

from _common import cpu_flags

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

STOPWORDS = [
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
    "i", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "they", "you", "were", "her", "she",
    "there", "been", "one", "all", "we", "their", "has", "would",
]
VOCABULARY = 500_000
ZIPF = 1.07
MEAN_WORDS = 84.8
SIGMA = 0.6
TEST_QUERIES = 1000
SEED = 13
DEPTH = 1000
STAGES = (
    "load", "fix_text", "sample", "generate", "generate-resume", "generate-shards", "bm25s-index", "bm25s-search",
    "lucene-index", "lucene-search", "filter", "negatives", "retrieve", "rerank", "evaluate",
)

# ---------------------------------------------------------------------------------------------- the collection


def _word(rank: int) -> str:
    """A made-up word for a vocabulary rank: syllables of the rank's digits in base 60, so it never collides."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels][:60]
    out = []
    while True:
        rank, digit = divmod(rank, 60)
        out.append(syllables[digit])
        if rank == 0:
            break
    return "".join(out) + ("x" if len(out) == 1 else "")


def write_collection(folder: Path, size: int) -> None:
    """The synthetic BEIR folder of ``size`` documents (deterministic for a size), written once."""
    import numpy as np

    from inpars import io

    if (folder / "qrels" / "test.tsv").is_file():
        return
    rng = np.random.default_rng(SEED)
    words = STOPWORDS + [_word(r) for r in range(VOCABULARY - len(STOPWORDS))]
    weights = 1.0 / np.arange(1, VOCABULARY + 1) ** ZIPF
    cumulative = np.cumsum(weights / weights.sum())
    mu = math.log(MEAN_WORDS) - SIGMA**2 / 2  # the log-normal's mean is exp(mu + sigma^2 / 2)
    chosen = random.Random(SEED).sample(range(size), min(TEST_QUERIES, size))
    wanted = {doc: i for i, doc in enumerate(chosen)}
    queries: dict[int, str] = {}

    def documents():
        block = 50_000
        for start in range(0, size, block):
            count = min(block, size - start)
            lengths = np.clip(rng.lognormal(mu, SIGMA, count).round().astype(int), 5, 1000)
            titled = rng.random(count) < 2 / 3
            title_lengths = rng.integers(2, 7, count)
            total = int(lengths.sum() + (title_lengths * titled).sum())
            ranks = np.searchsorted(cumulative, rng.random(total)).tolist()
            at = 0
            for k in range(count):
                n = start + k
                title = ""
                if titled[k]:
                    title = " ".join(words[r] for r in ranks[at : at + title_lengths[k]]).capitalize()
                    at += int(title_lengths[k])
                body = ranks[at : at + lengths[k]]
                at += int(lengths[k])
                if n in wanted:
                    content = [words[r] for r in body if r >= len(STOPWORDS)] or [words[body[0]]]
                    pick = random.Random(n)
                    queries[n] = " ".join(pick.sample(content, min(len(content), pick.randint(3, 6))))
                yield {"_id": f"d{n}", "title": title, "text": " ".join(words[r] for r in body).capitalize() + "."}

    io.write_jsonl(folder / "corpus.jsonl", documents())
    io.write_jsonl(folder / "queries.jsonl", ({"_id": f"q{wanted[n]}", "text": queries[n]} for n in chosen))
    io.write_qrels_tsv(folder / "qrels" / "test.tsv", {f"q{wanted[n]}": {f"d{n}": 1} for n in chosen})


# ---------------------------------------------------------------------------------------------- measuring


def rss_kb(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Make the process's peak resident set (VmHWM) its current one, so the next peak is the stage's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class StandInGenerator:
    """A generator with the backend interface and no model: a few words of the document, seeded log-probabilities."""

    max_length = None

    def truncate(self, text: str, max_tokens: int) -> str:
        from inpars.generate.base import truncate_words

        return truncate_words(text, max_tokens)

    def prompt_length(self, request) -> int | None:
        return None

    def generate(self, requests, max_new_tokens: int, temperature: float, top_p: float):
        from inpars.generate.base import Generation

        out = []
        for request in requests:
            rng = random.Random(request.seed)
            words = request.suffix.split("Document:")[-1].split()[:-2] or ["empty"]
            picked = rng.sample(words, min(len(words), rng.randint(3, 6)))
            out.append(Generation(" ".join(w.strip(".,").lower() for w in picked), tuple(-rng.random() * 3 for _ in picked)))
        return out


class OverlapReranker:
    """A reranker with the registry's interface and no model: the share of the query's words the document holds."""

    def __init__(self, model: str, max_length: int = 256, batch_size: int = 64, device: str = "auto") -> None:
        self.max_length = max_length

    def score(self, pairs) -> list[float]:
        out = []
        for query, doc in pairs:
            words = set(query.lower().split())
            out.append(len(words.intersection(doc.lower().split()[: self.max_length])) / max(1, len(words)))
        return out


def register_stand_ins() -> None:
    from inpars.rerank import rerankers

    if "stand-in" not in rerankers.names():
        rerankers.register("stand-in", f"{__name__}:OverlapReranker")


class Interrupted(Exception):
    pass


class FailingGenerator(StandInGenerator):
    """Stops after ``batches`` batches, as a killed run would."""

    def __init__(self, batches: int) -> None:
        self.left = batches

    def generate(self, requests, max_new_tokens: int, temperature: float, top_p: float):
        if self.left == 0:
            raise Interrupted
        self.left -= 1
        return super().generate(requests, max_new_tokens, temperature, top_p)


def _config(folder: Path, generated: int, run_dir: Path):
    from inpars.config import load_pipeline_config

    register_stand_ins()
    recipe = f"""
name: scale
dataset: {folder}
output_dir: {run_dir.parent}
generate: {{backend: hf, model: stand-in, prompt: inpars, num_docs: {generated}, batch_size: 256}}
filter:
  steps:
    - {{name: lm_score, method: mean_log_probs, top_k: {max(1, generated // 10)}}}
    - {{name: dedup}}
    - {{name: consistency, retriever: bm25s, k: 3, depth: 100}}
negatives: {{depth: {DEPTH}, num_negatives: 1, strategy: random}}
retrieve: {{backend: bm25s, top_k: {DEPTH}}}
rerank: {{reranker: stand-in, model: none, top_k: {DEPTH}, max_length: 256}}
"""
    return load_pipeline_config(text=recipe)


def child(stage: str, folder: Path, run_dir: Path, generated: int, mine: int) -> dict:
    """Run one stage in this process and return its time and memory."""
    import logging

    from inpars import io
    from inpars.datasets import load_dataset
    from inpars.stage import Context

    logging.basicConfig(level=logging.WARNING)
    base = rss_kb()
    cfg = _config(folder, generated, run_dir)
    stages = frozenset({"generate", "filter", "negatives", "retrieve", "rerank", "evaluate"})
    if stage != "load":
        data = load_dataset(str(folder))
        ctx = Context(dataset=data, config=cfg, run_dir=run_dir, stages=stages)
    generate_dir = run_dir / "generate"
    queries = generate_dir / "queries.jsonl"
    if stage.startswith("negatives"):
        rows = io.read_synthetic(queries)[:mine]
        subset = run_dir / "negatives-input" / f"{mine}.jsonl"
        io.write_synthetic(subset, rows)
        ctx.inputs = {"filter/kept.jsonl": subset}
        ctx.retriever(ctx.bm25)
    elif stage in ("filter", "bm25s-search", "retrieve"):
        ctx.retriever(ctx.bm25)
    elif stage == "lucene-search":
        import dataclasses

        ctx.retriever(dataclasses.replace(cfg.retrieve, backend="pyserini"))
    elif stage == "rerank":
        ctx.scorer(cfg.rerank.model)
        ctx.model = cfg.rerank.model
    elif stage.startswith("generate"):
        from inpars.generate.stage import meta_path, partial_meta_path, partial_path

        work = run_dir / stage
        for name in ("queries.jsonl", "shard-0.jsonl", "shard-1.jsonl"):
            for path in (work / name, partial_path(work / name), meta_path(work / name), partial_meta_path(work / name)):
                path.unlink(missing_ok=True)
        if stage == "generate-resume":
            from inpars.generate.stage import generate_queries

            batches = math.ceil(min(generated, len(data.docs)) / cfg.generate.batch_size)
            try:
                generate_queries(data.docs.values(), cfg.generate, work / "queries.jsonl", FailingGenerator(batches // 2))
            except Interrupted:
                pass

    reset_peak()
    before = rss_kb()
    started = time.perf_counter()
    summary = run(stage, ctx if stage != "load" else None, cfg, folder, run_dir)
    seconds = time.perf_counter() - started
    return {"stage": stage, "seconds": seconds, "peak_kb": rss_kb("VmHWM"), "before_kb": before, "base_kb": base, **summary}


def run(stage: str, ctx, cfg, folder: Path, run_dir: Path) -> dict:
    """The measured part of ``stage``."""
    import dataclasses

    from inpars.pipeline import stage_objects

    stage_object = stage_objects()
    if stage == "load":
        from inpars.datasets import load_dataset

        data = load_dataset(str(folder))
        return {"docs": len(data.docs)}
    if stage == "fix_text":
        return {"docs": len(ctx.dataset.with_fixed_text().docs)}
    if stage == "sample":
        from inpars.generate.stage import sample_docs

        return {"sampled": len(sample_docs(ctx.dataset.docs.values(), cfg.generate.num_docs, cfg.generate.seed))}
    if stage.startswith("generate"):
        from inpars.generate.stage import generate_queries, merge_shards

        work = run_dir / stage
        docs = ctx.dataset.docs.values()
        if stage == "generate-shards":
            outputs = [work / f"shard-{k}.jsonl" for k in range(2)]
            for k, output in enumerate(outputs):
                generate_queries(docs, cfg.generate, output, StandInGenerator(), shard=k, num_shards=2)
            summary = merge_shards(outputs, work / "queries.jsonl")
        else:
            summary = generate_queries(docs, cfg.generate, work / "queries.jsonl", StandInGenerator())
        if stage == "generate":
            target = run_dir / "generate" / "queries.jsonl"
            os.replace(work / "queries.jsonl", target)
        return {"generated": summary.generated, "resumed": summary.resumed}
    if stage in ("bm25s-index", "lucene-index"):
        backend = "bm25s" if stage == "bm25s-index" else "pyserini"
        from inpars.retrieve import retrievers

        retrievers.get(backend)(dataclasses.replace(cfg.retrieve, backend=backend)).index(ctx.dataset.docs.values())
        return {}
    if stage in ("bm25s-search", "lucene-search"):
        settings = cfg.retrieve if stage == "bm25s-search" else dataclasses.replace(cfg.retrieve, backend="pyserini")
        found = ctx.retriever(settings).search(ctx.dataset.queries, DEPTH)
        return {"queries": len(found), "hits": sum(len(v) for v in found.values())}
    name = "negatives" if stage.startswith("negatives") else stage
    folder_out = run_dir / name
    folder_out.mkdir(parents=True, exist_ok=True)
    return stage_object[name].run(ctx, cfg, folder_out)


# ---------------------------------------------------------------------------------------------- the table


def slope(xs: list[float], ys: list[float]) -> float | None:
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(points) < 2:
        return None
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else None


def table(results: list[dict]) -> str:
    sizes = sorted({r["size"] for r in results})
    names = [s for s in dict.fromkeys(r["stage"] for r in results)]
    head = "| stage | " + " | ".join(f"{n:,} docs" for n in sizes) + " | slope (time) | slope (memory) |"
    lines = [head, "|" + "---|" * (len(sizes) + 3)]
    for name in names:
        rows = {r["size"]: r for r in results if r["stage"] == name}
        cells = []
        for n in sizes:
            r = rows.get(n)
            cells.append("" if r is None or "error" in r else f"{r['seconds']:.1f} s, {r['peak_kb'] / 2**20:.2f} GiB")
        done = [rows[n] for n in sizes if n in rows and "error" not in rows[n]]
        time_slope = slope([r["size"] for r in done], [r["seconds"] for r in done])
        memory_slope = slope([r["size"] for r in done], [max(1, r["peak_kb"] - r["base_kb"]) for r in done])
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {'' if time_slope is None else f'{time_slope:.2f}'} | "
            f"{'' if memory_slope is None else f'{memory_slope:.2f}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="corpus sizes, comma-separated")
    parser.add_argument("--with-5m", action="store_true", help="add 5,000,000 documents (about 3 GB on disk)")
    parser.add_argument("--generated", type=int, default=100_000, help="documents sampled for generation (one query each)")
    parser.add_argument("--mine", default="10000,100000", help="query counts the negatives stage mines for")
    parser.add_argument("--stages", default=",".join(STAGES), help="the stages to run, comma-separated")
    parser.add_argument("--no-lucene", action="store_true", help="leave out the Lucene (pyserini) stages")
    parser.add_argument("--work", default="runs/bench-scale", help="collections, indexes and run folders")
    parser.add_argument("--output", help="write every measurement as JSON")
    parser.add_argument("--child", nargs=5, metavar=("STAGE", "FOLDER", "RUN", "GENERATED", "MINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, folder, run_dir, generated, mine = args.child
        result = child(stage, Path(folder), Path(run_dir), int(generated), int(mine))
        print("RESULT " + json.dumps(result), flush=True)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s] + ([5_000_000] if args.with_5m else [])
    mine = [int(m) for m in args.mine.split(",") if m]
    wanted = [s for s in args.stages.split(",") if s]
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise SystemExit(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    if args.no_lucene:
        wanted = [s for s in wanted if not s.startswith("lucene")]
    work = Path(args.work).resolve()
    print(f"CPU: {platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, flags: {cpu_flags()}")
    results: list[dict] = []
    for size in sizes:
        folder = work / f"collection-{size}"
        started = time.perf_counter()
        write_collection(folder, size)
        print(f"{size:,} documents: collection ready in {time.perf_counter() - started:.0f} s", flush=True)
        run_dir = work / f"run-{size}"
        (run_dir / "generate").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "INPARS_CACHE": str(work / f"cache-{size}")}
        for stage in wanted:
            # One query per sampled document: a corpus smaller than a query count has not that many to mine for.
            counts = [m for m in mine if m <= min(args.generated, size)]
            variants = [(f"negatives-{m:,}", m) for m in counts] if stage == "negatives" else [(stage, 0)]
            for label, count in variants:
                command = [sys.executable, __file__, "--child", stage if stage != "negatives" else f"negatives-{count}",
                           str(folder), str(run_dir), str(args.generated), str(count)]
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
                if done.returncode or line is None:
                    result = {"stage": label, "size": size, "error": (done.stderr or done.stdout)[-600:]}
                    print(f"  {label}: FAILED\n{result['error']}", flush=True)
                else:
                    result = {**json.loads(line[7:]), "stage": label, "size": size}
                    print(f"  {label:18s} {result['seconds']:8.1f} s  peak {result['peak_kb'] / 2**20:6.2f} GiB", flush=True)
                results.append(result)
    print()
    print(table(results))
    if args.output:
        from inpars import io

        io.write_json(args.output, {"cpu_flags": cpu_flags(), "cores": len(os.sched_getaffinity(0)), "results": results})


if __name__ == "__main__":
    main()
