"""Cheap filters that need no model: empty outputs, duplicates, length bounds, queries copied from the document."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from inpars.checks import check_float_fields
from inpars.data import SyntheticQuery
from inpars.errors import InparsError
from inpars.filter.base import Filter, FilterContext, StepOutcome

_TOKEN = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Unicode-folded, lower-cased word characters separated by single spaces (punctuation dropped)."""
    return " ".join(_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()))


def count_words(text: str) -> int:
    """Whitespace-separated pieces that hold at least one letter or digit."""
    return sum(1 for piece in text.split() if any(c.isalnum() for c in piece))


# ---------------------------------------------------------------------------------------------- empty


@dataclass(frozen=True)
class EmptyConfig:
    name: str = field(default="empty", init=False)


class EmptyFilter(Filter):
    """Drops outputs without a single letter or digit (an empty line, ``?``, ``...``)."""

    Config = EmptyConfig

    def apply(self, queries: list[SyntheticQuery], context: FilterContext) -> StepOutcome:
        kept, dropped = [], []
        for q in queries:
            if any(c.isalnum() for c in q.text):
                kept.append(q)
            else:
                dropped.append((q, "empty", repr(q.text)))
        return StepOutcome(kept, dropped)


# ---------------------------------------------------------------------------------------------- duplicates


@dataclass(frozen=True)
class DedupConfig:
    name: str = field(default="dedup", init=False)
    normalised: bool = True
    """Also count as duplicates texts that differ only in case, punctuation and spacing."""
    scope: str = "all"
    """``all``: one query per text over the whole set; ``document``: one per text for each source document."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        if self.scope not in ("all", "document"):
            raise ValueError(f"dedup scope must be 'all' or 'document', got '{self.scope}'")


class DedupFilter(Filter):
    """Keeps the first query of each text (in input order) and drops its exact or normalised repeats."""

    Config = DedupConfig

    def apply(self, queries: list[SyntheticQuery], context: FilterContext) -> StepOutcome:
        exact: dict[tuple[str, str], str] = {}
        folded: dict[tuple[str, str], str] = {}
        kept, dropped = [], []
        for q in queries:
            group = q.doc_id if self.config.scope == "document" else ""
            text_key = (group, q.text.strip())
            norm_key = (group, normalise(q.text))
            if text_key in exact:
                dropped.append((q, "exact duplicate", f"of {exact[text_key]}"))
            elif self.config.normalised and norm_key in folded:
                dropped.append((q, "normalised duplicate", f"of {folded[norm_key]}"))
            else:
                exact[text_key] = q.query_id
                folded.setdefault(norm_key, q.query_id)
                kept.append(q)
        return StepOutcome(kept, dropped)


# ---------------------------------------------------------------------------------------------- length


class _Lengths:
    """Word and token counts of queries; tokens are the generator's own (one log-prob each) unless a tokenizer is named."""

    def __init__(self, tokenizer: str | None) -> None:
        self.tokenizer_name = tokenizer
        self._tokenizer = None

    def words(self, query: SyntheticQuery) -> int:
        return count_words(query.text)

    def tokens(self, query: SyntheticQuery) -> int:
        if self.tokenizer_name is None:
            if query.text.strip() and not query.log_probs:
                raise InparsError(
                    f"query '{query.query_id}' has no per-token log-probs to count its tokens; name a tokenizer in the length "
                    "step (tokenizer: <model>) or bound words instead"
                )
            return len(query.log_probs)
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from inpars.models import resolve

            self._tokenizer = AutoTokenizer.from_pretrained(resolve(self.tokenizer_name))
        return len(self._tokenizer(query.text, add_special_tokens=False)["input_ids"])


def _check_bounds(words: int | None, tokens: int | None, which: str) -> None:
    if words is None and tokens is None:
        raise ValueError(f"{which}_length needs {which}_words or {which}_tokens")
    for key, value in ((f"{which}_words", words), (f"{which}_tokens", tokens)):
        if value is not None and value < 0:
            raise ValueError(f"{key} must not be negative, got {value}")


@dataclass(frozen=True)
class MinLengthConfig:
    name: str = field(default="min_length", init=False)
    min_words: int | None = None
    min_tokens: int | None = None
    tokenizer: str | None = None
    """Count tokens with this model's tokenizer instead of the generator's tokens."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        _check_bounds(self.min_words, self.min_tokens, "min")


@dataclass(frozen=True)
class MaxLengthConfig:
    name: str = field(default="max_length", init=False)
    max_words: int | None = None
    max_tokens: int | None = None
    tokenizer: str | None = None
    """Count tokens with this model's tokenizer instead of the generator's tokens."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        _check_bounds(self.max_words, self.max_tokens, "max")


class _LengthFilter(Filter):
    shortest: bool

    def __init__(self, config) -> None:
        super().__init__(config)
        self.lengths = _Lengths(config.tokenizer)

    def apply(self, queries: list[SyntheticQuery], context: FilterContext) -> StepOutcome:
        prefix = "min" if self.shortest else "max"
        bounds = [(unit, getattr(self.config, f"{prefix}_{unit}"), getattr(self.lengths, unit)) for unit in ("words", "tokens")]
        kept, dropped = [], []
        for q in queries:
            failed = None
            for unit, bound, count in bounds:
                if bound is None:
                    continue
                n = count(q)
                if (n < bound) if self.shortest else (n > bound):
                    failed = f"{n} {unit} {'<' if self.shortest else '>'} {bound}"
                    break
            if failed:
                dropped.append((q, "too short" if self.shortest else "too long", failed))
            else:
                kept.append(q)
        return StepOutcome(kept, dropped)


class MinLengthFilter(_LengthFilter):
    """Drops queries with fewer than ``min_words`` words or ``min_tokens`` tokens."""

    Config = MinLengthConfig
    shortest = True


class MaxLengthFilter(_LengthFilter):
    """Drops queries with more than ``max_words`` words or ``max_tokens`` tokens."""

    Config = MaxLengthConfig
    shortest = False


# ---------------------------------------------------------------------------------------------- copied


@dataclass(frozen=True)
class CopiedConfig:
    name: str = field(default="copied", init=False)
    n: int = 3
    """Word n-grams compared (a query shorter than n is compared whole)."""
    max_overlap: float = 0.75
    """Drop a query when more than this share of its n-grams occur in its source document."""

    def __post_init__(self) -> None:
        check_float_fields(self)
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if not 0.0 <= self.max_overlap <= 1.0:
            raise ValueError(f"max_overlap is a share between 0 and 1, got {self.max_overlap}")


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def copied_overlap(query: str, doc: str, n: int) -> float:
    """The share of the query's word n-grams (after :func:`normalise`) that occur in the document."""
    words = normalise(query).split()
    if not words:
        return 0.0
    size = min(n, len(words))
    grams = ngrams(words, size)
    return len(grams & ngrams(normalise(doc).split(), size)) / len(grams)


class CopiedFilter(Filter):
    """Drops queries that copy their source document (word n-gram overlap above ``max_overlap``)."""

    Config = CopiedConfig
    needs_docs = True

    def apply(self, queries: list[SyntheticQuery], context: FilterContext) -> StepOutcome:
        kept, dropped, scores = [], [], {}
        for q in queries:
            overlap = copied_overlap(q.text, context.doc("copied", q).full_text, self.config.n)
            scores[q.query_id] = overlap
            if overlap > self.config.max_overlap:
                dropped.append(
                    (q, "copied from document", f"{overlap:.2f} of its {self.config.n}-grams > {self.config.max_overlap:g}")
                )
            else:
                kept.append(q)
        return StepOutcome(kept, dropped, scores, f"share of {self.config.n}-grams in the document", self.config.max_overlap)
