"""The one device and dtype picker every model loader uses, and the one dtype vocabulary every config field takes."""

from __future__ import annotations

import pytest

from inpars.config import GenerateConfig, InvalidValue, TrainConfig, load_pipeline_config
from inpars.errors import InparsError, InputError
from inpars.models import DTYPES, device_of, dtype_name, pick_dtype


def test_auto_device_is_cuda_only_where_a_gpu_is_visible(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_of("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_of("auto") == "cuda"
    assert device_of("cuda:1") == "cuda:1" and device_of("cpu") == "cpu"


@pytest.mark.parametrize(("short", "long"), [("bf16", "bfloat16"), ("fp16", "float16"), ("fp32", "float32")])
def test_each_dtype_has_its_short_and_its_torch_name(short, long):
    assert dtype_name(short) == dtype_name(long) == long
    assert pick_dtype(short, "cpu") == long  # a dtype that is named is kept, on any device


@pytest.mark.parametrize(
    ("bf16", "half", "wanted"),
    [(True, True, "bfloat16"), (True, False, "bfloat16"), (False, True, "float16"), (False, False, "float32")],
)
def test_auto_dtype_on_a_gpu(monkeypatch, bf16, half, wanted):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert pick_dtype("auto", "cuda:0", half=half) == wanted
    assert pick_dtype("auto", "cpu", half=half) == "float32"


def test_an_unknown_dtype_is_one_line():
    with pytest.raises(
        InparsError, match=r"^unknown dtype 'half'; use one of auto, bfloat16, bf16, float16, fp16, float32, fp32$"
    ):
        pick_dtype("half", "cpu")


@pytest.mark.parametrize("name", sorted(DTYPES))
def test_every_dtype_field_takes_every_name(name):
    assert GenerateConfig(dtype=name).dtype == name
    assert TrainConfig(precision=name).precision == name


def test_a_dtype_outside_the_vocabulary_is_refused_with_its_line():
    with pytest.raises(InvalidValue, match=r"^'dtype' is 'bf32'; use one of auto, bfloat16, bf16"):
        GenerateConfig(dtype="bf32")
    with pytest.raises(
        InputError,
        match=r"^<recipe>:3: 'generate.dtype' is 'float64'; use one of auto, bfloat16, bf16, float16, fp16, float32, fp32$",
    ):
        load_pipeline_config(text="name: x\ngenerate:\n  dtype: float64\n")
    assert load_pipeline_config(text="name: x\n", overrides=["generate.dtype=bf16"]).generate.dtype == "bf16"
