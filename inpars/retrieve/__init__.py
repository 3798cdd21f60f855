"""First-stage retrieval behind one registry."""

from inpars.retrieve.base import Retriever, retrievers

__all__ = ["Retriever", "retrievers"]
