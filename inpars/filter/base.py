"""The filter machinery: a registry of filters, recipe steps built from YAML, and running steps in order.

Each filter is a class with a frozen ``Config`` dataclass (its recipe keys) and ``apply(queries, context)``,
which returns the queries it keeps, those it drops with a reason, and, for scoring filters, each query's score.
Steps run in the recipe's order, each on what the previous ones kept. Empty outputs are always dropped first
(step ``empty``) unless the recipe places that step itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars import io
from inpars.config import FilterConfig, RetrieveConfig, build, fingerprint, to_dict
from inpars.data import Doc, SyntheticQuery
from inpars.errors import InparsError, InputError
from inpars.registry import Registry, UnknownNameError

logger = logging.getLogger(__name__)

filters = Registry("filter")
filters.register("empty", "inpars.filter.hygiene:EmptyFilter")
filters.register("dedup", "inpars.filter.hygiene:DedupFilter")
filters.register("min_length", "inpars.filter.hygiene:MinLengthFilter")
filters.register("max_length", "inpars.filter.hygiene:MaxLengthFilter")
filters.register("copied", "inpars.filter.hygiene:CopiedFilter")
filters.register("lm_score", "inpars.filter.lm_score:LMScoreFilter")
filters.register("reranker", "inpars.filter.reranker:RerankerFilter")
filters.register("consistency", "inpars.filter.consistency:ConsistencyFilter")

SCORES_KEY = "filter_scores"
"""The extra field of a synthetic query that holds its score from each scoring step, by step label."""


# ---------------------------------------------------------------------------------------------- steps


@dataclass
class StepOutcome:
    """What one filter did: the kept queries in order, the dropped ones with a reason and a detail."""

    kept: list[SyntheticQuery]
    dropped: list[tuple[SyntheticQuery, str, str]] = field(default_factory=list)
    scores: dict[str, float | None] | None = None
    """query_id -> score for every query the step saw (scoring filters only)."""
    score_name: str = ""
    """What the score is (``mean_log_probs``, ``rank of the source document``, ...)."""
    cutoff: float | None = None
    """The lowest score kept (top-k) or the threshold, for the histogram."""


class Filter:
    """Base of the filters: ``Config`` is the frozen dataclass of its recipe keys."""

    Config: type
    needs_docs = False
    """Whether the filter reads the queries' source documents."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def apply(self, queries: list[SyntheticQuery], context: FilterContext) -> StepOutcome:
        raise NotImplementedError


def build_steps(
    value: Any, source: str = "<config>", lines: dict[str, int] | None = None, where: str = "filter.steps"
) -> tuple[Any, ...]:
    """Recipe steps (a list of mappings with a ``name``) as a tuple of the filters' frozen configs."""
    lines = lines or {}
    if not isinstance(value, (list, tuple)):
        raise InputError(
            source, lines.get(where), f"'{where}' should be a list of steps",
            "write each step as '- name: <filter>' with its keys",
        )
    steps = []
    for index, item in enumerate(value):
        here = f"{where}.{index}"
        if not isinstance(item, dict) or "name" not in item:
            raise InputError(
                source, lines.get(here), f"step {index} of '{where}' has no name", f"give it one of: {', '.join(filters.names())}"
            )
        try:
            cls = filters.get(str(item["name"]))
        except UnknownNameError as exc:
            raise InputError(source, lines.get(f"{here}.name", lines.get(here)), str(exc), "fix the step's name") from None
        options = {k: v for k, v in item.items() if k != "name"}
        steps.append(build(cls.Config, options, source, lines, prefix=f"{here}."))
    return tuple(steps)


def resolved_steps(config: FilterConfig) -> tuple[Any, ...]:
    """The steps a config runs: its ``steps``, or the shorthand (an LM-score step), after the ``empty`` step."""
    from inpars.filter.hygiene import EmptyFilter
    from inpars.filter.lm_score import LMScoreFilter

    steps = tuple(config.steps)
    if any(isinstance(s, dict) for s in steps):  # a config built in Python from plain mappings
        steps = build_steps(list(steps))
    steps = steps or (LMScoreFilter.Config(method=config.method or "mean_log_probs", top_k=config.top_k),)
    if not any(s.name == "empty" for s in steps):
        steps = (EmptyFilter.Config(), *steps)
    return steps


def needs_docs(config: FilterConfig) -> bool:
    """Whether any step of the config reads the documents (so the caller must load the dataset)."""
    return any(filters.get(s.name).needs_docs for s in resolved_steps(config))


def step_labels(steps: Sequence[Any]) -> list[str]:
    """A label per step: its name, with its position (``name@3``) where a name occurs twice."""
    counts = Counter(s.name for s in steps)
    return [s.name if counts[s.name] == 1 else f"{s.name}@{i}" for i, s in enumerate(steps)]


# ---------------------------------------------------------------------------------------------- context


class FilterContext:
    """What filters may need beyond the queries: the corpus, the BM25 settings, models and a score cache.

    ``cache_dir`` keeps the scores of the expensive filters (reranker, consistency) per scoring config, so an
    interrupted run resumes and a change of top-k or threshold rescores nothing.
    """

    def __init__(
        self,
        docs: Mapping[str, Doc] | None = None,
        retrieve: RetrieveConfig | None = None,
        cache_dir: str | Path | None = None,
        make_reranker: Callable[..., Any] | None = None,
    ) -> None:
        self._docs = docs
        self.retrieve = retrieve or RetrieveConfig()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._make_reranker = make_reranker
        self._retrievers: dict[str, Any] = {}
        self._rerankers: dict[str, Any] = {}

    def docs(self, step: str) -> Mapping[str, Doc]:
        if self._docs is None:
            raise InparsError(f"the {step} filter needs the documents; give the dataset (--dataset with 'inpars filter')")
        return self._docs

    def doc(self, step: str, query: SyntheticQuery) -> Doc:
        docs = self.docs(step)
        if query.doc_id not in docs:
            raise InparsError(
                f"synthetic query '{query.query_id}' names document '{query.doc_id}', which is not in the corpus; filter with "
                "the dataset the queries were generated from"
            )
        return docs[query.doc_id]

    def reranker(self, name: str, model: str, max_length: int, batch_size: int, device: str):
        """A reranker from the registry (or from ``make_reranker``, when given), loaded once per settings."""
        key = fingerprint({"name": name, "model": model, "max_length": max_length, "batch_size": batch_size, "device": device})
        if key not in self._rerankers:
            make = self._make_reranker or registered_reranker
            self._rerankers[key] = make(name, model, max_length=max_length, batch_size=batch_size, device=device)
        return self._rerankers[key]

    def retriever(self, name: str, **options: Any):
        """A retriever from the registry with the corpus indexed, built once per name and options."""
        key = fingerprint({"name": name, **options})
        if key not in self._retrievers:
            from inpars.retrieve import retrievers

            cls = retrievers.get(name)
            config = dataclasses.replace(self.retrieve, backend=name)
            retriever = cls(config, **options) if options else cls(config)
            retriever.index(self.docs("consistency").values())
            self._retrievers[key] = retriever
        return self._retrievers[key]

    def cached_scores(
        self,
        label: str,
        scoring: Any,
        queries: Sequence[SyntheticQuery],
        compute: Callable[[list[SyntheticQuery]], list[float | None]],
        chunk_size: int,
    ) -> dict[str, float | None]:
        """query_id -> score, computed by ``compute`` a chunk at a time and appended to the cache as it goes."""
        keys = {q.query_id: _query_key(q) for q in queries}
        path = self.cache_dir / f"{label}-{fingerprint(scoring)}.scores.jsonl" if self.cache_dir else None
        known: dict[str, float | None] = {}
        if path is not None:
            known = {row["key"]: row["score"] for row in io.read_appended_jsonl(path) if "key" in row}
        todo = [q for q in queries if keys[q.query_id] not in known]
        if len(todo) < len(queries):
            logger.info("%s: %d of %d scores from the cache %s", label, len(queries) - len(todo), len(queries), path)
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            values = compute(chunk)
            rows = [{"key": keys[q.query_id], "score": v} for q, v in zip(chunk, values)]
            known.update((row["key"], row["score"]) for row in rows)
            if path is not None:
                io.append_jsonl(path, rows)
        return {q.query_id: known[keys[q.query_id]] for q in queries}


def registered_reranker(name: str, model: str, **options: Any):
    from inpars.rerank import rerankers

    return rerankers.get(name)(model, **options)


def _query_key(query: SyntheticQuery) -> str:
    return hashlib.sha256(f"{query.query_id}\t{query.doc_id}\t{query.text}".encode()).hexdigest()[:20]


# ---------------------------------------------------------------------------------------------- selection


def select(
    queries: list[SyntheticQuery], scores: Mapping[str, float | None], top_k: int | None, threshold: float | None, what: str
) -> tuple[list[SyntheticQuery], list[tuple[SyntheticQuery, str, str]], float | None]:
    """Keep queries scoring at least ``threshold``, then the best ``top_k`` of those (ties by query id).

    Returns the kept queries in input order, the dropped ones with reason and detail, and the cutoff.
    """
    dropped: list[tuple[SyntheticQuery, str, str]] = []
    passing = []
    for q in queries:
        value = scores[q.query_id]
        if threshold is not None and (value is None or value < threshold):
            dropped.append((q, "below threshold", f"{what} {_fmt(value)} < {threshold:g}"))
        else:
            passing.append(q)
    cutoff = threshold
    if top_k is not None and len(passing) > top_k:
        ranked = sorted(passing, key=lambda q: (-_finite(scores[q.query_id]), q.query_id))
        chosen = {q.query_id for q in ranked[:top_k]}
        cutoff = _finite(scores[ranked[top_k - 1].query_id])
        for rank, q in enumerate(ranked[top_k:], start=top_k + 1):
            dropped.append((q, "below top k", f"rank {rank} > {top_k} by {what} ({_fmt(scores[q.query_id])})"))
        passing = [q for q in passing if q.query_id in chosen]
    return passing, dropped, cutoff


def _finite(value: float | None) -> float:
    return float("-inf") if value is None else value


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


# ---------------------------------------------------------------------------------------------- running


@dataclass
class StepReport:
    label: str
    config: dict
    input: int
    kept: int
    reasons: dict[str, int]
    scores: dict[str, float | None] | None = None
    score_name: str = ""
    cutoff: float | None = None
    kept_ids: set[str] = field(default_factory=set)


@dataclass
class Dropped:
    query: SyntheticQuery
    step: str
    reason: str
    detail: str = ""


@dataclass
class FilterResult:
    kept: list[SyntheticQuery]
    dropped: list[Dropped] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)
    input: int = 0

    def reasons(self) -> dict[str, int]:
        """Dropped queries per step label, in step order."""
        return {s.label: s.input - s.kept for s in self.steps}


def _with_score(query: SyntheticQuery, label: str, value: float | None) -> SyntheticQuery:
    if value is not None and not math.isfinite(value):
        value = None  # JSON has no infinities; a query without log-probs has no LM score
    scores = {**query.extra.get(SCORES_KEY, {}), label: value}
    return dataclasses.replace(query, extra={**query.extra, SCORES_KEY: scores})


def filter_queries(
    queries: Sequence[SyntheticQuery], config: FilterConfig | None = None, context: FilterContext | None = None
) -> FilterResult:
    """Run the config's steps in order; each sees only what the previous ones kept."""
    config = config or FilterConfig()
    context = context or FilterContext()
    steps = resolved_steps(config)
    labels = step_labels(steps)
    current = list(queries)
    result = FilterResult(kept=[], input=len(current))
    for label, step in zip(labels, steps):
        flt = filters.get(step.name)(step)
        outcome = flt.apply(current, context)
        if outcome.scores is not None:
            outcome.kept = [_with_score(q, label, outcome.scores.get(q.query_id)) for q in outcome.kept]
            outcome.dropped = [(_with_score(q, label, outcome.scores.get(q.query_id)), r, d) for q, r, d in outcome.dropped]
        reasons = Counter(reason for _, reason, _ in outcome.dropped)
        result.steps.append(
            StepReport(
                label, to_dict(step), len(current), len(outcome.kept), dict(reasons), outcome.scores, outcome.score_name,
                outcome.cutoff, {q.query_id for q in outcome.kept},
            )
        )
        result.dropped += [Dropped(q, label, reason, detail) for q, reason, detail in outcome.dropped]
        logger.info(
            "filter %s: kept %d of %d%s", label, len(outcome.kept), len(current),
            "".join(f", {n} {r}" for r, n in reasons.items()),
        )
        current = outcome.kept
    result.kept = current
    return result
