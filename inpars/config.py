"""Configuration: one frozen dataclass per stage, composed into a pipeline config that loads from YAML.

Precedence: command-line overrides > YAML > defaults. Unknown keys are errors that name the file and line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from inpars.errors import InputError


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
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"


@dataclass(frozen=True)
class FilterConfig:
    method: str | None = None
    """Shorthand for one LM-score step: sum_log_probs, mean_log_probs (the default) or mean_probs."""
    top_k: int | None = None
    """With the shorthand: keep the best k queries; None keeps every non-empty query."""
    steps: tuple[Any, ...] = ()
    """Filters applied in order, each a mapping with a ``name`` (see ``inpars.filter``); replaces method/top_k."""

    def __post_init__(self) -> None:
        if self.steps and (self.method is not None or self.top_k is not None):
            raise ValueError("give either filter.method/top_k or filter.steps, not both; put the LM score in the steps as {name: lm_score, method: ..., top_k: ...}")


@dataclass(frozen=True)
class RetrieveConfig:
    backend: str = "bm25s"
    k1: float = 0.9
    b: float = 0.4
    top_k: int = 100
    stemmer: str = "english"
    stopwords: str = "en"


@dataclass(frozen=True)
class NegativesConfig:
    depth: int = 1000
    """Negatives are drawn from each synthetic query's BM25 top ``depth``."""
    num_negatives: int = 1
    strategy: str = "random"
    """``random`` (as in the papers) or ``hardest`` (the highest-ranked non-positive documents)."""
    seed: int = 0


@dataclass(frozen=True)
class TrainConfig:
    reranker: str = "cross-encoder"
    model: str = "embedded:minilm-l6"
    epochs: float = 1.0
    learning_rate: float = 2e-5
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    max_length: int = 256
    warmup_ratio: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class RerankConfig:
    top_k: int = 100
    batch_size: int = 64
    max_length: int = 256


@dataclass(frozen=True)
class EvaluateConfig:
    measures: tuple[str, ...] = ("nDCG@10", "RR@10", "R@100")


@dataclass(frozen=True)
class PipelineConfig:
    name: str = "run"
    dataset: str = "faq-construction"
    """A registered dataset name (see ``inpars datasets``) or a local BEIR folder."""
    output_dir: str = "runs"
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    negatives: NegativesConfig = field(default_factory=NegativesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


STAGES = ("generate", "filter", "negatives", "train", "retrieve", "rerank", "evaluate")


def to_dict(config: Any) -> dict:
    data = dataclasses.asdict(config)
    return json.loads(json.dumps(data))  # tuples become lists, as in YAML


def fingerprint(*parts: Any) -> str:
    """A short stable hash of configs (dataclasses or plain data)."""
    payload = json.dumps([to_dict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- building


def _coerce(value: Any, annotation: Any, where: str, source: str, line: int | None) -> Any:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    optional = "None" in text
    if value is None:
        if optional:
            return None
        raise InputError(source, line, f"'{where}' cannot be empty", "give it a value")
    base = text.replace(" | None", "").strip()
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
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
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
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return tuple(str(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(source, line, f"'{where}' should be {base}, got {value!r}", "fix the value") from None
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
        raise InputError(source, lines.get(prefix.rstrip(".")), f"'{prefix.rstrip('.') or 'config'}' should be a mapping", "indent its keys under it")
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            raise InputError(source, lines.get(where), f"unknown key '{where}'", hint)
        annotation = known[key].type
        nested = _nested_class(cls, key)
        builder = _field_builder(cls, key)
        if builder is not None:
            kwargs[key] = builder(value, source, lines, where)
        elif nested is not None:
            kwargs[key] = build(nested, value or {}, source, lines, prefix=f"{where}.")
        else:
            kwargs[key] = _coerce(value, annotation, where, source, lines.get(where))
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a dataclass's own check of its values (__post_init__)
        section = prefix.rstrip(".")
        raise InputError(source, lines.get(section), f"{section or 'config'}: {exc}", "fix the value") from None


def _nested_class(cls: type, key: str) -> type | None:
    hints = typing.get_type_hints(cls)
    target = hints.get(key)
    return target if dataclasses.is_dataclass(target) else None


def _key_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            out[key] = key_node.start_mark.line + 1
            out.update(_key_lines(value_node, prefix=f"{key}."))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = f"{prefix}{index}"
            out[key] = item.start_mark.line + 1
            out.update(_key_lines(item, prefix=f"{key}."))
    return out


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict:
    """``["generate.num_docs=50", "name=x"]`` -> nested dict; values are parsed as YAML scalars."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise InputError("--set", None, f"override '{item}' has no '='", "write key=value, e.g. generate.num_docs=50")
        key, _, raw = item.partition("=")
        value = yaml.safe_load(raw) if raw.strip() else None
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


def load_pipeline_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), text: str | None = None) -> PipelineConfig:
    """Load a recipe from YAML (a path, or ``text``) and apply ``key=value`` overrides."""
    source = str(path) if path is not None else "<recipe>"
    lines: dict[str, int] = {}
    data: dict = {}
    if path is not None or text is not None:
        if text is None:
            p = Path(path)  # type: ignore[arg-type]
            if not p.is_file():
                raise InputError(p, None, "recipe not found", "check the path, or use a bundled recipe (see 'inpars run --help')")
            text = p.read_text(encoding="utf-8")
        try:
            node = yaml.compose(text)
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise InputError(source, mark.line + 1 if mark else None, f"invalid YAML ({getattr(exc, 'problem', exc)})", "fix the recipe") from None
        if node is not None:
            lines = _key_lines(node)
        if not isinstance(data, dict):
            raise InputError(source, 1, "a recipe must be a mapping of keys", "see recipes/demo.yaml")
    data = _merge(data, parse_overrides(overrides))
    return build(PipelineConfig, data, source, lines)


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)
