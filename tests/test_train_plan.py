"""Training settings: presets, the step plan and the refusals of settings that would train on nothing."""

from __future__ import annotations

import pytest

from inpars.config import TRAIN_PRESETS, InvalidValue, TrainConfig, load_pipeline_config
from inpars.data import TrainingExample
from inpars.errors import InparsError, InputError
from inpars.rerank.training import mixed_precision, plan_training


def examples(n: int, labels: tuple[int, ...] = (1, 0)) -> list[TrainingExample]:
    return [TrainingExample(str(i), f"query {i}", f"d{i}", f"document {i}", labels[i % len(labels)]) for i in range(n)]


def test_paper_preset_is_the_papers_recipe():
    config = TrainConfig.from_preset("inpars-paper")
    assert (config.reranker, config.max_steps, config.effective_batch_size, config.max_length) == ("monot5", 156, 128, 512)
    assert config.learning_rate == 3e-4 and config.lr_scheduler == "constant"
    tpu = TrainConfig.from_preset("inpars-paper-tpu")
    assert tpu.learning_rate == 1e-3 and tpu.optimizer == "adafactor" and tpu.lr_scheduler == "constant"
    # ~20k synthetic pairs (10k queries, one negative each) make one epoch of 156 steps at 128.
    plan = plan_training(examples(20_000), config, processes=1)
    assert (plan.steps, plan.effective_batch_size, plan.accumulation) == (156, 128, 32)
    assert plan.epochs == pytest.approx(0.998, abs=1e-3)


def test_effective_batch_is_kept_across_gpus():
    config = TrainConfig.from_preset("inpars-paper", batch_size=8)
    plan = plan_training(examples(20_000), config, processes=4)
    assert (plan.accumulation, plan.effective_batch_size) == (4, 128)


def test_preset_from_yaml_with_explicit_fields_winning():
    text = "train:\n  preset: inpars-paper\n  model: castorini/monot5-base-msmarco-10k\n  batch_size: 16\n"
    config = load_pipeline_config(text=text, overrides=["train.learning_rate=0.001"]).train
    assert config.model == "castorini/monot5-base-msmarco-10k"
    assert config.batch_size == 16 and config.learning_rate == 1e-3
    assert config.max_steps == 156 and config.reranker == "monot5"
    assert set(TRAIN_PRESETS["inpars-paper"]) <= set(TrainConfig.__dataclass_fields__)
    # a default-valued field given explicitly (batch_size 16) still wins over the preset
    assert load_pipeline_config(text=text).train.batch_size == 16


def test_unknown_preset_names_the_line_and_the_closest():
    text = "name: x\ntrain:\n  preset: inpars-papr\n"
    with pytest.raises(InputError, match=r"<recipe>:3: 'train.preset' is unknown: 'inpars-papr'; did you mean 'inpars-paper'\?"):
        load_pipeline_config(text=text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_steps": 0}, "'max_steps' is 0; it must be at least 1, or left unset"),
        ({"epochs": 0.0}, "'epochs' is 0.0: that trains on nothing"),
        ({"batch_size": 0}, "'batch_size' is 0; it must be at least 1"),
        ({"precision": "bf32"}, "'precision' is 'bf32'; use one of auto, bfloat16, bf16, float16, fp16, float32, fp32"),
        ({"learning_rate": 0.0}, "'learning_rate' is 0.0; it must be positive"),
        ({"resume": "False"}, "use auto, never or the path of a checkpoint folder"),
    ],
)
def test_bad_values_are_refused(fields, message):
    with pytest.raises(InvalidValue, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**fields)


def test_unknown_preset_in_python():
    with pytest.raises(InvalidValue, match="'preset' is unknown: 'nope'; available: inpars-paper, inpars-paper-tpu"):
        TrainConfig.from_preset("nope")


def test_bad_value_in_yaml_names_the_line():
    with pytest.raises(InputError, match=r"<recipe>:3: 'train.max_steps' is 0"):
        load_pipeline_config(text="train:\n  reranker: monot5\n  max_steps: 0\n")


def test_no_examples_is_refused():
    with pytest.raises(InparsError, match="no training examples"):
        plan_training([], TrainConfig())


def test_one_label_is_refused():
    with pytest.raises(InparsError, match=r"found only label\(s\) \[1\]"):
        plan_training(examples(10, labels=(1,)), TrainConfig())


def test_fewer_examples_than_one_effective_batch_is_refused():
    config = TrainConfig(batch_size=8, effective_batch_size=128)
    with pytest.raises(
        InparsError, match=r"100 examples x 1 epoch\(s\) are fewer than one effective batch of 128 .* set max_steps"
    ):
        plan_training(examples(100), config, processes=1)
    # with max_steps the examples are repeated, which is allowed
    assert plan_training(examples(100), TrainConfig(batch_size=8, effective_batch_size=128, max_steps=3), processes=1).steps == 3


def test_effective_batch_must_divide():
    with pytest.raises(InparsError, match="effective_batch_size 100 is not a multiple of batch_size 8 x 1 process"):
        plan_training(examples(1000), TrainConfig(batch_size=8, effective_batch_size=100), processes=1)
    with pytest.raises(InparsError, match="gradient_accumulation_steps 2 contradicts effective_batch_size 64"):
        plan_training(
            examples(1000), TrainConfig(batch_size=8, gradient_accumulation_steps=2, effective_batch_size=64), processes=1
        )


def test_epochs_give_steps():
    plan = plan_training(examples(100), TrainConfig(batch_size=8, gradient_accumulation_steps=2, epochs=2.0), processes=1)
    assert (plan.steps, plan.effective_batch_size) == (13, 16)


def test_precision_on_cpu():
    assert mixed_precision("auto", "cpu", seq2seq=True) == (False, False)
    assert mixed_precision("fp32", "cpu", seq2seq=False) == (False, False)
    with pytest.raises(InparsError, match="precision bf16 needs a CUDA GPU and the device is cpu"):
        mixed_precision("bf16", "cpu", seq2seq=True)
    assert mixed_precision("float32", "cpu", seq2seq=False) == (False, False)
    with pytest.raises(InparsError, match="precision bfloat16 needs a CUDA GPU and the device is cpu"):
        mixed_precision("bfloat16", "cpu", seq2seq=True)


@pytest.mark.parametrize(
    ("bf16", "seq2seq", "wanted"), [(True, True, (True, False)), (False, False, (False, True)), (False, True, (False, False))]
)
def test_precision_auto_on_a_gpu(monkeypatch, bf16, seq2seq, wanted):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert mixed_precision("auto", "cuda", seq2seq=seq2seq) == wanted
    assert TrainConfig(precision="float16").precision == "float16"


def test_template_override_with_colons_stays_text():
    overrides = ["train.template=Query: {query} Document: {document} Relevant:", "train.true_token=▁yes", "train.max_steps=3"]
    config = load_pipeline_config(overrides=overrides).train
    assert config.template == "Query: {query} Document: {document} Relevant:"
    assert (config.true_token, config.max_steps) == ("▁yes", 3)
    assert load_pipeline_config(overrides=["train.template=Q: {query}"]).train.template == "Q: {query}"


def test_snapshot_steps_are_evenly_spaced_inside_the_training():
    from inpars.rerank.training import snapshot_steps

    assert snapshot_steps(13, 0) == []
    assert snapshot_steps(12, 2) == [4, 8]
    assert snapshot_steps(39, 2) == [13, 26]
    assert snapshot_steps(2, 3) == [1]  # never step 0 nor the last step (that is the final model)
    with pytest.raises(InvalidValue, match="snapshots"):
        TrainConfig(snapshots=-1)


def test_snapshots_leave_earlier_fingerprints_alone():
    """A field added later is out of the fingerprint at its default, so runs recorded before it keep theirs."""
    from inpars.config import fingerprint, identity

    assert "snapshots" not in identity(TrainConfig())
    assert identity(TrainConfig(snapshots=2))["snapshots"] == 2
    assert fingerprint(identity(TrainConfig())) != fingerprint(identity(TrainConfig(snapshots=2)))
