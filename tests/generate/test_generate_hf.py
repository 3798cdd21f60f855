"""The transformers backend: stopping with a non-GPT-2 tokenizer, the shared-prefix path against the naive one, sampling."""

from __future__ import annotations

import pytest
from generate_helpers import VOCAB, assert_same, build_tokenizer

from inpars.generate.base import GenerationRequest, kept_tokens, stop_token_ids
from inpars.generate.hf import HFGenerator

PREFIX = "example 1 : the water is cold . what is the river ?\ndocument : green road\nquery : where is the road ?\n"


def _requests(count: int) -> list[GenerationRequest]:
    words = ["fire", "stone", "green", "old", "road", "house", "river", "small", "large", "blue", "red", "dark"]
    return [
        GenerationRequest(PREFIX, "document : " + " ".join(words[: 1 + (3 * k) % len(words)]) + " query :", seed=k)
        for k in range(count)
    ]


def test_stop_ids_come_from_the_vocabulary_not_a_fixed_id():
    tokenizer = build_tokenizer()
    assert stop_token_ids(tokenizer) == {VOCAB.index("</s>"), VOCAB.index("\n"), VOCAB.index("?\n")}
    assert len(tokenizer) < 198  # GPT-2's newline id, which the reference hard-codes, does not even exist here


def test_kept_tokens_cuts_at_the_first_newline():
    assert kept_tokens(["what", " is", "?\n", "more"]) == 3  # '?' before the newline belongs to the query
    assert kept_tokens(["what", " is", "\n", "more"]) == 2
    assert kept_tokens(["what", " is", " \n"]) == 2
    assert kept_tokens(["what", "</s>", "x"], [False, True, False]) == 1
    assert kept_tokens(["what", " is"]) == 2


def test_generation_stops_at_a_newline_piece_of_a_word_level_tokenizer(successor_lm):
    generator = HFGenerator(str(successor_lm), device="cpu")
    out = generator.generate(_requests(3), max_new_tokens=20)
    for gen in out:
        # what -> is -> this -> '?\n' (stop): four tokens, the last one's '?' is kept with its log-prob.
        assert gen.text == "what is this ?"
        assert len(gen.log_probs) == 4 and gen.finished
        assert all(-0.1 < lp < 0 for lp in gen.log_probs)


def test_a_query_cut_by_max_new_tokens_is_not_finished(successor_lm):
    out = HFGenerator(str(successor_lm), device="cpu").generate(_requests(1), max_new_tokens=2)
    assert out[0].text == "what is" and not out[0].finished and len(out[0].log_probs) == 2


@pytest.mark.parametrize(
    ("dtype", "loaded"), [("bf16", "bfloat16"), ("bfloat16", "bfloat16"), ("fp32", "float32"), ("auto", "float32")]
)
def test_every_dtype_name_loads_the_model_in_that_dtype(random_lm, dtype, loaded):
    import torch

    assert HFGenerator(str(random_lm), device="cpu", dtype=dtype).model.dtype == getattr(torch, loaded)


@pytest.fixture(scope="module")
def naive(random_lm):
    return HFGenerator(str(random_lm), device="cpu", reuse_prefix=False)


@pytest.fixture(scope="module")
def shared(random_lm):
    return HFGenerator(str(random_lm), device="cpu")


def test_shared_prefix_attention_matches_running_each_prompt_whole(shared, naive):
    assert shared.shared_attention and not naive.shared_attention
    requests = _requests(9)
    expected = [naive.generate([r], max_new_tokens=12)[0] for r in requests]
    assert_same(shared.generate(requests, max_new_tokens=12), expected)
    # Rows of different lengths, some stopping early (leaving the batch) and some running to the limit.
    assert len({len(r.suffix) for r in requests}) > 3
    assert {o.finished for o in expected} == {True, False}


def test_prefill_in_chunks_of_similar_length_matches_too(random_lm, naive):
    chunked = HFGenerator(str(random_lm), device="cpu")
    chunked.prefill_tokens = 12  # a few rows per prefill pass instead of the whole batch
    requests = _requests(9)[::-1]  # longest first: the generator sorts them and answers in the order asked
    assert_same(chunked.generate(requests, max_new_tokens=12), [naive.generate([r], max_new_tokens=12)[0] for r in requests])


def test_prefix_copy_fallback_matches_too(random_lm, naive):
    fallback = HFGenerator(str(random_lm), device="cpu")
    fallback.model.set_attn_implementation("sdpa")
    fallback.shared_attention = False  # what a model whose attention cannot be swapped gets
    requests = _requests(5)
    assert_same(fallback.generate(requests, max_new_tokens=10), naive.generate(requests, max_new_tokens=10))


def test_sampling_is_seeded_per_request(shared):
    requests = _requests(4)
    first = shared.generate(requests, max_new_tokens=10, temperature=1.0)
    assert_same(shared.generate(requests[1:2], max_new_tokens=10, temperature=1.0), first[1:2])
    reseeded = [GenerationRequest(r.prefix, r.suffix, seed=r.seed + 100) for r in requests]
    assert [o.text for o in shared.generate(reseeded, max_new_tokens=10, temperature=1.0)] != [o.text for o in first]


def test_a_tiny_top_p_keeps_only_the_best_token(shared):
    requests = _requests(3)
    assert_same(
        shared.generate(requests, max_new_tokens=8, temperature=1.0, top_p=1e-6), shared.generate(requests, max_new_tokens=8)
    )


def test_a_batch_must_share_its_prefix(shared):
    with pytest.raises(ValueError, match="share one prefix"):
        shared.generate([GenerationRequest("a", "b"), GenerationRequest("c", "d")])
