"""The ``lucene`` fixture: import it into a test module that needs the Lucene backend."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def lucene():
    """pyserini's Lucene search module with the JVM started; skips, saying why, where Java or pyserini is missing."""
    from inpars.errors import InparsError
    from inpars.retrieve.pyserini import lucene as load_lucene

    try:
        return load_lucene()
    except InparsError as exc:
        pytest.skip(f"Lucene (pyserini) unavailable: {exc}")
