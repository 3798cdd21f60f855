"""Indexes cached on disk, keyed by what they were built from: the documents (ids and texts) and the parameters.

An index lives in ``inpars.models.cache_dir() / "indexes" / "<backend>-<fingerprint>"``. It is built in a temporary
folder and renamed into place, so an interrupted build never leaves a folder that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from inpars import io
from inpars.data import Doc
from inpars.models import cache_dir

logger = logging.getLogger(__name__)

MANIFEST = "inpars-index.json"


def corpus_fingerprint(docs: Sequence[Doc], params: Mapping[str, object]) -> str:
    """A short hash of the documents' ids and indexed texts, in order, and of the index parameters."""
    digest = hashlib.sha256(json.dumps(dict(params), sort_keys=True).encode())
    for doc in docs:
        for part in (doc.doc_id, doc.full_text):
            data = part.encode("utf-8")
            # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()[:20]


def index_root() -> Path:
    return cache_dir() / "indexes"


def cached_index(backend: str, docs: Sequence[Doc], params: Mapping[str, object], build: Callable[[Path], None]) -> Path:
    """The folder of the index of ``docs`` under ``params``, calling ``build(folder)`` only when none is cached."""
    fingerprint = corpus_fingerprint(docs, params)
    target = index_root() / f"{backend}-{fingerprint}"
    if (target / MANIFEST).is_file():
        logger.info("%s index: cached in %s", backend, target)
        return target
    if target.exists():
        # A folder without a manifest was not written by this function; it cannot be trusted.
        logger.warning("replacing %s, which has no %s", target, MANIFEST)
        shutil.rmtree(target)
    started = time.perf_counter()
    with io.atomic_directory(target) as staging:
        build(staging)
        io.write_json(
            staging / MANIFEST, {"backend": backend, "fingerprint": fingerprint, "documents": len(docs), "params": dict(params)}
        )
    logger.info("%s index of %d documents built in %.1f s: %s", backend, len(docs), time.perf_counter() - started, target)
    return target
