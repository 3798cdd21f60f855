"""Every registered reranker through the same checks, then what is particular to monoT5.

monoT5 runs on a tiny random T5 (inpars.models.build_random_t5); the cross-encoder and the bi-encoder on all-MiniLM-L6-v2
from its package.
"""

from __future__ import annotations

import math
import random
import shutil

import pytest

from inpars import io
from inpars.config import TrainConfig
from inpars.data import TrainingExample
from inpars.errors import InparsError
from inpars.models import MINILM
from inpars.rerank import rerank_run, rerankers
from inpars.rerank.monot5 import FlanT5Reranker, MonoT5Reranker, PromptTemplate, encode_prompts, training_features
from inpars.rerank.training import METADATA

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # two shared cores: one torch thread keeps tiny models quick


MODELS = {"monot5": "tiny-t5", "flan-t5": "tiny-t5", "cross-encoder": MINILM, "bi-encoder": MINILM}


def model_for(kind: str, tiny_t5) -> str:
    return str(tiny_t5) if MODELS[kind] == "tiny-t5" else MODELS[kind]


def toy_examples(n: int = 24, seed: int = 0) -> list[TrainingExample]:
    """A separable task: relevant documents say 'approved', the others 'rejected'."""
    rng = random.Random(seed)
    words = ["house", "roof", "wall", "permit", "tax", "garden", "window", "door", "floor", "stairs"]
    rows = []
    for i in range(n):
        query = " ".join(rng.sample(words, 3))
        rows.append(TrainingExample(f"q{i}", query, f"p{i}", f"approved: the {query} work is approved", 1))
        rows.append(
            TrainingExample(f"q{i}", query, f"n{i}", f"rejected: the {' '.join(rng.sample(words, 3))} work is rejected", 0)
        )
    return rows


def faq_pairs(faq_slice, n: int = 9) -> list[tuple[str, str]]:
    ids = sorted(faq_slice.docs)
    return [(faq_slice.queries[ids[i]].text, faq_slice.docs[ids[(i * 7) % len(ids)]].text) for i in range(n)]


def margin(scores: list[float], examples: list[TrainingExample]) -> float:
    """Mean score of the relevant pairs minus that of the others."""
    positives = [s for s, e in zip(scores, examples) if e.label == 1]
    negatives = [s for s, e in zip(scores, examples) if e.label == 0]
    return sum(positives) / len(positives) - sum(negatives) / len(negatives)


def train_config(kind: str, tiny_t5, **fields) -> TrainConfig:
    base = {
        "reranker": kind,
        "model": model_for(kind, tiny_t5),
        "max_steps": 2,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "max_length": 48,
        "warmup_ratio": 0.0,
    }
    return TrainConfig(**{**base, **fields})


# ---------------------------------------------------------------------------------------------- contract


def test_every_registered_reranker_is_covered():
    assert set(MODELS) == set(rerankers.names())


@pytest.fixture(params=sorted(MODELS))
def kind(request) -> str:
    return request.param


def test_contract_scores(kind, tiny_t5, faq_slice):
    reranker = rerankers.get(kind)(model_for(kind, tiny_t5), max_length=64, batch_size=4, device="cpu")
    pairs = faq_pairs(faq_slice)
    scores = reranker.score(pairs)
    assert len(scores) == len(pairs)
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert len(set(scores)) > 1
    assert reranker.score(pairs) == scores  # deterministic
    assert reranker.score([]) == []
    # batching and length sorting must not change any pair's score
    alone = [reranker.score([pair])[0] for pair in pairs]
    assert alone == pytest.approx(scores, abs=1e-4)
    assert reranker.score(pairs[::-1]) == pytest.approx(scores[::-1], abs=1e-4)


def test_contract_train_save_reload_rerank(kind, tiny_t5, faq_slice, tmp_path):
    cls = rerankers.get(kind)
    model_dir = cls.train(toy_examples(8), train_config(kind, tiny_t5), tmp_path / "a", device="cpu")
    metadata = io.read_json(model_dir / METADATA)
    assert metadata["reranker"] == kind
    assert metadata["training"]["plan"]["steps"] == 2
    reranker = cls(str(model_dir), max_length=64, batch_size=4, device="cpu")
    again = cls.train(toy_examples(8), train_config(kind, tiny_t5), tmp_path / "b", device="cpu")
    pairs = faq_pairs(faq_slice)
    assert cls(str(again), max_length=64, batch_size=4, device="cpu").score(pairs) == reranker.score(
        pairs
    )  # same seed, same model

    ids = sorted(faq_slice.docs)[:6]
    first = {qid: {doc_id: 10.0 - rank for rank, doc_id in enumerate(ids)} for qid in ids[:2]}
    first["not-a-test-query"] = {ids[0]: 1.0}
    run = rerank_run(reranker, first, faq_slice.queries, faq_slice.docs, top_k=3)
    assert set(run) == set(ids[:2])
    for qid in ids[:2]:
        ranked = [d for d, _ in sorted(run[qid].items(), key=lambda item: -item[1])]
        assert set(ranked[:3]) == set(ids[:3])  # the reranked top 3 stay on top
        assert ranked[3:] == ids[3:]  # deeper documents keep their first-stage order
        expected = reranker.score([(faq_slice.queries[qid].text, faq_slice.docs[d].full_text) for d in ids[:3]])
        assert [run[qid][d] for d in ids[:3]] == pytest.approx(expected, abs=1e-4)
    io.write_trec_run(tmp_path / "run.trec", run, tag=kind)
    back = io.read_trec_run(tmp_path / "run.trec")
    assert {q: sorted(d, key=lambda x: -d[x]) for q, d in back.items()} == {
        q: sorted(d, key=lambda x: -d[x]) for q, d in run.items()
    }


# A tiny random T5 needs a high learning rate; a pretrained encoder a small one.
LEARNING = {
    "monot5": {"learning_rate": 1e-2, "max_steps": 30},
    "flan-t5": {"learning_rate": 1e-2, "max_steps": 30},
    "cross-encoder": {"learning_rate": 1e-4, "max_steps": 12},
    "bi-encoder": {"learning_rate": 1e-4, "max_steps": 12},
}
# How much the trained margin must exceed the untrained one: logits are unbounded, a cosine lies in [-1, 1].
GAIN = {"monot5": 1.0, "flan-t5": 1.0, "cross-encoder": 1.0, "bi-encoder": 0.1}


def test_contract_training_learns_which_label_is_relevant(kind, tiny_t5, tmp_path):
    assert set(LEARNING) == set(rerankers.names())
    cls = rerankers.get(kind)
    examples = toy_examples(24)
    pairs = [(e.query, e.doc) for e in examples]
    untrained = cls(model_for(kind, tiny_t5), max_length=64, device="cpu").score(pairs)
    config = train_config(kind, tiny_t5, batch_size=16, max_length=64, **LEARNING[kind])
    model_dir = cls.train(examples, config, tmp_path, device="cpu")
    scores = cls(str(model_dir), max_length=64, device="cpu").score(pairs)
    positives = [s for s, e in zip(scores, examples) if e.label == 1]
    negatives = [s for s, e in zip(scores, examples) if e.label == 0]
    assert min(positives) > max(negatives)
    assert margin(scores, examples) > margin(untrained, examples) + GAIN[kind]
    if kind in ("monot5", "flan-t5"):
        assert min(positives) > math.log(0.9)  # P(true) > 0.9 for every relevant pair


def test_contract_refuses_a_model_trained_as_another_kind(kind, tiny_t5, tmp_path):
    other = "monot5" if kind == "cross-encoder" else "cross-encoder"
    folder = tmp_path / "model"
    shutil.copytree(tiny_t5, folder)
    io.write_json(folder / METADATA, {"reranker": other})
    with pytest.raises(
        InparsError, match=f"was trained as a '{other}' reranker, not '{kind}'; rerank it with --reranker {other}"
    ):
        rerankers.get(kind)(str(folder), device="cpu")


def test_monot5_takes_the_shared_dtype_names(tiny_t5):
    import torch

    assert MonoT5Reranker(str(tiny_t5), device="cpu", dtype="bfloat16").model.dtype == torch.bfloat16
    assert MonoT5Reranker(str(tiny_t5), device="cpu", dtype="fp32").model.dtype == torch.float32
    with pytest.raises(
        InparsError, match="^unknown dtype 'half'; use one of auto, bfloat16, bf16, float16, fp16, float32, fp32$"
    ):
        MonoT5Reranker(str(tiny_t5), device="cpu", dtype="half")


# ---------------------------------------------------------------------------------------------- monoT5 input


def test_long_document_is_cut_and_relevant_survives(tiny_t5, faq):
    reranker = MonoT5Reranker(str(tiny_t5), device="cpu")
    tokenizer = reranker.tokenizer
    query = "Do I need a building permit for a garden shed?"
    document = " ".join(doc.text for doc in list(faq.docs.values())[:40])
    assert len(tokenizer(document)["input_ids"]) > 2000
    tail = tokenizer(" Relevant:")["input_ids"]  # ends with </s>
    for max_length in (64, 512):
        ids = encode_prompts(tokenizer, reranker.template, [(query, document)], max_length)[0]
        assert len(ids) == max_length
        assert ids[-len(tail) :] == tail
        text = tokenizer.decode(ids, skip_special_tokens=True)
        assert text.startswith(f"Query: {query} Document: ") and text.endswith(" Relevant:")
        # what is left of the document is its beginning
        kept = text[len(f"Query: {query} Document: ") : -len(" Relevant:")]
        assert document.startswith(kept.rstrip())
    short = encode_prompts(tokenizer, reranker.template, [(query, "A short answer.")], 512)[0]
    assert short == tokenizer(f"Query: {query} Document: A short answer. Relevant:")["input_ids"]


def test_training_input_keeps_relevant_too(tiny_t5, faq):
    reranker = MonoT5Reranker(str(tiny_t5), device="cpu")
    document = " ".join(doc.text for doc in list(faq.docs.values())[:10])
    targets = (reranker.false_id, reranker.true_id)
    item = training_features(reranker.tokenizer, reranker.template, 96, targets, TrainingExample("q", "permit", "d", document, 1))
    assert len(item["input_ids"]) == 96
    assert reranker.tokenizer.decode(item["input_ids"], skip_special_tokens=True).endswith("Relevant:")
    assert item["labels"] == [reranker.true_id, reranker.tokenizer.eos_token_id]


def test_long_query_is_cut_after_the_document(tiny_t5):
    reranker = MonoT5Reranker(str(tiny_t5), device="cpu")
    ids = encode_prompts(reranker.tokenizer, reranker.template, [("permit " * 200, "roof " * 200)], 40)[0]
    text = reranker.tokenizer.decode(ids, skip_special_tokens=True)
    assert len(ids) == 40 and text.startswith("Query: permit") and text.endswith("Document: Relevant:")


def test_template_that_cannot_fit_is_refused(tiny_t5):
    reranker = MonoT5Reranker(str(tiny_t5), device="cpu")
    with pytest.raises(InparsError, match="max_length 2 cannot hold the template"):
        encode_prompts(reranker.tokenizer, reranker.template, [("q", "d")], 2)


@pytest.mark.parametrize("text", ["Query: {query} Relevant:", "{query} {query} {document}", "Query: {q} Document: {document}"])
def test_bad_template_is_refused(text):
    with pytest.raises(InparsError, match=r"must contain \{query\} and \{document\} exactly once each"):
        PromptTemplate(text)


def test_template_spans():
    text, spans = PromptTemplate("Q: {query} D: {document} R:").render("a b", "c")
    assert text == "Q: a b D: c R:"
    assert text[slice(*spans["query"])] == "a b" and text[slice(*spans["document"])] == "c"


# ---------------------------------------------------------------------------------------------- monoT5 scoring


def test_score_is_log_p_true_of_the_first_decoded_token(tiny_t5, faq_slice):
    import torch

    reranker = MonoT5Reranker(str(tiny_t5), device="cpu")
    pairs = [(q, d[:300]) for q, d in faq_pairs(faq_slice, 3)]  # short enough not to be cut
    prompts = [f"Query: {q} Document: {d} Relevant:" for q, d in pairs]
    encoded = reranker.tokenizer(prompts, padding=True, return_tensors="pt")
    assert encoded["input_ids"].shape[1] < 512
    with torch.inference_mode():
        out = reranker.model.generate(
            **encoded, max_new_tokens=1, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
    two = out.scores[0][:, [reranker.false_id, reranker.true_id]]
    expected = torch.log_softmax(two, dim=-1)[:, 1].tolist()
    assert reranker.score(pairs) == pytest.approx(expected, abs=1e-5)


def test_flan_t5_uses_yes_and_no(tiny_t5, faq_slice):
    flan = FlanT5Reranker(str(tiny_t5), device="cpu")
    vocab = flan.tokenizer.get_vocab()
    assert (flan.true_id, flan.false_id) == (vocab["▁yes"], vocab["▁no"])
    assert "{document}\nIs the passage relevant" in flan.template.text
    mono = MonoT5Reranker(str(tiny_t5), device="cpu", template=flan.template.text, true_token="▁yes", false_token="▁no")
    pairs = faq_pairs(faq_slice, 3)
    assert mono.score(pairs) == pytest.approx(flan.score(pairs))


def test_token_missing_from_vocabulary(tiny_t5):
    with pytest.raises(
        InparsError, match=r"the true token 'true' is not in the vocabulary of .*; the vocabulary has '▁true'; set true_token"
    ):
        MonoT5Reranker(str(tiny_t5), device="cpu", true_token="true")
    with pytest.raises(InparsError, match="the true and false tokens of .* are the same token"):
        MonoT5Reranker(str(tiny_t5), device="cpu", true_token="▁yes", false_token="▁yes")


# ---------------------------------------------------------------------------------------------- monoT5 training


def test_custom_template_and_tokens_travel_with_the_model(tiny_t5, tmp_path):
    template = "Question: {query}\nText: {document}\nAnswer:"
    config = train_config("monot5", tiny_t5, template=template, true_token="▁yes", false_token="▁no")
    model_dir = MonoT5Reranker.train(toy_examples(8), config, tmp_path, device="cpu")
    reranker = MonoT5Reranker(str(model_dir), device="cpu")
    vocab = reranker.tokenizer.get_vocab()
    assert reranker.template.text == template
    assert (reranker.true_id, reranker.false_id) == (vocab["▁yes"], vocab["▁no"])
    assert (
        MonoT5Reranker(str(model_dir), device="cpu", template="Q: {query} D: {document}").template.text
        == "Q: {query} D: {document}"
    )


def test_resume_from_a_checkpoint_gives_the_same_model(tiny_t5, faq_slice, tmp_path):
    config = train_config("monot5", tiny_t5, max_steps=4, save_steps=2, save_total_limit=3)
    examples = toy_examples(12)
    model_dir = MonoT5Reranker.train(examples, config, tmp_path, device="cpu")
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    pairs = faq_pairs(faq_slice)
    complete = MonoT5Reranker(str(model_dir), device="cpu").score(pairs)
    # as if killed while saving step 4: checkpoint-4 has its weights but not its state; the rerun continues from checkpoint-2
    shutil.rmtree(model_dir)
    (tmp_path / "checkpoints" / "checkpoint-4" / "trainer_state.json").unlink()
    model_dir = MonoT5Reranker.train(examples, config, tmp_path, device="cpu")
    assert io.read_json(model_dir / METADATA)["training"]["resumed_from"] == "checkpoint-2"
    assert MonoT5Reranker(str(model_dir), device="cpu").score(pairs) == pytest.approx(complete, abs=1e-6)
    # a state file cut short counts as no state
    shutil.rmtree(model_dir)
    (tmp_path / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text('{"global_st')
    model_dir = MonoT5Reranker.train(examples, config, tmp_path, device="cpu")
    assert io.read_json(model_dir / METADATA)["training"]["resumed_from"] == "checkpoint-2"
    # other data: the old checkpoints are not resumed but removed
    model_dir = MonoT5Reranker.train(toy_examples(12, seed=1), config, tmp_path, device="cpu")
    assert io.read_json(model_dir / METADATA)["training"]["resumed_from"] is None


def test_gradient_accumulation_equals_the_large_batch(tiny_t5, faq_slice, tmp_path):
    examples = toy_examples(16)
    large = MonoT5Reranker.train(examples, train_config("monot5", tiny_t5, batch_size=16), tmp_path / "large", device="cpu")
    accumulated = MonoT5Reranker.train(
        examples, train_config("monot5", tiny_t5, batch_size=4, effective_batch_size=16), tmp_path / "acc", device="cpu"
    )
    assert io.read_json(accumulated / METADATA)["training"]["plan"]["accumulation"] == 4
    losses = [io.read_json(folder / METADATA)["training"]["train_loss"] for folder in (large, accumulated)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    pairs = faq_pairs(faq_slice)
    assert MonoT5Reranker(str(accumulated), device="cpu").score(pairs) == pytest.approx(
        MonoT5Reranker(str(large), device="cpu").score(pairs), abs=1e-5
    )


@pytest.mark.slow
def test_two_processes_with_torchrun(tiny_t5, tmp_path):
    import subprocess
    import sys

    io.write_training(tmp_path / "train.jsonl", toy_examples(16))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "inpars.cli", "train",
        str(tmp_path / "train.jsonl"), "-o", str(tmp_path / "out"), "--reranker", "monot5", "--model", str(tiny_t5),
        "--max-steps", "2", "--batch-size", "4", "--set", "train.effective_batch_size=16", "--set", "train.max_length=48",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    # The processes' own messages come before torchrun's traceback: keep enough to see them.
    assert done.returncode == 0, done.stderr[-8000:]
    training = io.read_json(tmp_path / "out" / "model" / METADATA)["training"]
    assert (training["plan"]["processes"], training["plan"]["accumulation"]) == (2, 2)
    assert training["train_loss"] < 8.0  # a mean cross-entropy, not multiplied by processes or accumulation


def test_resume_from_a_folder_that_is_no_checkpoint(tiny_t5, tmp_path):
    config = train_config("monot5", tiny_t5, resume=str(tmp_path / "missing"))
    with pytest.raises(InparsError, match="is not a training checkpoint .*; use auto, never or a checkpoint-N folder"):
        MonoT5Reranker.train(toy_examples(8), config, tmp_path / "out", device="cpu")


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"lr_scheduler": "cosinus"}, "unknown lr_scheduler 'cosinus'"), ({"optimizer": "adam"}, "unknown optimizer 'adam'")],
)
def test_unknown_scheduler_or_optimizer(tiny_t5, tmp_path, fields, message):
    with pytest.raises(InparsError, match=message):
        MonoT5Reranker.train(toy_examples(8), train_config("monot5", tiny_t5, **fields), tmp_path, device="cpu")


def test_training_refuses_a_missing_token(tiny_t5, tmp_path):
    with pytest.raises(InparsError, match="the false token '▁nope' is not in the vocabulary"):
        MonoT5Reranker.train(toy_examples(8), train_config("monot5", tiny_t5, false_token="▁nope"), tmp_path, device="cpu")


# ---------------------------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_bf16_on_gpu(tiny_t5, faq_slice, tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    pairs = faq_pairs(faq_slice)
    gpu = MonoT5Reranker(str(tiny_t5), device="cuda")
    assert gpu.model.dtype == (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)
    cpu = MonoT5Reranker(str(tiny_t5), device="cpu")
    assert gpu.score(pairs) == pytest.approx(cpu.score(pairs), abs=0.05)
    model_dir = MonoT5Reranker.train(toy_examples(8), train_config("monot5", tiny_t5), tmp_path, device="cuda")
    assert io.read_json(model_dir / METADATA)["training"]["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert all(math.isfinite(s) for s in MonoT5Reranker(str(model_dir), device="cuda").score(pairs))
