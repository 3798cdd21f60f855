"""What every reranker provides, and the reranking of a first-stage run that all of them share."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from inpars.data import Doc, Query, Run, in_shard, ranked
from inpars.errors import InparsError, InputError
from inpars.registry import Registry

logger = logging.getLogger(__name__)


class Reranker(Protocol):
    """Every registered reranker is built as ``cls(model, max_length=..., batch_size=..., device=...)`` and
    trained with the classmethod ``cls.train(examples, config, output_dir, device)``, which returns the model folder."""

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Relevance scores of (query, document) pairs, higher is better."""
        ...


rerankers = Registry("reranker")
rerankers.register("bi-encoder", "inpars.rerank.bi_encoder:BiEncoderReranker")
rerankers.register("cross-encoder", "inpars.rerank.cross_encoder:CrossEncoderReranker")
rerankers.register("monot5", "inpars.rerank.monot5:MonoT5Reranker")
rerankers.register("flan-t5", "inpars.rerank.monot5:FlanT5Reranker")


def length_sorted_batches(pairs: Sequence[tuple[str, str]], batch_size: int) -> list[list[int]]:
    """Indices of ``pairs`` in batches of similar length, so that little is spent on padding."""
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def score_in_batches(
    pairs: Sequence[tuple[str, str]], batch_size: int, score_batch: Callable[[list[tuple[str, str]]], list[float]]
) -> list[float]:
    """Score ``pairs`` in length-sorted batches with ``score_batch`` (under ``torch.inference_mode``), in input order."""
    import torch
    from tqdm.auto import tqdm

    scores = [0.0] * len(pairs)
    batches = length_sorted_batches(pairs, batch_size)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="rerank", unit="batch", disable=len(batches) < 4):
            for i, value in zip(batch, score_batch([pairs[i] for i in batch])):
                scores[i] = float(value)
    return scores


def check_run(run: Run, queries: Mapping[str, Query], docs: Mapping[str, Doc], source: object = "the run") -> None:
    """Refuse a run that is not of this dataset: a document the corpus lacks, or no query the dataset has."""
    known = [qid for qid in run if qid in queries]
    if run and not known:
        raise InputError(
            source, None, f"none of its {len(run)} queries is a query of the dataset (e.g. {next(iter(run))!r})",
            "rerank a run of the same dataset (--dataset)",
        )
    for qid, scores in run.items():
        missing = [doc_id for doc_id in scores if doc_id not in docs]
        if missing:
            raise InputError(
                source, None, f"query {qid!r} ranks document {missing[0]!r}, which is not in the dataset's corpus",
                "rerank a run of the same dataset (--dataset)",
            )
    if len(known) < len(run):
        logger.warning(
            "%s: %d of %d queries are not queries of the dataset; they are left out", source, len(run) - len(known), len(run)
        )


def rerank_run(reranker: Reranker, run: Run, queries: Mapping[str, Query], docs: Mapping[str, Doc], top_k: int) -> Run:
    """Rescore each query's first-stage top ``top_k``; deeper documents keep their order below the reranked ones.

    Each query's pairs are scored in batches of their own, so a query's scores never depend on the other queries of
    the run: a run reranked in shards of queries (:func:`shard_of_run`, :func:`merge_runs`) equals the whole.
    """
    check_run(run, queries, docs)
    out: Run = {}
    for qid, scores in run.items():
        if qid not in queries:
            continue
        order = [doc_id for doc_id, _ in ranked(scores)]
        head = order[:top_k]
        values = reranker.score([(queries[qid].text, docs[doc_id].full_text) for doc_id in head]) if head else []
        out[qid] = {doc_id: float(value) for doc_id, value in zip(head, values)}
        floor = min(out[qid].values(), default=0.0) - 1.0
        for position, doc_id in enumerate(order[top_k:]):
            out[qid][doc_id] = floor - position
    return out


def shard_of_run(run: Run, shard: int, num_shards: int) -> Run:
    """The queries of ``run`` that belong to ``shard`` (by a hash of the query id, so never by order or count)."""
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise InparsError(f"shard {shard} does not exist among {num_shards} shard(s): use --shard 0..{num_shards - 1}")
    return {qid: scores for qid, scores in run.items() if in_shard(qid, shard, num_shards)}


def merge_runs(paths: Sequence[str | Path]) -> Run:
    """One run from the TREC runs of the shards of one reranking, refusing a query found in two of them."""
    from inpars import io

    merged: Run = {}
    seen: dict[str, Path] = {}
    for path in map(Path, paths):
        for qid, scores in io.read_trec_run(path).items():
            if qid in seen:
                raise InputError(
                    path, None, f"query {qid!r} is also in {seen[qid]}", "merge the shards of one reranking, each once"
                )
            seen[qid] = path
            merged[qid] = scores
    return merged
