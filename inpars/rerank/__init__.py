"""Rerankers behind one registry, and reranking of a first-stage run."""

from inpars.rerank.base import Reranker, rerank_run, rerankers

__all__ = ["Reranker", "rerank_run", "rerankers"]
