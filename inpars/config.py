"""Configuration: one frozen dataclass per stage, composed into a pipeline config that loads from YAML.

Precedence: command-line overrides > YAML > defaults. Unknown keys are errors that name the file and line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from inpars.checks import InvalidValue, check_float_fields, check_name, check_range
from inpars.errors import InputError
from inpars.io import parse_yaml, read_text, show
from inpars.models import DTYPES, check_device
from inpars.registry import did_you_mean, suggest

if TYPE_CHECKING:
    from inpars.generate.openai import OpenAIOptions


MAX_SEED = 2**32 - 1
"""numpy's and torch's seeds are unsigned 32-bit numbers."""


def check_seed(config: Any, key: str = "seed") -> None:
    check_range(config, (key,), 0, high=MAX_SEED)


def _check_measures(key: str, names: tuple[str, ...]) -> None:
    """Measure names are checked as the recipe loads, not when evaluation starts after hours of training."""
    from inpars.errors import InparsError
    from inpars.evaluate import parse_measures  # the evaluate stage's module, which imports this one

    try:
        parse_measures(names)
    except InparsError as exc:
        raise InvalidValue(key, f"is {list(names) if len(names) > 1 else names[0]}", str(exc)) from None


def _check_dtype(config: Any, key: str) -> None:
    """A dtype field takes one vocabulary: ``auto``, ``bf16`` or ``bfloat16``, ``fp16`` or ``float16``, ``fp32`` or
    ``float32``."""
    value = getattr(config, key)
    if value not in DTYPES:
        raise InvalidValue(key, f"is '{value}'", f"use one of {', '.join(DTYPES)}")


def _openai_options() -> OpenAIOptions:
    from inpars.generate.openai import OpenAIOptions  # the backend's module, which imports this one

    return OpenAIOptions()


@dataclass(frozen=True)
class GenerateConfig:
    backend: str = "hf"
    model: str = "embedded:smollm2-135m"
    prompt: str = "inpars"
    num_docs: int | None = None
    """Documents sampled (with ``seed``) from the corpus; None takes them all."""
    queries_per_doc: int = 1
    max_new_tokens: int = 64
    max_doc_tokens: int = 256
    temperature: float = 0.0
    """0 decodes greedily, as in the papers."""
    top_p: float = 1.0
    chat: bool = False
    """Send each prompt through the model's chat template as one user turn, the assistant's turn opened (for
    instruction-tuned models); False gives the model the prompt's text as it is, byte for byte."""
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    """auto, bf16, fp16 or fp32 (or bfloat16, float16, float32). hf's auto is bf16 on a GPU that has it, else fp16, and fp32
    on a CPU; vllm's auto is the model's own dtype."""
    num_examples: int | None = None
    """Few-shot examples drawn from the dataset for prompts that take them (promptagator-*); None: the prompt's number."""
    context_length: int | None = None
    """The model's context in tokens (prompt plus new tokens); None: what the model declares. Longer prompts are skipped."""
    fewshot_source: str = "dataset"
    """Where prompts with ``examples_from: dataset`` (promptagator-*) take their examples: ``dataset``, the dataset's
    own judged queries (any dataset), or ``published``, the per-corpus file of the ``inpars/fewshot-examples``
    dataset on the Hugging Face hub that the reference code samples from."""
    fewshot_corpus: str | None = None
    """published: the file's name in that dataset (``data/<name>.json``); None takes the dataset's BEIR name."""
    fewshot_revision: str | None = None
    """published: the revision (commit) of ``inpars/fewshot-examples`` to download; required with ``published``."""
    fewshot_sha256: str | None = None
    """published: the sha256 of the file, checked before use; None uses it unverified and logs its hash to pin."""
    fewshot_shuffle: bool = False
    """Reorder the few-shot examples for every document (seeded by ``seed`` and the document id), as the reference
    does; False keeps one order, so every document shares one prompt prefix."""
    openai: OpenAIOptions = field(default_factory=_openai_options)
    """What only the openai backend reads (``generate.openai.api_base``, ...); refused with another backend."""

    runtime_only: ClassVar[tuple[str, ...]] = ("batch_size", "device")
    """How fast queries come, not what they are: an interrupted generation resumes with other values (a block such as
    ``openai`` lists its own)."""
    omitted_at_default: ClassVar[tuple[str, ...]] = ("chat",)
    """Fields added later, left out of the fingerprint at their default so that earlier runs' stages stay valid."""
    renamed: ClassVar[dict[str, str]] = {
        key: f"openai.{key}"
        for key in ("tokenizer", "api_base", "api_key_env", "concurrency", "max_retries", "retry_wait", "request_timeout")
    }
    """Keys that moved, and where to: a recipe that still has them is told the new place."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        from inpars.generate.base import generators

        check_name(generators, "backend", self.backend)
        check_range(
            self,
            (
                "num_docs",
                "queries_per_doc",
                "max_new_tokens",
                "max_doc_tokens",
                "batch_size",
                "num_examples",
                "context_length",
            ),
            1,
        )
        check_range(self, ("temperature",), 0)
        check_seed(self)
        check_range(self, ("top_p",), 0, strict=True, high=1)
        _check_dtype(self, "dtype")
        check_device(self.device)
        for name in generators.names():  # a backend's own block (generate.openai) is for that backend alone
            block = getattr(self, name, None)
            if block is not None and name != self.backend and block != type(block)():
                problem, hint = f"is set, but backend is '{self.backend}'", f"use backend: {name}, or leave the block out"
                raise InvalidValue(name, problem, hint)
        if self.queries_per_doc > 1 and self.temperature <= 0:
            raise InvalidValue(
                "queries_per_doc",
                f"is {self.queries_per_doc} with temperature 0",
                "greedy decoding repeats the same query: set temperature > 0",
            )
        if self.fewshot_source not in FEWSHOT_SOURCES:
            raise InvalidValue("fewshot_source", f"is '{self.fewshot_source}'", f"use one of {', '.join(FEWSHOT_SOURCES)}")
        if self.fewshot_sha256 is not None and not _is_sha256(self.fewshot_sha256):
            raise InvalidValue(
                "fewshot_sha256",
                f"is '{self.fewshot_sha256}', not 64 hexadecimal digits",
                "copy the file's sha256, or leave it unset",
            )
        if self.fewshot_source == "published" and not self.fewshot_revision:
            raise InvalidValue(
                "fewshot_revision",
                "is unset, and fewshot_source is published",
                "give the commit of inpars/fewshot-examples to download",
            )


FEWSHOT_SOURCES = ("dataset", "published")


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower())


@dataclass(frozen=True)
class FilterConfig:
    method: str | None = None
    """Shorthand for one LM-score step: sum_log_probs, mean_log_probs (the default) or mean_probs."""
    top_k: int | None = None
    """With the shorthand: keep the best k queries; None keeps every non-empty query."""
    steps: tuple[Any, ...] = ()
    """Filters applied in order, each a mapping with a ``name`` (see ``inpars.filter``); replaces method/top_k."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        if self.steps and (self.method is not None or self.top_k is not None):
            raise ValueError(
                "give either filter.method/top_k or filter.steps, not both; "
                "put the LM score in the steps as {name: lm_score, method: ..., top_k: ...}"
            )
        from inpars.filter.lm_score import LMScoreConfig

        LMScoreConfig(method=self.method or LMScoreConfig.method, top_k=self.top_k)  # the shorthand is that step: its checks


@dataclass(frozen=True)
class RetrieveConfig:
    backend: str = "bm25s"
    k1: float = 0.9
    b: float = 0.4
    top_k: int = 100
    stemmer: str = "english"
    stopwords: str = "en"
    threads: int = 0
    """Threads for indexing and batch search; 0 uses every core this process may use (affinity, SLURM, cgroup quota)."""
    prebuilt_index: str = ""
    """pyserini only: a prebuilt Lucene index (e.g. beir-v1.0.0-scifact.flat), downloaded on first use; empty
    builds an index from the corpus."""
    remove_query: bool = False
    """Drop a hit whose document id is the query id, as pyserini's BEIR regressions do (ArguAna and Quora queries
    are corpus documents). Never for collections that give a query its relevant document's id (faq-construction)."""
    model: str | None = None
    """dense only: the sentence-transformers bi-encoder (default embedded:minilm-l6)."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        from inpars.retrieve.base import retrievers

        check_name(retrievers, "backend", self.backend)
        check_range(self, ("k1", "threads"), 0)
        check_range(self, ("b",), 0, high=1)
        check_range(self, ("top_k",), 1)


NEGATIVE_STRATEGIES = ("random", "hardest")


@dataclass(frozen=True)
class NegativesConfig:
    depth: int = 1000
    """Negatives are drawn from each synthetic query's BM25 top ``depth``."""
    num_negatives: int = 1
    strategy: str = "random"
    """``random`` (as in the papers) or ``hardest`` (the highest-ranked non-positive documents)."""
    seed: int = 0
    dense_negatives: int = 0
    """Further negatives per query, picked the same way from a bi-encoder's top ``depth``; 0 mines BM25 only."""
    dense_model: str = "embedded:minilm-l6"
    """The sentence-transformers bi-encoder for dense negatives (an embedded name, Hugging Face id or folder)."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        check_range(self, ("depth",), 1)
        check_seed(self)
        check_range(self, ("num_negatives", "dense_negatives"), 0)
        if self.num_negatives + self.dense_negatives < 1:
            raise InvalidValue("num_negatives", "(BM25) plus 'dense_negatives' is 0", "mine at least one negative per query")
        if self.strategy not in NEGATIVE_STRATEGIES:
            raise InvalidValue("strategy", f"is '{self.strategy}'", f"use one of {', '.join(NEGATIVE_STRATEGIES)}")


# Named training recipes. A preset supplies the fields that a recipe, ``--set`` or ``from_preset`` leaves unset.
# The papers trained monoT5-3B for 156 steps at an effective batch of 128 (one epoch over ~20k pairs) with a
# constant learning rate of 1e-3 on TPU (Adafactor, as T5 is trained there); the maintainers used 3e-4 on GPU.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "inpars-paper": {
        "reranker": "monot5",
        "model": "castorini/monot5-3b-msmarco-10k",
        "max_steps": 156,
        "effective_batch_size": 128,
        "batch_size": 4,
        "learning_rate": 3e-4,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "optimizer": "adamw_torch",
        "max_length": 512,
        "save_steps": 50,
        "save_total_limit": 1,
    },
    "inpars-paper-tpu": {
        "reranker": "monot5",
        "model": "castorini/monot5-3b-msmarco-10k",
        "max_steps": 156,
        "effective_batch_size": 128,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "optimizer": "adafactor",
        "max_length": 512,
        "save_steps": 50,
        "save_total_limit": 1,
    },
}


@dataclass(frozen=True)
class TrainConfig:
    reranker: str = "cross-encoder"
    model: str = "embedded:minilm-l6"
    epochs: float = 1.0
    learning_rate: float = 2e-5
    batch_size: int = 16
    """Examples per device and forward pass."""
    gradient_accumulation_steps: int = 1
    max_length: int = 256
    warmup_ratio: float = 0.1
    seed: int = 0
    preset: str | None = None
    """A named recipe from ``TRAIN_PRESETS`` (``inpars-paper``, ``inpars-paper-tpu``); its values are filled in when
    the config is built from YAML or ``--set``, or with ``TrainConfig.from_preset``: the fields given there win."""
    max_steps: int | None = None
    """Optimiser steps; replaces ``epochs`` when set (the data is repeated if it runs out)."""
    effective_batch_size: int | None = None
    """Examples per optimiser step over all processes; sets the gradient accumulation to reach it."""
    lr_scheduler: str = "linear"
    optimizer: str = "adamw_torch"
    weight_decay: float = 0.01
    precision: str = "auto"
    """auto (bf16 on a GPU that has it, else fp16 for encoders and fp32 for T5), bf16, fp16 or fp32 (or bfloat16,
    float16, float32)."""
    template: str | None = None
    """Seq2seq rerankers: the input with ``{query}`` and ``{document}``; None takes the reranker's default."""
    true_token: str | None = None
    """Seq2seq rerankers: the vocabulary token meaning relevant (``▁true`` for monoT5); None takes the default."""
    false_token: str | None = None
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass instead of keeping them: the same loss and gradients in a fraction of
    the memory (the demo's bi-encoder on long documents: 11 GB without), for about a quarter more time per step."""
    save_steps: int | None = None
    """Save a resumable checkpoint every this many steps; None saves only the final model."""
    save_total_limit: int = 2
    resume: str = "auto"
    """auto (continue from the last checkpoint written for the same config and data), never, or a checkpoint folder."""
    snapshots: int = 0
    """Also keep the model at this many evenly spaced steps before the end (``train/snapshots/step-N``, each a model
    the rerankers load): the select stage scores each on the held-out synthetic queries beside the final model."""

    presets: ClassVar[dict[str, dict[str, Any]]] = TRAIN_PRESETS
    runtime_only: ClassVar[tuple[str, ...]] = ("resume", "save_steps", "save_total_limit", "gradient_checkpointing")
    """How training is run or saved, not what it learns: a checkpoint stays resumable across them (checkpointing
    recomputes the same activations; a test checks the loss and gradients)."""
    omitted_at_default: ClassVar[tuple[str, ...]] = ("snapshots",)
    """Fields added after runs were recorded: left out of the fingerprint at their default, so those runs resume."""

    @classmethod
    def preset_values(cls, name: str) -> dict[str, Any]:
        if name not in cls.presets:
            raise InvalidValue("preset", f"is unknown: '{name}'", suggest(name, cls.presets))
        return dict(cls.presets[name])

    @classmethod
    def from_preset(cls, name: str, **fields_: Any) -> TrainConfig:
        """The preset's values, with ``fields_`` overriding them."""
        return cls(**{**cls.preset_values(name), **fields_, "preset": name})

    def __post_init__(self) -> None:
        check_float_fields(self)
        from inpars.rerank.base import rerankers

        if self.preset is not None:
            self.preset_values(self.preset)
        check_name(rerankers, "reranker", self.reranker)
        _check_dtype(self, "precision")
        if self.resume in ("", "True", "False"):
            raise InvalidValue("resume", f"is '{self.resume}'", "use auto, never or the path of a checkpoint folder")
        for key in ("batch_size", "gradient_accumulation_steps", "max_length", "save_total_limit"):
            if getattr(self, key) < 1:
                raise InvalidValue(key, f"is {getattr(self, key)}", "it must be at least 1")
        check_range(self, ("snapshots",), 0)
        check_seed(self)
        for key in ("max_steps", "effective_batch_size", "save_steps"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise InvalidValue(key, f"is {getattr(self, key)}", "it must be at least 1, or left unset")
        if self.epochs <= 0 and self.max_steps is None:
            raise InvalidValue(
                "epochs", f"is {self.epochs}: that trains on nothing", "give a positive number of epochs or set max_steps"
            )
        if self.learning_rate <= 0:
            raise InvalidValue("learning_rate", f"is {self.learning_rate}", "it must be positive")
        check_range(self, ("warmup_ratio",), 0, high=1)
        check_range(self, ("weight_decay",), 0)


@dataclass(frozen=True)
class RerankConfig:
    top_k: int = 100
    batch_size: int = 64
    max_length: int = 256
    reranker: str | None = None
    """The reranker kind; None: the kind the run trains (``train.reranker``)."""
    model: str | None = None
    """A model that reranks instead of one the run trains (a Hugging Face id or a folder): a run with it has no
    generation, filtering, mining or training."""

    runtime_only: ClassVar[tuple[str, ...]] = ("batch_size",)

    def __post_init__(self) -> None:
        check_float_fields(self)
        check_range(self, ("top_k", "batch_size", "max_length"), 1)
        if self.reranker is not None:
            from inpars.rerank.base import rerankers

            check_name(rerankers, "reranker", self.reranker)


SELECT_SOURCES = ("reranker", "first-stage")


@dataclass(frozen=True)
class SelectConfig:
    """Choosing the final system on synthetic queries held out of training (a validation set the method makes itself).

    The held-out queries are searched like the test queries: each source (the trained reranker over the first
    stage's candidates, or the first stage alone) is fused with BM25 at each weight, and the pair with the best
    ``measure`` against each query's source document reranks the test queries. The test judgements are never read.
    """

    validation: float = 0.0
    """Share of the documents with kept synthetic queries whose queries are held out of training (chosen by a hash of
    the document id); 0 trains on them all and reranks with the trained model alone, as the papers do."""
    max_validation: int = 200
    """At most this many documents held out, so a large collection keeps the rest for training."""
    bm25_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
    """BM25's weights tried in the fusion ``(1 - w) * model + w * BM25`` of per-query min-max normalised scores; 1 is
    BM25 alone."""
    sources: tuple[str, ...] = SELECT_SOURCES
    """What BM25 is fused with: ``reranker`` (the trained model) and/or ``first-stage`` (the untrained first stage)."""
    measure: str = "nDCG@10"
    bm25_gate: bool = True
    """Fuse BM25 (a weight above 0) only if, alone, it scores at least as well as the first stage alone on the held-out
    queries: synthetic queries share their document's words and so overrate lexical matching."""
    judge_model: str | None = None
    """Cross-generator validation: the held-out documents get new queries from this generator (same backend and
    settings as ``generate``), and the choice is made on those. Queries from the generator and prompt that wrote the
    training queries share their style, and so favour the model that learned it. None: judge on the training
    generator's own held-out queries."""
    judge_prompt: str | None = None
    """The prompt the judging queries are written with (a built-in name or a YAML file); None: ``generate.prompt``.
    With ``judge_model`` unset, the training generator writes them with this prompt."""

    omitted_at_default: ClassVar[tuple[str, ...]] = ("judge_model", "judge_prompt")
    """Fields added after runs were recorded: left out of the fingerprint at their default, so those runs resume."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        check_range(self, ("validation",), 0, high=0.5)
        check_range(self, ("max_validation",), 1)
        try:
            weights = tuple(float(w) for w in self.bm25_weights)
        except (TypeError, ValueError):
            raise InvalidValue(
                "bm25_weights", f"is {list(self.bm25_weights)}", "give numbers between 0 and 1, e.g. [0, 0.1, 0.3]"
            ) from None
        if not weights or any(not 0 <= w <= 1 for w in weights):
            raise InvalidValue("bm25_weights", f"is {list(self.bm25_weights)}", "give one or more numbers between 0 and 1")
        object.__setattr__(self, "bm25_weights", weights)
        _check_measures("measure", (self.measure,))
        unknown = [s for s in self.sources if s not in SELECT_SOURCES]
        if not self.sources or unknown:
            raise InvalidValue("sources", f"is {list(self.sources)}", f"use one or both of {', '.join(SELECT_SOURCES)}")

    @property
    def enabled(self) -> bool:
        return self.validation > 0


@dataclass(frozen=True)
class EvaluateConfig:
    measures: tuple[str, ...] = ("nDCG@10", "RR@10", "R@100")
    baseline: str | None = None
    """The system every other is tested against (bm25, the first stage's backend, or the reranker's name); None: the
    first stage (the zero-shot model when it is dense), so the p-values say what the synthetic queries added."""
    resamples: int = 10000
    """Resamples of the randomization test and of the bootstrap interval."""
    confidence: float = 0.95
    """Level of the bootstrap interval of each system's mean."""
    seed: int = 0
    """Seed of the resampling (the same seed gives the same p-values and intervals)."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        if not self.measures:
            raise InvalidValue("measures", "is empty", "name at least one ir_measures measure, e.g. nDCG@10")
        _check_measures("measures", self.measures)
        check_range(self, ("resamples",), 100)
        check_seed(self)
        check_range(self, ("confidence",), 0, strict=True, high=0.999)


@dataclass(frozen=True)
class PipelineConfig:
    name: str = "run"
    dataset: str = "faq-construction"
    """A registered dataset name (see ``inpars datasets``) or a local BEIR folder."""
    output_dir: str = "runs"
    fix_text: bool = False
    """Repair mojibake in every document and query (``ftfy.fix_text``) as the dataset is loaded, as the InPars
    reference code does; the paper recipes set it."""
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def __post_init__(self) -> None:
        for key in ("name", "dataset", "output_dir"):
            if not getattr(self, key).strip():
                raise InvalidValue(key, "is empty", "give it a value")
        name = self.name
        if name in (".", "..") or any(c in name for c in "/\\") or any(not c.isprintable() for c in name):
            raise InvalidValue("name", f"is {name!r}, not a folder name", "name the run with letters, digits, '-', '_' or '.'")

        judge_generate(self)  # a judge that would write the training queries again is refused before any stage runs

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


def judge_generate(config: PipelineConfig) -> GenerateConfig | None:
    """How the select stage's judging queries are written (``select.judge_model``, ``select.judge_prompt``), or None
    where the training generator's held-out queries judge. The judge is ``generate`` with the model and prompt
    replaced, over every held-out document; a chat template is kept only for the same model."""
    select, generate = config.select, config.generate
    if select.judge_model is None and select.judge_prompt is None:
        return None
    model, prompt = select.judge_model or generate.model, select.judge_prompt or generate.prompt
    if (model, prompt) == (generate.model, generate.prompt):
        key = "select.judge_model" if select.judge_model is not None else "select.judge_prompt"
        raise InvalidValue(
            key, f"names the model and prompt that write the training queries ({model}, {prompt})",
            "name another generator or prompt, or leave both judge settings out",
        )
    return dataclasses.replace(
        generate, model=model, prompt=prompt, num_docs=None, chat=generate.chat and model == generate.model
    )


def to_dict(config: Any) -> dict:
    data = dataclasses.asdict(config)
    return json.loads(json.dumps(data))  # tuples become lists, as in YAML


def identity(config: Any) -> dict:
    """A config section as its outputs depend on it: without the fields its class lists as ``runtime_only`` (how fast
    or where it runs, not what it makes), and a nested block without those its own class lists. Stage fingerprints and
    resume checks use this, so a run may continue with another batch size, device or ``generate.openai.concurrency``."""
    skip = getattr(config, "runtime_only", ())
    later = getattr(config, "omitted_at_default", ())
    defaults = {f.name: f.default for f in dataclasses.fields(config)} if later else {}
    data = {}
    for key, value in to_dict(config).items():
        if key in later and getattr(config, key) == defaults[key]:
            continue
        if key not in skip:
            block = getattr(config, key)  # a nested block (generate.openai) leaves out its own runtime_only fields
            data[key] = identity(block) if dataclasses.is_dataclass(block) else value
    return data


def fingerprint(*parts: Any) -> str:
    """A short stable hash of configs (dataclasses or plain data)."""
    payload = json.dumps([to_dict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- building


def _coerce(value: Any, annotation: Any, where: str, source: str, line: int | None) -> Any:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    optional = "None" in text
    if isinstance(value, _Override) and value.value is None:
        value = None
    if value is None:
        if optional:
            return None
        raise InputError(source, line, f"'{where}' cannot be empty", "give it a value")
    base = text.replace(" | None", "").strip()
    if isinstance(value, _Override) and base != "str":
        value = value.value
    try:
        if base == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base == "str":
            if isinstance(value, _Override):
                # YAML's reading where it is text (quotes removed: --set x="''" is empty), else the text as typed.
                return value.value if isinstance(value.value, str) else value.text
            if not isinstance(value, str):
                kind = "a boolean" if isinstance(value, bool) else "a number" if isinstance(value, (int, float)) else "not text"
                raise InputError(
                    source, line, f"'{where}' should be text, got {show(value)} ({kind}: YAML reads yes/no/on/off and bare "
                    "numbers so)", f"quote the value ({where.rsplit('.', 1)[-1]}: '...') to keep it as text"
                )
            return value
        if base == "bool":
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError
            return bool(value)
        if base.startswith("tuple"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)) or any(isinstance(v, (list, tuple, dict)) for v in value):
                raise ValueError
            return tuple(str(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(source, line, f"'{where}' should be {base}, got {show(value)}", "fix the value") from None
    return value


# Fields whose values are built by their stage's own code: (class name, field) -> "module:function".
# The function takes (value, source, lines, where) and returns the field's value.
FIELD_BUILDERS = {("FilterConfig", "steps"): "inpars.filter.base:build_steps"}


def _field_builder(cls: type, key: str):
    target = FIELD_BUILDERS.get((cls.__name__, key))
    if target is None:
        return None
    import importlib

    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def build(cls: type, data: dict, source: str = "<config>", lines: dict[str, int] | None = None, prefix: str = "") -> Any:
    """Build a (nested) config dataclass from plain data, rejecting unknown keys."""
    lines = lines or {}
    known = {f.name: f for f in fields(cls)}
    if not isinstance(data, dict):
        raise InputError(
            source,
            lines.get(prefix.rstrip(".")),
            f"'{prefix.rstrip('.') or 'config'}' should be a mapping",
            "indent its keys under it",
        )
    kwargs = {}
    presets = getattr(cls, "presets", None)
    preset = data.get("preset")
    preset = preset.text if isinstance(preset, _Override) else preset
    if presets is not None and isinstance(preset, str):
        try:
            data = {**cls.preset_values(preset), **data}
        except InvalidValue as exc:
            raise InputError(source, lines.get(f"{prefix}preset"), f"'{prefix}preset' {exc.problem}", exc.hint) from None
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in known:
            renamed = getattr(cls, "renamed", {})
            hint = f"it moved to '{prefix}{renamed[key]}'" if key in renamed else ""
            hint = hint or did_you_mean(key, known, f"known keys: {', '.join(known)}")
            raise InputError(source, lines.get(where), f"unknown key '{where}'", hint)
        annotation = known[key].type
        nested = _nested_class(known[key])
        builder = _field_builder(cls, key)
        if builder is not None:
            kwargs[key] = builder(_unwrap(value), source, lines, where)
        elif nested is not None:
            value = value.value if isinstance(value, _Override) else value
            kwargs[key] = build(nested, value or {}, source, lines, prefix=f"{where}.")
        else:
            kwargs[key] = _coerce(value, annotation, where, source, lines.get(where))
    try:
        return cls(**kwargs)
    except InvalidValue as exc:
        where = f"{prefix}{exc.key}"
        raise InputError(
            source, lines.get(where) or lines.get(prefix.rstrip(".")), f"'{where}' {exc.problem}", exc.hint
        ) from None
    except ValueError as exc:  # a dataclass's own check of its values (__post_init__)
        section = prefix.rstrip(".")
        raise InputError(source, lines.get(section), f"{section or 'config'}: {exc}", "fix the value") from None


def _nested_class(item: dataclasses.Field) -> type | None:
    """The dataclass of a nested section or block, known from its default (its class may live in a module that imports
    this one, as ``generate.openai`` does)."""
    if item.default_factory is dataclasses.MISSING:
        return None
    default = item.default_factory()
    return type(default) if dataclasses.is_dataclass(default) else None


@dataclass(frozen=True)
class _Override:
    """A ``--set`` scalar: YAML's reading of it, and the text as typed, which a text field takes as it is (``--set
    name=no`` names the run ``no``, not ``False``)."""

    text: str
    value: Any


def _unwrap(value: Any) -> Any:
    if isinstance(value, _Override):
        return value.value
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _override_value(raw: str) -> Any:
    """A YAML scalar or list; text that YAML reads otherwise (``Query: {query} ...``) stays the text it is."""
    if not raw.strip():
        return None
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, dict) and not raw.lstrip().startswith("{"):
        return raw
    return value


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict:
    """``["generate.num_docs=50", "name=x"]`` -> nested dict; values are parsed as YAML scalars."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise InputError("--set", None, f"override '{item}' has no '='", "write key=value, e.g. generate.num_docs=50")
        key, _, raw = item.partition("=")
        value = _override_value(raw)
        if not isinstance(value, (dict, list)):
            value = _Override(raw.strip(), value)
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_pipeline_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), text: str | None = None
) -> PipelineConfig:
    """Load a recipe from YAML (a path, or ``text``) and apply ``key=value`` overrides."""
    source = str(path) if path is not None else "<recipe>"
    lines: dict[str, int] = {}
    data: dict = {}
    if path is not None or text is not None:
        if text is None:
            p = Path(path)  # type: ignore[arg-type]
            if not p.is_file():
                raise InputError(p, None, "recipe not found", "check the path, or use a bundled recipe (see 'inpars run --help')")
            text = read_text(p, "recipe")
        data, lines = parse_yaml(text, source, "fix the recipe")
        if data is None or data == {}:
            raise InputError(
                source, None, "the recipe is empty", "give it the keys to set (see recipes/demo.yaml), or run without a recipe"
            )
        if not isinstance(data, dict):
            raise InputError(source, 1, "a recipe must be a mapping of keys", "see recipes/demo.yaml")
    extra = parse_overrides(overrides)
    data = _merge(data, extra)
    keys = _dotted(extra)
    lines = {key: line for key, line in lines.items() if key not in keys}  # a value set by --set is not the recipe's
    try:
        return build(PipelineConfig, data, source, lines)
    except InputError as exc:
        # A key set on the command line (--set, or a flag) has no line in the recipe: name the command line, not the recipe.
        named = {".".join(key.split(".")[: i + 1]) for key in keys for i in range(key.count(".") + 1)}
        if exc.line is None and any(f"'{key}'" in str(exc) for key in named):
            raise InputError("command line", None, str(exc).split(": ", 1)[1]) from None
        raise


def _dotted(nested: dict, prefix: str = "") -> set[str]:
    """The dotted keys of the values in ``nested`` (``generate.num_docs``), sections left out."""
    keys = set()
    for key, value in nested.items():
        if isinstance(value, dict):
            keys |= _dotted(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
