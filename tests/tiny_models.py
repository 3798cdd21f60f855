"""Tiny randomly initialised T5 rerankers for the tests: the library builds them (``inpars.models``), from the
sentences a test gives, so that the tests and the ``embedded:t5-tiny-random`` stand-in share one builder."""

from __future__ import annotations

from inpars.models import build_random_t5 as build_t5
from inpars.models import build_t5_tokenizer as build_tokenizer

__all__ = ["build_t5", "build_tokenizer"]
