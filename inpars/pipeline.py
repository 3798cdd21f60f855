"""Running a recipe: the stages in order, each in its own folder of one run folder, skipped when unchanged.

A stage folder holds its outputs and ``stage.json``: the resolved config, the fingerprint of that config and
of everything upstream, library versions, the seed and the git commit. A stage whose ``stage.json`` carries
the same fingerprint and whose outputs exist is not run again; a changed config recomputes it and everything
downstream (their fingerprints include it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars import io
from inpars.config import PipelineConfig, fingerprint, identity, judge_generate, to_dict
from inpars.data import Dataset
from inpars.datasets import content_fingerprint, load_dataset
from inpars.errors import InparsError
from inpars.evaluate import MeasureStats
from inpars.models import MINILM
from inpars.models import check as check_model
from inpars.provenance import git_commit, library_versions
from inpars.stage import BM25_BACKENDS, Stage, bm25_settings, load_context

logger = logging.getLogger(__name__)

STAGES = ("generate", "filter", "negatives", "train", "retrieve", "select", "rerank", "evaluate")
"""The stages of a run, in the order one process runs them (``select`` only where ``select.validation`` > 0)."""
NEEDS = {
    "generate": (),
    "filter": ("generate",),
    "negatives": ("filter",),
    "train": ("negatives",),
    "retrieve": (),
    "select": ("train",),
    "rerank": ("train", "retrieve", "select"),
    "evaluate": ("retrieve", "rerank"),
}
"""What each stage reads: the stages that must be done before it runs on its own (a cluster job); a stage a run
does not have is not waited for."""
SHARDED = ("generate", "rerank")
"""Stages that can run as shards (documents for generation, test queries for reranking), merged by the stage itself."""


def stage_objects() -> dict[str, Stage]:
    """The stages, by name, in run order: each stage module's ``STAGE``."""
    from inpars.evaluate import STAGE as evaluate
    from inpars.filter.stage import STAGE as filter_
    from inpars.generate.stage import STAGE as generate
    from inpars.negatives import STAGE as negatives
    from inpars.rerank.fusion import STAGE as select
    from inpars.rerank.stage import STAGE as rerank
    from inpars.rerank.training import STAGE as train
    from inpars.retrieve.stage import STAGE as retrieve

    found = {s.name: s for s in (generate, filter_, negatives, train, retrieve, select, rerank, evaluate)}
    assert tuple(found) == STAGES, "the stage objects and STAGES disagree"
    return found


def upstream_of(stage: str) -> set[str]:
    """Every stage that ``stage`` reads, directly or not."""
    found: set[str] = set()
    todo = list(NEEDS[stage])
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(NEEDS[name])
    return found


@dataclass(frozen=True)
class Selection:
    """One stage of a run on its own, as a cluster job runs it: the stages it reads must be done.

    ``num_shards`` > 1 with ``shard``: only that shard (of the documents to generate for, or of the test queries to
    rerank), in ``<stage>/shards/<shard>-of-<num_shards>/``; without ``shard``: the merge of the finished shards
    into the stage's output, with the fingerprint of the unsharded stage, so that later stages cannot tell.
    """

    stage: str
    shard: int | None = None
    num_shards: int = 1

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise InparsError(f"unknown stage '{self.stage}'; stages: {', '.join(STAGES)}")
        if self.num_shards < 1:
            raise InparsError(f"--num-shards is {self.num_shards}; give 1 or more")
        if self.num_shards > 1 and self.stage not in SHARDED:
            raise InparsError(f"stage '{self.stage}' does not run in shards; only {' and '.join(SHARDED)} do")
        if self.shard is not None and not 0 <= self.shard < self.num_shards:
            raise InparsError(
                f"shard {self.shard} does not exist among {self.num_shards} shard(s): use --shard 0..{self.num_shards - 1}"
            )


def shard_folder(run_dir: Path, stage: str, shard: int, num_shards: int) -> Path:
    return run_dir / stage / "shards" / f"{shard}-of-{num_shards}"


def shard_identity(stage_fp: str, shard: int, num_shards: int) -> dict:
    """What one shard of a stage is run as: the stage's fingerprint and its place among the shards."""
    return {"stage": stage_fp, "shard": shard, "num_shards": num_shards}


def shard_fingerprint(stage_fp: str, shard: int, num_shards: int) -> str:
    """The fingerprint of one shard of a stage (what its ``stage.json`` carries)."""
    return fingerprint(shard_identity(stage_fp, shard, num_shards), [])


class _Stop(Exception):
    """The selected stage has run: the rest of the run is not this job's."""


@dataclass
class StageRecord:
    name: str
    fingerprint: str
    skipped: bool
    seconds: float
    summary: dict = field(default_factory=dict)


@dataclass
class PipelineResult:
    run_dir: Path
    metrics: dict[str, dict[str, float]]
    """system -> measure -> mean over queries (and over seeds)."""
    stages: list[StageRecord]
    counts: dict[str, int]
    statistics: dict[str, dict[str, MeasureStats]] = field(default_factory=dict)
    """system -> measure -> mean, standard deviation over seeds, interval and p-values against the baseline."""
    seeds: list[int] = field(default_factory=list)
    judged_on: str | None = None
    """The stage whose per-query scores the metrics are: ``evaluate`` (test queries), ``select`` (held-out synthetic
    queries, for a collection without test judgements), or None (nothing scored)."""


def read_manifest(folder: Path) -> dict | None:
    """A stage folder's ``stage.json``; None when there is none, or when it is torn or of another shape (a killed
    write, an edit): such a stage counts as not done, and its next run (``--force`` or not) writes a whole one."""
    manifest = folder / "stage.json"
    if not manifest.is_file():
        return None
    try:
        data = io.read_json(manifest)
    except InparsError as exc:
        logger.warning("%s is unreadable (%s): the stage counts as not done", manifest, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str) or not isinstance(data.get("status"), str):
        logger.warning("%s is not a stage record (no fingerprint and status): the stage counts as not done", manifest)
        return None
    return data


def output_hashes(folder: Path, outputs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The sha256 of each output a stage wrote (a folder's over its files), as ``stage.json`` records them."""
    return {name: io.tree_sha256(folder / name) for name in outputs if (folder / name).exists()}


def stage_done(folder: Path, fp: str, outputs: list[str]) -> dict | None:
    """The manifest of a finished stage with fingerprint ``fp`` whose outputs are the ones it wrote, else None.

    An output that is missing, or whose hash is no longer the one recorded (a truncated model, an edited run file),
    makes the stage not done, with one line saying which.
    """
    data = read_manifest(folder)
    if data is None or data.get("fingerprint") != fp or data.get("status") != "done":
        return None
    recorded = data.get("outputs")
    if not isinstance(recorded, dict):
        logger.warning("stage %s: its stage.json records no output hashes; recomputing", folder.name)
        return None
    for name in outputs:
        path = folder / name
        if not path.exists():
            logger.warning("stage %s: %s is missing; recomputing", folder.name, path)
            return None
        if recorded.get(name) != io.tree_sha256(path):
            logger.warning("stage %s: %s changed since the stage wrote it (its sha256 differs); recomputing", folder.name, path)
            return None
    return data


def run_stage(
    run_dir: Path,
    name: str,
    config: Any,
    upstream: list[str],
    outputs: list[str],
    body: Callable[[Path], dict],
    seed: int | None = None,
    force: bool = False,
) -> StageRecord:
    """Run ``body(folder)`` unless the stage is already done for the same config and upstream."""
    folder = run_dir / name
    fp = fingerprint(config, upstream)
    done = None if force else stage_done(folder, fp, outputs)
    if done is not None:
        logger.info("stage %s: up to date (%s), skipped", name, fp)
        return StageRecord(name, fp, True, float(done.get("seconds", 0.0)), done.get("summary", {}))
    folder.mkdir(parents=True, exist_ok=True)
    with io.exclusive(folder, f"stage '{name}'"):
        return _run_locked(folder, name, fp, config, upstream, outputs, body, seed)


def _run_locked(
    folder: Path, name: str, fp: str, config: Any, upstream: list[str], outputs: list[str], body: Callable[[Path], dict],
    seed: int | None,
) -> StageRecord:
    manifest = folder / "stage.json"
    previous = read_manifest(folder)
    if manifest.is_file() and (previous is None or previous.get("fingerprint") != fp):
        # Leftovers of another config (a partial generation, say) must not be resumed into this one.
        for leftover in folder.glob("*.partial"):
            leftover.unlink()
    record = {
        "stage": name,
        "status": "running",
        "fingerprint": fp,
        "upstream": upstream,
        "config": to_dict(config) if hasattr(config, "__dataclass_fields__") else config,
        "seed": seed,
        "versions": library_versions(),
        "git_commit": git_commit(),
    }
    io.write_json(manifest, record)
    started = time.perf_counter()
    logger.info("stage %s: running (%s)", name, fp)
    try:
        summary = body(folder)
    except BaseException as exc:
        # A killed process cannot say so and stays 'running'; anything else that stops the stage is recorded.
        interrupted = isinstance(exc, KeyboardInterrupt)
        record.update(
            status="interrupted" if interrupted else "failed",
            seconds=round(time.perf_counter() - started, 3),
            error=str(exc)[:2000] or type(exc).__name__,
        )
        io.write_json(manifest, record)
        raise
    seconds = time.perf_counter() - started
    record.update(status="done", seconds=round(seconds, 3), summary=summary, outputs=output_hashes(folder, outputs))
    io.write_json(manifest, record)
    return StageRecord(name, fp, False, seconds, summary)


def models_used(
    config: PipelineConfig, *, model: str | None = None, queries: str | Path | None = None, rerank: bool = True
) -> list[str]:
    """The names of the models a run loads, in the order it loads them (models the run trains itself left out)."""
    from inpars.filter.base import resolved_steps

    names: list[str] = []
    if rerank and model is None:
        if queries is None and config.generate.backend in ("hf", "vllm"):
            names.append(config.generate.model)
        if queries is None and config.generate.openai.tokenizer:
            names.append(config.generate.openai.tokenizer)
        names.extend(step.model for step in resolved_steps(config.filter) if isinstance(getattr(step, "model", None), str))
        if config.negatives.dense_negatives > 0:
            names.append(config.negatives.dense_model)
        names.append(config.train.model)
    elif rerank:
        names.append(model)
    if config.retrieve.backend == "dense":
        names.append(config.retrieve.model or MINILM)
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class StageSpec:
    """What a stage is, before it runs: its config, the fingerprints it depends on, its outputs, its seed."""

    name: str
    config: Any
    upstream: tuple[str, ...]
    outputs: tuple[str, ...]
    seed: int | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.config, list(self.upstream))


def data_fingerprint(dataset: str, content: str, fix_text: bool) -> str:
    """What every stage that reads the collection depends on: its name, its content's fingerprint (the bytes it was
    read from, :func:`inpars.datasets.content_fingerprint`) and whether its text is repaired."""
    return fingerprint({"dataset": dataset, "content": content, "fix_text": fix_text})


DATASET_RECORD = "dataset.json"
"""What a run folder records of its collection: name, counts and fingerprint (the cluster plan reads it)."""


def recorded_data_fingerprint(run_dir: Path, dataset: str, counts: dict[str, int]) -> str:
    """The collection fingerprint a run folder recorded for ``dataset`` with these counts, for a plan that does not load
    the collection; when there is none, one that matches no stage (everything is still to do)."""
    try:
        data = io.read_json(run_dir / DATASET_RECORD)
    except InparsError:
        data = None
    if isinstance(data, dict) and data.get("dataset") == dataset and data.get("counts") == dict(counts):
        return str(data.get("fingerprint"))
    return "not loaded yet"


TESTS = ("judged", "unjudged", "none")
"""What a collection offers to test on: queries with judgements, queries alone, or no queries (documents only)."""


def what_to_test(dataset: Dataset) -> str:
    if not dataset.queries:
        return "none"
    return "judged" if dataset.qrels else "unjudged"


def stage_specs(
    config: PipelineConfig,
    data_fp: str,
    *,
    queries_fp: str | None = None,
    model: str | None = None,
    rerank: bool = True,
    test: str = "judged",
) -> dict[str, StageSpec]:
    """The stages a run has, in order, with their fingerprints: what the run executes and what a plan reports.

    ``queries_fp``: the sha256 of imported synthetic queries; ``model``: a trained reranker replacing the training
    stages; ``rerank``: False for a retrieval-only run; ``test``: what the collection has to test on
    (:data:`TESTS`): without judgements there is no evaluate stage, without queries no retrieve or rerank stage either
    (the run is judged on the held-out synthetic queries of the select stage).
    """
    specs: dict[str, StageSpec] = {}
    bm25 = bm25_settings(config.retrieve)
    if rerank and model is None:
        if queries_fp is None:
            gen = StageSpec("generate", identity(config.generate), (data_fp,), ("queries.jsonl",), config.generate.seed)
        else:
            gen = StageSpec("generate", {"queries": queries_fp}, (data_fp,), ("queries.jsonl",))
        # The consistency filter and the negatives search with the recipe's BM25 settings, so they are part of their configs.
        flt = StageSpec(
            "filter", {"filter": to_dict(config.filter), "retrieve": to_dict(bm25)}, (gen.fingerprint,), ("kept.jsonl",)
        )
        mining: dict[str, Any] = {"negatives": to_dict(config.negatives), "retrieve": to_dict(bm25)}
        if config.select.enabled:
            mining["validation"] = {"share": config.select.validation, "at_most": config.select.max_validation}
        neg = StageSpec(
            "negatives",
            mining,
            (flt.fingerprint,),
            ("train.jsonl", "validation.jsonl") if config.select.enabled else ("train.jsonl",),
            config.negatives.seed,
        )
        trn = StageSpec("train", identity(config.train), (neg.fingerprint,), ("model",), config.train.seed)
        specs.update(generate=gen, filter=flt, negatives=neg, train=trn)
        model_fp = trn.fingerprint
    elif rerank:
        model_fp = fingerprint({"model": model, "reranker": config.rerank.reranker or config.train.reranker})
    first_is_bm25 = bm25 is config.retrieve
    ret = StageSpec("retrieve", config.retrieve, (data_fp,), ("run.trec",) if first_is_bm25 else ("run.trec", "bm25.trec"))
    specs["retrieve"] = ret
    upstream = [ret.fingerprint]
    if rerank:
        rerank_upstream = [model_fp, ret.fingerprint]
        if "train" in specs and config.select.enabled:
            # Selection searches the held-out queries with the first stage, so it depends on the first stage's config too.
            sel = StageSpec(
                "select",
                {
                    "select": identity(config.select),
                    "rerank": identity(config.rerank),
                    "measures": list(config.evaluate.measures),
                    **({"judge": identity(judge)} if (judge := judge_generate(config)) is not None else {}),
                },
                (model_fp, ret.fingerprint),
                ("selection.json", "per_query.json"),
            )
            specs["select"] = sel
            rerank_upstream.append(sel.fingerprint)
        specs["rerank"] = StageSpec("rerank", identity(config.rerank), tuple(rerank_upstream), ("run.trec",))
        upstream.append(specs["rerank"].fingerprint)
    specs["evaluate"] = StageSpec("evaluate", config.evaluate, tuple(upstream), ("metrics.json", "per_query.json"))
    if test != "judged":
        del specs["evaluate"]
    if test == "none":
        # The retrieve spec stays out of the run but in the fingerprints: select searches with the same first stage.
        for name in ("retrieve", "rerank"):
            specs.pop(name, None)
    return specs


class _Steps:
    """Runs the stages of one run, all of them or the one a :class:`Selection` names (its upstream must be done)."""

    def __init__(self, run_dir: Path, specs: dict[str, StageSpec], only: Selection | None, force: bool) -> None:
        self.run_dir, self.specs, self.only, self.force = run_dir, specs, only, force
        self.needed = None if only is None else upstream_of(only.stage)
        self.records: list[StageRecord] = []

    def run(
        self,
        name: str,
        body: Callable[[Path], dict],
        shard_body: Callable[[Path, int, int], dict] | None = None,
        merge: Callable[[Path, list[Path]], dict] | None = None,
    ) -> None:
        spec = self.specs[name]
        if self.only is None:
            self.records.append(
                run_stage(
                    self.run_dir,
                    name,
                    spec.config,
                    list(spec.upstream),
                    list(spec.outputs),
                    body,
                    seed=spec.seed,
                    force=self.force,
                )
            )
            return
        if name != self.only.stage:
            if name in self.needed:
                self.records.append(self._require_done(spec))
            return
        only = self.only
        if only.num_shards == 1:
            record = run_stage(
                self.run_dir, name, spec.config, list(spec.upstream), list(spec.outputs), body, seed=spec.seed, force=self.force
            )
        elif only.shard is not None:
            assert shard_body is not None
            if not self.force and stage_done(self.run_dir / name, spec.fingerprint, list(spec.outputs)) is not None:
                logger.info("stage %s: up to date, so shard %d of %d is not needed", name, only.shard, only.num_shards)
                record = StageRecord(name, spec.fingerprint, True, 0.0)
            else:
                folder = shard_folder(self.run_dir, name, only.shard, only.num_shards)
                record = run_stage(
                    folder.parent,
                    folder.name,
                    shard_identity(spec.fingerprint, only.shard, only.num_shards),
                    [],
                    list(spec.outputs),
                    lambda f: shard_body(f, only.shard, only.num_shards),
                    seed=spec.seed,
                    force=self.force,
                )
        else:
            assert merge is not None
            record = run_stage(
                self.run_dir,
                name,
                spec.config,
                list(spec.upstream),
                list(spec.outputs),
                lambda f: merge(f, self._finished_shards(spec, only.num_shards)),
                seed=spec.seed,
                force=self.force,
            )
        self.records.append(record)
        raise _Stop

    def _require_done(self, spec: StageSpec) -> StageRecord:
        done = stage_done(self.run_dir / spec.name, spec.fingerprint, list(spec.outputs))
        if done is None:
            raise InparsError(
                f"stage '{spec.name}' of {self.run_dir} is not done for this config, and stage '{self.only.stage}' reads it; "
                f"run '{spec.name}' first (--stage {spec.name})"
            )
        return StageRecord(spec.name, spec.fingerprint, True, float(done.get("seconds", 0.0)), done.get("summary", {}))

    def _finished_shards(self, spec: StageSpec, num_shards: int) -> list[Path]:
        folders = [shard_folder(self.run_dir, spec.name, shard, num_shards) for shard in range(num_shards)]
        missing = [
            str(shard)
            for shard, folder in enumerate(folders)
            if stage_done(folder, shard_fingerprint(spec.fingerprint, shard, num_shards), list(spec.outputs)) is None
        ]
        if missing:
            raise InparsError(
                f"shard(s) {', '.join(missing)} of {num_shards} of stage '{spec.name}' in {self.run_dir} are not done; "
                f"run them (--stage {spec.name} --shard I --num-shards {num_shards}), then merge"
            )
        return folders


def run_pipeline(
    config: PipelineConfig,
    force: bool = False,
    dataset: Dataset | None = None,
    *,
    queries: str | Path | None = None,
    model: str | None = None,
    rerank: bool = True,
    only: Selection | None = None,
) -> PipelineResult:
    """Generate, filter, mine negatives, train, retrieve, rerank and evaluate into ``config.run_dir``.

    ``queries``: synthetic queries (JSONL) that replace generation (released data, or another run's).
    ``model``: a trained reranker (Hugging Face id or folder) that replaces generation, filtering, mining and training.
    ``rerank``: False retrieves and evaluates only (a first-stage baseline).
    ``only``: run this one stage (or shard, or merge of shards) and stop; the result then has no metrics.
    """
    if model is not None and queries is not None:
        raise InparsError("give either synthetic queries or a trained model to start from, not both")
    if not rerank and (model is not None or queries is not None):
        raise InparsError("a retrieval-only run takes neither synthetic queries nor a model")
    if rerank and model is None and queries is None:
        model = config.rerank.model
    # Every model the run will load is checked first: a name that cannot load fails now, not after hours of generation.
    for name in models_used(config, model=model, queries=queries, rerank=rerank):
        check_model(name)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    # A whole run holds its folder; a cluster job (one stage or shard) holds only that stage's folder, so shards run side
    # by side.
    with io.exclusive(run_dir, "this run folder") if only is None else contextlib.nullcontext():
        return _run_pipeline(config, run_dir, dataset, queries=queries, model=model, rerank=rerank, only=only, force=force)


def _run_pipeline(
    config: PipelineConfig,
    run_dir: Path,
    dataset: Dataset | None,
    *,
    queries: str | Path | None,
    model: str | None,
    rerank: bool,
    only: Selection | None,
    force: bool,
) -> PipelineResult:
    io.write_json(run_dir / "config.json", to_dict(config))
    ctx = load_context(
        config,
        dataset,
        run_dir=run_dir,
        queries=Path(queries) if queries is not None else None,
        model=model or str(run_dir / "train" / "model"),
        restart=force,
    )
    counts = ctx.dataset.counts()
    if not ctx.dataset.docs:
        raise InparsError(f"dataset '{config.dataset}' has no documents")
    data_fp = data_fingerprint(config.dataset, content_fingerprint(ctx.dataset), config.fix_text)
    io.write_json(run_dir / DATASET_RECORD, {"dataset": config.dataset, "counts": counts, "fingerprint": data_fp})
    queries_fp = io.file_sha256(queries) if queries is not None else None
    test = _check_test(config, ctx.dataset, model=model, rerank=rerank)
    specs = stage_specs(config, data_fp, queries_fp=queries_fp, model=model, rerank=rerank, test=test)
    if only is not None and only.stage not in specs:
        raise InparsError(f"this run has no stage '{only.stage}'; its stages: {', '.join(specs)}")
    if only is not None and only.stage == "generate" and only.num_shards > 1 and queries is not None:
        raise InparsError("imported synthetic queries are not generated, so the generate stage has no shards; drop --num-shards")
    ctx.stages = frozenset(specs)
    steps = _Steps(run_dir, specs, only, force)
    stages = stage_objects()
    try:
        for name in specs:
            stage = stages[name]
            steps.run(
                name,
                functools.partial(stage.run, ctx, config),
                functools.partial(stage.run_shard, ctx, config) if stage.run_shard else None,
                functools.partial(stage.merge, ctx, config) if stage.merge else None,
            )
    except _Stop:
        return PipelineResult(run_dir=run_dir, metrics={}, stages=steps.records, counts=counts)
    judged_on = "evaluate" if "evaluate" in specs else "select" if "select" in specs else None
    if judged_on is None:
        _card(specs, run_dir)
        logger.warning(
            "the collection's queries have no judgements: the run is %s, and nothing is scored",
            run_dir / ("rerank" if "rerank" in specs else "retrieve") / "run.trec",
        )
        return PipelineResult(run_dir=run_dir, metrics={}, stages=steps.records, counts=counts, seeds=[config.train.seed])
    extra = {}
    if judged_on == "evaluate" and "filter" in specs:
        extra["leakage"] = leakage_of(ctx.dataset, run_dir)
    statistics = write_statistics(run_dir, {config.train.seed: run_dir}, config, judged_on=judged_on, extra=extra)
    _card(specs, run_dir)
    return PipelineResult(
        run_dir=run_dir,
        metrics=means(statistics),
        stages=steps.records,
        counts=counts,
        statistics=statistics,
        seeds=[config.train.seed],
        judged_on=judged_on,
    )


def _card(specs: dict[str, StageSpec], run_dir: Path) -> None:
    """The model card of the model the run trained (:mod:`inpars.card`), written once the run's scores are known."""
    if "train" in specs:
        from inpars.card import write_model_card

        write_model_card(run_dir)


def _check_test(config: PipelineConfig, dataset: Dataset, *, model: str | None, rerank: bool) -> str:
    """What the collection offers to test on; a run that would have nothing to do or to report is refused."""
    test = what_to_test(dataset)
    if test == "judged":
        return test
    trains = rerank and model is None
    if test == "none":
        what = f"dataset '{config.dataset}' has documents only (no queries)"
        if not trains:
            raise InparsError(f"{what}: a run that trains nothing has nothing to do; give a collection with queries")
        if not config.select.enabled:
            raise InparsError(
                f"{what}: such a run is judged on synthetic queries held out of training; set select.validation "
                "(e.g. --set select.validation=0.2)"
            )
        logger.warning(
            "%s: retrieve, rerank and evaluate are skipped; the run's result is the select stage's scores on the "
            "synthetic queries held out of training", what,
        )
    else:
        logger.warning(
            "dataset '%s' has queries without judgements: they are retrieved and reranked (rerank/run.trec), and "
            "evaluate is skipped%s", config.dataset,
            "; the run's result is the select stage's scores on held-out synthetic queries" if config.select.enabled and trains
            else "",
        )
    return test


def leakage_of(dataset: Dataset, run_dir: Path) -> dict:
    """How many test queries a kept synthetic query repeats or nearly repeats (:mod:`inpars.leakage`), warned above
    its threshold."""
    from inpars.leakage import find_leakage, warn

    kept = io.read_synthetic(run_dir / "filter" / "kept.jsonl", allow_empty=True)
    test = {qid: q.text for qid, q in dataset.queries.items() if dataset.qrels.get(qid)}
    found = find_leakage(test, ((q.query_id, q.text) for q in kept))
    warn(found)
    return found.as_dict()


def baseline_system(config: PipelineConfig) -> str:
    """The system the others are tested against: ``evaluate.baseline``, else the first stage (BM25 or the dense model)."""
    if config.evaluate.baseline:
        return config.evaluate.baseline
    return "bm25" if config.retrieve.backend in BM25_BACKENDS else config.retrieve.backend


def means(statistics: dict[str, dict[str, MeasureStats]]) -> dict[str, dict[str, float]]:
    return {system: {measure: s.mean for measure, s in by_measure.items()} for system, by_measure in statistics.items()}


JUDGED_ON = {
    "evaluate": "the collection's test queries and judgements",
    "select": "synthetic queries held out of training (each judged by its source document)",
}


def write_statistics(
    run_dir: Path, seed_dirs: dict[int, Path], config: PipelineConfig, *, judged_on: str = "evaluate", extra: dict | None = None
) -> dict[str, dict[str, MeasureStats]]:
    """Test every system of the runs in ``seed_dirs`` (seed -> run folder) against the baseline; write
    ``run_dir/metrics.json``. ``judged_on``: the stage whose ``per_query.json`` is scored (``evaluate``, or ``select``
    for a collection without test judgements); ``extra``: further keys of metrics.json (``leakage``)."""
    from inpars.evaluate import compare

    per_seed = [io.read_json(folder / judged_on / "per_query.json") for folder in seed_dirs.values()]
    systems = list(per_seed[0])
    baseline = baseline_system(config)
    if baseline not in systems:
        raise InparsError(f"evaluate.baseline is '{baseline}', which this run does not score; use one of {', '.join(systems)}")
    ev = config.evaluate
    statistics = compare(
        {system: [one[system] for one in per_seed] for system in systems}, baseline, ev.resamples, ev.confidence, ev.seed
    )
    queries = len(next(iter(per_seed[0][baseline].values())))
    io.write_json(
        run_dir / "metrics.json",
        {
            "baseline": baseline,
            "judged_on": JUDGED_ON[judged_on],
            **(extra or {}),
            "seeds": list(seed_dirs),
            "queries": queries,
            "confidence": ev.confidence,
            "resamples": ev.resamples,
            "systems": {
                system: {measure: s.as_dict() for measure, s in by_measure.items()} for system, by_measure in statistics.items()
            },
        },
    )
    return statistics


# Stages that a seed may leave unchanged: a later seed starts from copies of the first seed's finished folders, and
# ``run_stage`` keeps each copy only if its fingerprint still matches (greedy generation, say), else recomputes it.
SHARED_STAGES = ("generate", "filter", "negatives", "retrieve")


def seeded(config: PipelineConfig, seed: int) -> PipelineConfig:
    """The recipe for one seed: mining and training take the seed; generation only where it samples (temperature > 0)."""
    generate = dataclasses.replace(config.generate, seed=seed) if config.generate.temperature > 0 else config.generate
    return dataclasses.replace(
        config,
        generate=generate,
        negatives=dataclasses.replace(config.negatives, seed=seed),
        train=dataclasses.replace(config.train, seed=seed),
    )


def run_seeds(
    config: PipelineConfig, seeds: list[int], force: bool = False, dataset: Dataset | None = None, **kwargs: Any
) -> PipelineResult:
    """Run the recipe once per seed into ``run_dir/seed-<seed>/``, sharing what a seed does not change; write the
    mean, standard deviation, interval and p-values over the seeds to ``run_dir/metrics.json``."""
    if not seeds or len(set(seeds)) < len(seeds):
        raise InparsError(f"seeds must be distinct and at least one, got {seeds}")
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    io.write_json(run_dir / "config.json", {**to_dict(config), "seeds": list(seeds)})
    dataset = dataset or load_dataset(config.dataset)
    folders: dict[int, Path] = {}
    stages: list[StageRecord] = []
    result = None
    for seed in seeds:
        folder = run_dir / f"seed-{seed}"
        first = next(iter(folders.values()), None)
        if first is not None and not force:
            for stage in SHARED_STAGES:
                done = read_manifest(first / stage)
                if done is not None and done.get("status") == "done" and not (folder / stage).exists():
                    io.copy_tree(first / stage, folder / stage)
        logger.info("seed %d of %s", seed, ", ".join(map(str, seeds)))
        result = run_pipeline(
            dataclasses.replace(seeded(config, seed), output_dir=str(run_dir), name=folder.name),
            force=force,
            dataset=dataset,
            **kwargs,
        )
        folders[seed] = folder
        stages.extend(dataclasses.replace(stage, name=f"{stage.name} (seed {seed})") for stage in result.stages)
    names = {stage.name.split(" (seed")[0] for stage in stages}
    judged_on = "evaluate" if "evaluate" in names else "select" if "select" in names else None
    if judged_on is None:
        return PipelineResult(run_dir=run_dir, metrics={}, stages=stages, counts=result.counts, seeds=list(seeds))
    extra = {}
    kept = next(iter(folders.values())) / "filter" / "kept.jsonl"
    if judged_on == "evaluate" and kept.is_file():
        extra["leakage"] = leakage_of(dataset, kept.parent.parent)
    statistics = write_statistics(run_dir, folders, config, judged_on=judged_on, extra=extra)
    return PipelineResult(
        run_dir=run_dir,
        metrics=means(statistics),
        stages=stages,
        counts=result.counts,
        statistics=statistics,
        seeds=list(seeds),
        judged_on=judged_on,
    )
