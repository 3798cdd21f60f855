"""What a stage is, and what the stages of one run share.

Each stage module exports one :class:`Stage` (``generate.stage.STAGE``, ``filter.stage.STAGE``, ...):
its config sections, the files it reads from earlier stages and writes into its folder, and
``run(ctx, cfg, folder) -> summary``. ``inpars run`` calls them in order (``inpars.pipeline``) and each stage
command of the CLI calls the same ``run`` with a :class:`Context` that names the user's files instead, so the
two cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpars.config import PipelineConfig, RetrieveConfig, fingerprint
from inpars.data import Dataset
from inpars.errors import InparsError

BM25_BACKENDS = ("bm25s", "pyserini")


def bm25_settings(retrieve: RetrieveConfig) -> RetrieveConfig:
    """The recipe's BM25: its first stage when that is BM25, else bm25s with the same parameters.

    Negatives and the BM25 consistency filter always search with it, and it is the baseline every run reports.
    """
    if retrieve.backend in BM25_BACKENDS:
        return retrieve
    return dataclasses.replace(retrieve, backend="bm25s", model=None)


@dataclass
class Context:
    """What the stages of one run share: the collection (loaded once), the BM25 settings, the retrievers built so far,
    and where each stage finds what an earlier one wrote.

    A stage reads ``ctx.input(stage, file)``: ``run_dir/stage/file`` unless ``inputs`` names another path for
    ``"stage/file"`` (a CLI command reading the user's file). It writes ``ctx.output(folder, file)``: ``folder/file``
    unless ``outputs`` names another path for ``file``.
    """

    dataset: Dataset
    config: PipelineConfig
    run_dir: Path | None = None
    stages: frozenset[str] = frozenset()
    """The stages this run has: a stage reads another's output only if the run has that stage (``select``, say)."""
    inputs: Mapping[str, str | Path] = field(default_factory=dict)
    outputs: Mapping[str, Path] = field(default_factory=dict)
    queries: Path | None = None
    """Synthetic queries that replace generation (released data, or another run's)."""
    model: str | None = None
    """The reranker that reranks: a model given by the user (``rerank.model``) or the one the train stage writes."""
    restart: bool = False
    """Discard an interrupted stage's partial output instead of resuming it."""
    _retrievers: dict[str, Any] = field(default_factory=dict, repr=False)
    _scorers: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def bm25(self) -> RetrieveConfig:
        return bm25_settings(self.config.retrieve)

    @property
    def first_is_bm25(self) -> bool:
        return self.config.retrieve.backend in BM25_BACKENDS

    @property
    def reranker(self) -> str:
        """The reranker kind that reranks: ``rerank.reranker``, else the kind the run trains."""
        return self.config.rerank.reranker or self.config.train.reranker

    def has(self, stage: str) -> bool:
        return stage in self.stages

    def input(self, stage: str, name: str) -> Path:
        key = f"{stage}/{name}"
        if key in self.inputs:
            return Path(self.inputs[key])
        if self.run_dir is None:
            raise InparsError(f"this stage reads {key}, and neither a run folder nor a file for it was given")
        return self.run_dir / stage / name

    def output(self, folder: Path, name: str) -> Path:
        return Path(self.outputs.get(name, folder / name))

    def retriever(self, settings: RetrieveConfig):
        """The retriever for ``settings``, built and indexed on the collection once per run."""
        from inpars.retrieve import retrievers

        key = fingerprint(settings)
        if key not in self._retrievers:
            built = retrievers.get(settings.backend)(settings)
            built.index(self.dataset.docs.values())
            self._retrievers[key] = built
        return self._retrievers[key]


    def scorer(self, model: str | Path | None = None):
        """The reranker that reranks (``model`` as ``reranker``), loaded once per run (select and rerank share it);
        ``model`` names another folder of the same kind (a snapshot of the training), also loaded once."""
        from inpars.rerank import rerankers

        if model is None:
            if self.model is None:
                raise InparsError("no reranker to rerank with: give a model (--model, or rerank.model in the recipe)")
            model = self.model
        key = str(model)
        if key not in self._scorers:
            rerank = self.config.rerank
            self._scorers[key] = rerankers.get(self.reranker)(key, max_length=rerank.max_length, batch_size=rerank.batch_size)
        return self._scorers[key]


def load_context(config: PipelineConfig, dataset: Dataset | None = None, **fields: Any) -> Context:
    """A context for ``config``: its dataset loaded (or the one given) with the recipe's text repair applied."""
    from inpars.datasets import load_dataset

    data = dataset if dataset is not None else load_dataset(config.dataset)
    if config.fix_text:
        data = data.with_fixed_text()
    return Context(dataset=data, config=config, **fields)


@dataclass(frozen=True)
class Stage:
    """One stage: what it reads and writes, and the code that runs it (shared by ``inpars run`` and the CLI)."""

    name: str
    sections: tuple[str, ...]
    """The config sections it reads."""
    reads: tuple[str, ...]
    """``stage/file`` outputs of earlier stages it reads (some only where the run has that stage)."""
    writes: tuple[str, ...]
    """Files it writes in its folder (some only in some configs: ``bm25.trec`` when the first stage is not BM25)."""
    run: Callable[[Context, PipelineConfig, Path], dict]
    run_shard: Callable[[Context, PipelineConfig, Path, int, int], dict] | None = None
    """One shard of the stage's work (documents to generate for, test queries to rerank)."""
    merge: Callable[[Context, PipelineConfig, Path, list[Path]], dict] | None = None
    """The stage's output from its finished shards' folders."""
