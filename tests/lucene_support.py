"""The ``lucene`` fixture: import it into a test module that needs the Lucene backend."""

from __future__ import annotations

import pytest

from inpars.data import Doc


@pytest.fixture(scope="session")
def lucene():
    """pyserini's Lucene search module with the JVM started; skips, saying why, where Java or pyserini is missing."""
    from inpars.errors import InparsError
    from inpars.retrieve.pyserini import lucene as load_lucene

    try:
        return load_lucene()
    except InparsError as exc:
        pytest.skip(f"Lucene (pyserini) unavailable: {exc}")


# A tiny corpus that both retriever test modules search.
DOCS = [
    Doc("d1", "Insulin is a hormone made by the pancreas.", title="Insulin"),
    Doc("d2", "The Eiffel Tower stands in Paris and is 330 metres tall."),
    Doc("d3", "Photosynthesis turns sunlight, water and carbon dioxide into sugar in plant leaves."),
    Doc("d4", "A building permit is needed before an extension is built on a house."),
    Doc("d5", "Paris is the capital of France."),
]
