"""The embedded SmolLM2-135M through the hf backend (slow: a real model)."""

from __future__ import annotations

import pytest
from generate_helpers import assert_same

from inpars.generate import GenerationRequest
from inpars.prompt import load_prompt

pytestmark = pytest.mark.slow


def test_smollm2_writes_the_same_queries_batched_with_a_shared_prefix_as_one_by_one(smollm2, faq_slice):
    from inpars.generate.hf import HFGenerator

    naive = HFGenerator("embedded:smollm2-135m", device="cpu", reuse_prefix=False)
    prompt = load_prompt("inpars")
    docs = list(faq_slice.docs.values())[:6]
    requests = [GenerationRequest(prompt.prefix, prompt.suffix(smollm2.truncate(d.full_text, 128))) for d in docs]
    ours = smollm2.generate(requests, max_new_tokens=32)
    assert_same(ours, [naive.generate([r], max_new_tokens=32)[0] for r in requests])
    assert all(o.text and o.finished for o in ours)  # a real model ends its query with a newline


@pytest.mark.parametrize("name", ["inpars-gbq", "promptagator-fiqa"])
def test_smollm2_with_each_prompt_family(smollm2, faq, tmp_path, name):
    from dataclasses import replace

    from inpars.config import GenerateConfig
    from inpars.generate import generate_queries
    from inpars.io import read_synthetic

    config = replace(GenerateConfig(), prompt=name, num_docs=4, max_new_tokens=32, max_doc_tokens=128, device="cpu")
    summary = generate_queries(faq.docs.values(), config, tmp_path / "q.jsonl", generator=smollm2, dataset="faq-construction")
    rows = read_synthetic(tmp_path / "q.jsonl")
    assert summary.generated == 4 and sum(bool(r.text) for r in rows) >= 3
