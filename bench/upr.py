"""Is the generator a teacher? Its query likelihood as a reranker, against the run it reranks.

Distillation needs a scorer stronger than the model it teaches. The one other scorer the offline kit has is the
generator itself: log P(query | document), averaged over the query's tokens, as UPR (Sachan et al., 2022) reranks
with an LLM. This reranks the top ``--top-k`` of a run (the demo's zero-shot dense run) for ``--queries`` of the
real questions, spread over the collection, and scores both with the same qrels.

    python bench/upr.py runs/demo --queries 100 --top-k 20

Prints nDCG@10 of the run and of the query-likelihood reranking on the same queries, the paired tests between
them, and the scoring time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from inpars import io
from inpars.datasets import load_dataset
from inpars.evaluate import compare, per_query
from inpars.models import resolve

INSTRUCTION = "Passage: {passage}\nPlease write a question based on this passage.\nQuestion:"
"""UPR's prompt: the question is scored as the continuation of the passage and this instruction."""


def query_likelihood(model, tokenizer, pairs: list[tuple[str, str]], batch_size: int, max_doc_tokens: int) -> list[float]:
    """Mean log-probability of each query's tokens after the instruction with its document."""
    import torch

    scores: list[float] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        prefixes, queries = [], []
        for query, doc in chunk:
            passage = tokenizer.convert_tokens_to_string(tokenizer.tokenize(doc)[:max_doc_tokens])
            prefixes.append(tokenizer(INSTRUCTION.format(passage=passage), add_special_tokens=False)["input_ids"])
            queries.append(tokenizer(" " + query, add_special_tokens=False)["input_ids"])
        width = max(len(p) + len(q) for p, q in zip(prefixes, queries))
        ids = torch.full((len(chunk), width), pad)
        mask = torch.zeros_like(ids)
        for row, (p, q) in enumerate(zip(prefixes, queries)):
            ids[row, : len(p) + len(q)] = torch.tensor(p + q)
            mask[row, : len(p) + len(q)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
        for row, (p, q) in enumerate(zip(prefixes, queries)):
            picked = logits[row, len(p) - 1 : len(p) + len(q) - 1].gather(1, torch.tensor(q)[:, None])
            scores.append(float(picked.mean()))
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_run", type=Path, help="a run folder with retrieve/run.trec (the run to rerank)")
    parser.add_argument("--model", default="embedded:smollm2-135m")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-doc-tokens", type=int, default=200)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = io.read_json(args.source_run / "config.json")
    dataset = load_dataset(source["dataset"])
    run = io.read_trec_run(args.source_run / "retrieve" / "run.trec")
    judged = [qid for qid in dataset.queries if qid in run and dataset.qrels.get(qid)]
    step = max(1, len(judged) // args.queries)
    chosen = judged[::step][: args.queries]
    path = resolve(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    started = time.perf_counter()
    first: dict[str, dict[str, float]] = {}
    reranked: dict[str, dict[str, float]] = {}
    for qid in chosen:
        top = sorted(run[qid].items(), key=lambda item: -item[1])[: args.top_k]
        first[qid] = dict(top)
        pairs = [(dataset.queries[qid].text, dataset.docs[doc].text) for doc, _ in top]
        scores = query_likelihood(model, tokenizer, pairs, args.batch_size, args.max_doc_tokens)
        reranked[qid] = dict(zip((doc for doc, _ in top), scores))
    seconds = time.perf_counter() - started
    qrels = {qid: dataset.qrels[qid] for qid in chosen}
    systems = {"run": [per_query(first, qrels, ["nDCG@10"])], "query-likelihood": [per_query(reranked, qrels, ["nDCG@10"])]}
    stats = compare(systems, "run")
    base, upr = stats["run"]["nDCG@10"], stats["query-likelihood"]["nDCG@10"]
    sys.stdout.write(
        f"{len(chosen)} queries x top {args.top_k} ({len(chosen) * args.top_k} pairs, {seconds:.0f} s)\n"
        f"run nDCG@10 {base.mean:.4f} [{base.ci_low:.3f}, {base.ci_high:.3f}]\n"
        f"{args.model} query likelihood nDCG@10 {upr.mean:.4f} [{upr.ci_low:.3f}, {upr.ci_high:.3f}] "
        f"diff {upr.diff:+.4f} p (randomization) {upr.p_randomization:.3g} p (t) {upr.p_t:.3g}\n"
    )


if __name__ == "__main__":
    main()
