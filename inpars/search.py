"""Trying a trained reranker on your own questions: the top documents of a collection for each.

Given a run folder, the search is the run's own system: its collection, its first stage, and the system its select
stage chose (the trained reranker, that reranker fused with BM25 at a weight, or the first stage), applied by the code
the rerank stage applies to the test queries, so a test query searched here ranks as in ``rerank/run.trec``. Given a
model folder alone, the collection and the reranker kind are named by the caller and BM25 is the first stage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from inpars import io
from inpars.config import PipelineConfig, RerankConfig, build
from inpars.data import Query, ranked
from inpars.errors import InparsError, InputError
from inpars.stage import Context

logger = logging.getLogger(__name__)

SNIPPET = 160
"""Characters of a document shown with a hit."""

USAGE = "give a run folder (runs/<name>) or a model folder with --dataset and --reranker"


@dataclass(frozen=True)
class Hit:
    rank: int
    doc_id: str
    score: float
    title: str
    snippet: str


@dataclass(frozen=True)
class SearchResult:
    system: dict
    """What ranked: the run or model, the collection, the first stage, the reranker, the chosen source and BM25 weight."""
    queries: dict[str, Query]
    hits: dict[str, list[Hit]] = field(default_factory=dict)
    """query_id -> the top hits, best first."""

    def as_dict(self) -> dict:
        return {
            "system": self.system,
            "queries": [
                {
                    "query_id": qid,
                    "query": query.text,
                    "hits": [vars(hit) for hit in self.hits.get(qid, [])],
                }
                for qid, query in self.queries.items()
            ],
        }


def load_queries(question: str | None = None, path: str | Path | None = None) -> dict[str, Query]:
    """One question, or a file of them: a BEIR queries file (``.jsonl``, ``_id`` and ``text``) or plain text, one
    question a line (blank lines skipped; a question's id is its line number)."""
    if (question is None) == (path is None):
        raise InparsError(
            "give one question or a file of questions (--queries FILE), "
            + ("not both" if question is not None else "e.g. inpars search runs/demo \"who needs a building permit?\"")
        )
    if path is None:
        text = " ".join(str(question).split())
        if not text:
            raise InparsError('the query is empty; ask a question, e.g. inpars search runs/demo "who needs a building permit?"')
        return {"1": Query("1", text)}
    path = Path(path)
    if path.suffix == ".jsonl":
        queries = {qid: Query(qid, " ".join(q.text.split())) for qid, q in io.read_beir_queries(path).items()}
        empty = next((qid for qid, q in queries.items() if not q.text), None)
        if empty is not None:
            raise InputError(path, None, f"query {empty!r} has no text", "give every query a text")
        return queries
    lines = io.iter_lines(path, "file of queries")
    queries = {str(lineno): Query(str(lineno), " ".join(line.split())) for lineno, line in lines if line.strip()}
    if not queries:
        raise InputError(path, None, "holds no queries", "write one question a line")
    return queries


def search(
    target: str | Path,
    queries: Mapping[str, Query],
    *,
    top_k: int = 10,
    dataset: str | None = None,
    reranker: str | None = None,
) -> SearchResult:
    """The top ``top_k`` documents for each query, ranked as the run ``target`` ranks (its folder), or by the model
    ``target`` (a folder, or an embedded name or Hugging Face id) of kind ``reranker`` over BM25's candidates in the
    collection ``dataset``."""
    from inpars.rerank.stage import NO_SELECTION, final_run

    if top_k < 1:
        raise InparsError(f"--top-k is {top_k}; give 1 or more")
    if not queries:
        raise InparsError("no queries to search")
    path = Path(target)
    if _is_run(path):
        ctx, choice, system = _run_context(path, dataset, reranker)
    else:
        ctx, system = _model_context(target, dataset, reranker)
        choice = NO_SELECTION
    cfg = ctx.config
    weight = float(choice["bm25_weight"])
    queries = dict(queries)
    first = ctx.retriever(cfg.retrieve).search(queries, cfg.retrieve.top_k)
    lexical = first if ctx.first_is_bm25 or weight == 0 else ctx.retriever(ctx.bm25).search(queries, ctx.bm25.top_k)
    run, _ = final_run(ctx, first, lexical, queries, choice["source"], weight)
    docs = ctx.dataset.docs
    hits = {
        qid: [
            Hit(rank, doc_id, float(score), docs[doc_id].title, _snippet(docs[doc_id].text))
            for rank, (doc_id, score) in enumerate(ranked(run.get(qid, {}))[:top_k], start=1)
        ]
        for qid in queries
    }
    return SearchResult(system=system, queries=queries, hits=hits)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1].rstrip() + "…"


def _is_run(path: Path) -> bool:
    """A run folder holds the ``config.json`` of a recipe (a model folder's ``config.json`` is a transformers config)."""
    record = path / "config.json"
    if not record.is_file():
        return False
    data = io.read_json(record)
    return isinstance(data, dict) and {"dataset", "retrieve", "rerank"} <= set(data)


def _run_context(folder: Path, dataset: str | None, reranker: str | None) -> tuple[Context, dict, dict]:
    """The run's recipe, collection and model, and the choice its select stage made."""
    from inpars.datasets import content_fingerprint
    from inpars.models import MINILM
    from inpars.models import check as check_model
    from inpars.pipeline import DATASET_RECORD, data_fingerprint
    from inpars.rerank.stage import NO_SELECTION
    from inpars.stage import load_context

    if dataset is not None or reranker is not None:
        raise InparsError(
            f"{folder} is a run folder: it searches its own collection with its own model; drop --dataset and --reranker"
        )
    record = folder / "config.json"
    data = io.read_json(record)
    if "seeds" in data:
        example = folder / f"seed-{data['seeds'][0]}"
        raise InparsError(f"{folder} is a run of {len(data['seeds'])} seeds, one model each; search one of them, e.g. {example}")
    cfg: PipelineConfig = build(PipelineConfig, data, str(record))
    trained = folder / "train" / "model"
    model = cfg.rerank.model or str(trained)
    if cfg.rerank.model is None and not trained.is_dir():
        raise InparsError(
            f"{folder} has no trained model ({trained} is missing): finish the run first (inpars run), or search a model "
            "folder with --dataset and --reranker"
        )
    check_model(model)
    stages = {"retrieve", "rerank"}
    choice = NO_SELECTION
    if cfg.rerank.model is None:
        stages.add("train")
        if cfg.select.enabled:
            stages.add("select")
            selection = folder / "select" / "selection.json"
            if not selection.is_file():
                raise InparsError(
                    f"{folder}: its select stage has not chosen the final system yet ({selection} is missing); finish the run "
                    "first (inpars run)"
                )
            choice = io.read_json(selection)
    ctx = load_context(cfg, run_dir=folder, model=model, stages=frozenset(stages))
    now = data_fingerprint(cfg.dataset, content_fingerprint(ctx.dataset), cfg.fix_text)
    recorded = io.read_json(folder / DATASET_RECORD).get("fingerprint") if (folder / DATASET_RECORD).is_file() else None
    if recorded is not None and recorded != now:
        logger.warning(
            "the collection '%s' is not what the run was made on (fingerprint %s, the run's %s): the hits come from it as "
            "it is now",
            cfg.dataset,
            now,
            recorded,
        )
    system = {
        "run": str(folder),
        "dataset": cfg.dataset,
        "first_stage": cfg.retrieve.backend,
        "first_stage_model": cfg.retrieve.model or MINILM if cfg.retrieve.backend == "dense" else None,
        "reranker": ctx.reranker,
        "model": model,
        "source": choice["source"],
        "bm25_weight": float(choice["bm25_weight"]),
        "depth": cfg.rerank.top_k,
    }
    return ctx, choice, system


def _model_context(target: str | Path, dataset: str | None, reranker: str | None) -> tuple[Context, dict]:
    """A model alone: the collection and kind the caller names, BM25's top 100 reranked."""
    from inpars.datasets import check_dataset_name
    from inpars.models import check as check_model
    from inpars.models import resolve
    from inpars.rerank.base import rerankers
    from inpars.rerank.training import read_metadata
    from inpars.stage import load_context

    path = Path(target)
    if path.is_file():
        raise InparsError(f"{target} is a file, not a run or model folder; {USAGE}")
    if not path.exists() and dataset is None and reranker is None:
        raise InparsError(f"{target}: no such run folder; {USAGE}")
    if path.is_dir() and not (path / "config.json").is_file():
        raise InparsError(f"{target} is neither a run folder nor a model folder (it has no config.json); {USAGE}")
    check_model(str(target))
    metadata = read_metadata(resolve(str(target)))
    kind = reranker or metadata.get("reranker")
    if kind is None:
        raise InparsError(f"{target} is a model folder: give its reranker kind with --reranker ({', '.join(rerankers.names())})")
    rerankers.check(kind)
    if dataset is None:
        raise InparsError(f"{target} is a model, not a run folder: give the collection to search with --dataset")
    check_dataset_name(dataset)
    rerank = RerankConfig(reranker=kind, model=str(target), max_length=int(metadata.get("max_length", RerankConfig.max_length)))
    cfg = PipelineConfig(dataset=dataset, rerank=rerank)
    ctx = load_context(cfg, model=str(target), stages=frozenset({"retrieve", "rerank"}))
    system = {
        "model": str(target),
        "dataset": dataset,
        "first_stage": cfg.retrieve.backend,
        "reranker": kind,
        "source": "reranker",
        "bm25_weight": 0.0,
        "depth": rerank.top_k,
    }
    return ctx, system
