"""Leakage: synthetic training queries that repeat, or nearly repeat, a test query.

A language model shown a document may write the very question the collection's test set asks about it; training on
that question would flatter the test scores. Each test query is compared with the synthetic queries a run trained on:
the same text once normalised (Unicode NFKC, case folded, punctuation dropped, spaces collapsed) is a duplicate, and a
Jaccard similarity of their word n-grams at or above ``NEAR`` is a near duplicate.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

NGRAM = 3
"""Word n-grams compared (a query shorter than this is compared by its whole word sequence)."""
NEAR = 0.5
"""Jaccard similarity of word n-grams from which two queries count as near duplicates."""
WARN_SHARE = 0.01
"""Share of test queries with a duplicate or near duplicate above which a run warns."""

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    """Text as duplicates are found: NFKC, case folded, punctuation dropped, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCTUATION.sub(" ", folded).split())


def shingles(words: list[str], n: int = NGRAM) -> frozenset[tuple[str, ...]]:
    if not words:
        return frozenset()
    if len(words) < n:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


@dataclass
class Leakage:
    test_queries: int
    synthetic_queries: int
    duplicates: int
    """Test queries whose normalised text a synthetic query repeats."""
    near_duplicates: int
    """Further test queries with a synthetic query at Jaccard >= ``near`` (duplicates not counted again)."""
    near: float = NEAR
    ngram: int = NGRAM
    examples: list[dict] = field(default_factory=list)

    @property
    def share(self) -> float:
        return (self.duplicates + self.near_duplicates) / self.test_queries if self.test_queries else 0.0

    def as_dict(self) -> dict:
        return {
            "test_queries": self.test_queries,
            "synthetic_queries": self.synthetic_queries,
            "duplicates": self.duplicates,
            "near_duplicates": self.near_duplicates,
            "share": round(self.share, 6),
            "near": self.near,
            "ngram": self.ngram,
            "warn_above": WARN_SHARE,
            "examples": self.examples,
        }


def find_leakage(
    test: Mapping[str, str], synthetic: Iterable[tuple[str, str]], near: float = NEAR, n: int = NGRAM, examples: int = 5
) -> Leakage:
    """Compare ``test`` (query id -> text) with ``synthetic`` ((query id, text) pairs) as the module says."""
    exact: dict[str, str] = {}
    grams: dict[str, frozenset] = {}
    by_gram: dict[tuple[str, ...], list[str]] = {}
    for query_id, text in test.items():
        norm = normalise(text)
        if not norm:
            continue
        exact.setdefault(norm, query_id)
        grams[query_id] = shingles(norm.split(), n)
        for gram in grams[query_id]:
            by_gram.setdefault(gram, []).append(query_id)
    duplicate: dict[str, str] = {}
    close: dict[str, tuple[str, float]] = {}
    count = 0
    texts = {}
    for synthetic_id, text in synthetic:
        count += 1
        norm = normalise(text)
        if not norm:
            continue
        if norm in exact:
            duplicate.setdefault(exact[norm], synthetic_id)
            texts[synthetic_id] = text
            continue
        mine = shingles(norm.split(), n)
        seen: set[str] = set()
        for gram in mine:
            for query_id in by_gram.get(gram, ()):
                if query_id in seen or query_id in duplicate:
                    continue
                seen.add(query_id)
                other = grams[query_id]
                similarity = len(mine & other) / len(mine | other)
                if similarity >= near and similarity > close.get(query_id, ("", 0.0))[1]:
                    close[query_id] = (synthetic_id, similarity)
                    texts[synthetic_id] = text
    near_only = {q: v for q, v in close.items() if q not in duplicate}
    shown = [
        {"test_query": q, "test_text": test[q], "synthetic_query": s, "synthetic_text": texts[s], "similarity": 1.0}
        for q, s in list(duplicate.items())[:examples]
    ]
    shown += [
        {"test_query": q, "test_text": test[q], "synthetic_query": s, "synthetic_text": texts[s], "similarity": round(sim, 4)}
        for q, (s, sim) in list(near_only.items())[: max(0, examples - len(shown))]
    ]
    return Leakage(len(test), count, len(duplicate), len(near_only), near, n, shown)


def warn(leakage: Leakage) -> None:
    """Log a warning when more than ``WARN_SHARE`` of the test queries have a synthetic duplicate."""
    if leakage.share > WARN_SHARE:
        logger.warning(
            "leakage: %d of %d test queries (%.1f%%) have a synthetic training query that repeats them (%d) or nearly "
            "does (%d, word %d-gram Jaccard >= %g); their scores may be flattered (metrics.json, 'leakage')",
            leakage.duplicates + leakage.near_duplicates, leakage.test_queries, 100 * leakage.share, leakage.duplicates,
            leakage.near_duplicates, leakage.ngram, leakage.near,
        )
