"""Shared fixtures: the embedded collection, a slice of it, and the embedded generator loaded once per run."""

from __future__ import annotations

import os

import pytest

from inpars.data import Dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def faq() -> Dataset:
    from inpars.datasets import load_dataset

    return load_dataset("faq-construction")


@pytest.fixture(scope="session")
def faq_slice(faq) -> Dataset:
    """The first 40 documents of faq-construction and their questions, in a stable order."""
    ids = sorted(faq.docs)[:40]
    return Dataset(
        name="faq-slice",
        docs={i: faq.docs[i] for i in ids},
        queries={i: faq.queries[i] for i in ids},
        qrels={i: faq.qrels[i] for i in ids},
    )


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2-135M generator (converted once, then cached)."""
    from inpars.generate.hf import HFGenerator

    return HFGenerator("embedded:smollm2-135m", device="cpu")
