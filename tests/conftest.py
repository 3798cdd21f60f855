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


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory, faq):
    """A tiny random T5 and a Unigram tokenizer counted from faq-construction text (inpars.models.build_random_t5)."""
    from inpars.models import build_random_t5

    ids = sorted(faq.docs)[:60]
    sentences = [faq.docs[i].text for i in ids] + [faq.queries[i].text for i in ids]
    return build_random_t5(tmp_path_factory.mktemp("tiny-t5"), sentences)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy machine torch's waiting threads cost more than the work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
