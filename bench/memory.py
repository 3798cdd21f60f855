"""Peak resident memory of bi-encoder training and of reranking, against the model's size and the batch.

Each measurement runs in a fresh process (peak RSS is a high-water mark, so processes cannot share it): the real
training path (``BiEncoderReranker.train``, the Hugging Face Trainer) for a few steps on faq-construction answers,
each query with its positive and 4 negatives, as the demo trains; and the real reranking path
(``BiEncoderReranker.score``) on query-document pairs. Reported: the process's peak RSS, the RSS once the model is
loaded (the baseline of the same process), their ratio, and seconds per step. Model sizes are all-MiniLM-L6-v2 with
its layers cut to 3 or repeated to 12.

    PYTHONPATH=. python bench/memory.py --batches 8 32 --layers 3 6 12 --steps 2
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

logger = logging.getLogger("bench.memory")


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def model_with_layers(layers: int, folder: Path) -> tuple[str, int]:
    """all-MiniLM-L6-v2 with ``layers`` encoder layers (cut, or repeated), saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer

    from inpars.models import MINILM, resolve

    encoder = SentenceTransformer(resolve(MINILM), device="cpu")
    bert = encoder[0].auto_model
    original = list(bert.encoder.layer)
    bert.encoder.layer = torch.nn.ModuleList([copy.deepcopy(original[i % len(original)]) for i in range(layers)])
    bert.config.num_hidden_layers = layers
    encoder.save(str(folder))
    return str(folder), sum(p.numel() for p in bert.parameters())


def training_examples(count: int, negatives: int = 4, long: bool = False):
    """Each query (a document's first 8 words) with its document and ``negatives`` others; ``long``: every document
    joined with the ones after it to at least 300 words, so each fills the 256 tokens of the demo's max_length (the
    collections whose training reached 8.6 and 11.1 GB had documents longer than faq-construction's answers)."""
    from inpars.data import Doc, TrainingExample
    from inpars.datasets import load_dataset

    docs = list(load_dataset("faq-construction").docs.values())
    if long:
        joined = []
        for i, doc in enumerate(docs):
            words: list[str] = []
            for other in docs[i:] + docs[:i]:
                words += other.text.split()
                if len(words) >= 300:
                    break
            joined.append(Doc(doc.doc_id, " ".join(words)))
        docs = joined
    rng = random.Random(0)
    out = []
    for i, doc in enumerate(docs[:count]):
        query = " ".join(doc.text.split()[:8])
        out.append(TrainingExample(f"q{i}", query, doc.doc_id, doc.full_text, 1))
        for other in rng.sample([d for d in docs if d.doc_id != doc.doc_id], negatives):
            out.append(TrainingExample(f"q{i}", query, other.doc_id, other.full_text, 0))
    return out


def one(args: argparse.Namespace) -> dict:
    """One measurement in this process."""
    import torch

    from inpars.config import TrainConfig
    from inpars.rerank.bi_encoder import BiEncoderReranker

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        layers = args.layers[0]
        model, params = model_with_layers(layers, Path(tmp) / "model")
        if args.what == "train":
            examples = training_examples(args.batch * args.steps, long=args.long)
            config = TrainConfig(
                reranker="bi-encoder", model=model, max_steps=args.steps, batch_size=args.batch, max_length=args.max_length,
                gradient_checkpointing=args.checkpointing, warmup_ratio=0.0,
            )
            loaded = rss_mib()
            started = time.perf_counter()
            BiEncoderReranker.train(examples, config, Path(tmp) / "out", device="cpu")
            seconds = (time.perf_counter() - started) / args.steps
        else:
            reranker = BiEncoderReranker(model, max_length=args.max_length, batch_size=args.batch, device="cpu")
            pairs = [(e.query, e.doc) for e in training_examples(args.pairs // 5, long=args.long)]
            loaded = rss_mib()
            started = time.perf_counter()
            reranker.score(pairs)
            seconds = time.perf_counter() - started
    return {
        "what": args.what,
        "layers": layers,
        "params_m": round(params / 1e6, 1),
        "batch": args.batch,
        "checkpointing": args.checkpointing,
        "loaded_mib": round(loaded),
        "peak_mib": round(peak_mib()),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[8, 16, 32],
        help="training: queries per step (each with 5 documents); rerank: texts per forward pass",
    )
    parser.add_argument("--layers", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--pairs", type=int, default=2000, help="rerank: pairs scored")
    parser.add_argument("--what", choices=["train", "rerank", "both"], default="both")
    parser.add_argument("--long", action="store_true", help="documents of at least 300 words (each fills max_length)")
    parser.add_argument("--output", type=Path, help="write the rows as JSON")
    # One measurement in a child process (used by the loop below).
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        logging.disable(logging.WARNING)
        print(json.dumps(one(args)))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    kinds = ["train", "rerank"] if args.what == "both" else [args.what]
    grid = [
        (what, layers, batch, ckpt)
        for what in kinds
        for layers in args.layers
        for batch in args.batches
        for ckpt in ((False, True) if what == "train" else (False,))
    ]
    for what, layers, batch, ckpt in grid:
        command = [
            sys.executable, __file__, "--one", "--what", what, "--layers", str(layers), "--batch", str(batch), "--steps",
            str(args.steps), "--max-length", str(args.max_length), "--pairs", str(args.pairs),
        ] + (["--checkpointing"] if ckpt else []) + (["--long"] if args.long else [])
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        )
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["ratio"] = round(row["peak_mib"] / row["loaded_mib"], 2)
        rows.append(row)
        logger.info("%s", row)
    print(
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch threads default; max_length "
        f"{args.max_length}{'; documents of 300+ words' if args.long else ''}"
    )
    print(
        "| what | layers | params (M) | batch | checkpointing | RSS loaded (MiB) | peak RSS (MiB) | peak / loaded | s per step "
        "(train) or in all (rerank) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['what']} | {r['layers']} | {r['params_m']} | {r['batch']} | {'yes' if r['checkpointing'] else 'no'} | "
            f"{r['loaded_mib']} | {r['peak_mib']} | {r['ratio']} | {r['seconds']} |"
        )
    if args.output:
        from inpars import io

        io.write_json(args.output, rows)


if __name__ == "__main__":
    main()
