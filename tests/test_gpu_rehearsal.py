"""GPU rates of our own: bench/gpu_rehearsal.py's CPU twin runs end to end and writes a file the plan takes, and
``inpars reproduce --plan --rates FILE`` estimates with measured rates, names them, and refuses a bad file in one line."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inpars.cli import app

BENCH = Path(__file__).parent.parent / "bench"
runner = CliRunner()

GPT_J, MONOT5 = "EleutherAI/gpt-j-6b", "castorini/monot5-3b-msmarco-10k"
SCIFACT_DOCS, SCIFACT_PAIRS = 5183, 300 * 1000


def rehearsal():
    """The bench script as a module (registered first: its dataclasses look their module up)."""
    if "gpu_rehearsal" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_rehearsal", BENCH / "gpu_rehearsal.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_rehearsal"] = module
        spec.loader.exec_module(module)
    return sys.modules["gpu_rehearsal"]


def rates_file(path: Path, rates: list[dict], twin: bool = False, **fields) -> Path:
    data = {
        "format": "inpars-gpu-rates/1", "twin": twin, "created": "2026-01-01T00:00:00+00:00",
        "device": {"kind": "cuda", "name": "NVIDIA H100 80GB HBM3"}, "rates": rates, "missing_rates": [], **fields,
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


MEASURED = [
    {"stage": "generate", "model": GPT_J, "backend": "vllm", "seconds": 0.02, "per": "document", "upper_bound": True},
    {"stage": "filter", "model": MONOT5, "seconds": 0.004, "per": "query", "upper_bound": True},
    {"stage": "rerank", "model": MONOT5, "seconds": 0.004, "per": "pair", "upper_bound": True},
]


def plan_json(tmp_path: Path, *extra: str) -> dict:
    result = runner.invoke(
        app, ["reproduce", "scifact", "--plan", "--json", "-C", "inpars-v2", "--output-dir", str(tmp_path / "runs"), *extra]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    return {**{s["key"]: s for s in plan["steps"]}, "notes": plan["notes"]}


def test_measured_rates_replace_the_quoted_ones_and_the_plan_names_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = rates_file(tmp_path / "gpu.json", MEASURED)
    steps = plan_json(tmp_path, "--rates", str(path))
    source = f"measured on NVIDIA H100 80GB HBM3, {path}"
    generate = steps["scifact/inpars-v2/generate"]["estimate"]
    assert generate["seconds_per_unit"] == 0.02 and generate["source"] == source and generate["upper_bound"] is True
    assert generate["gpu_hours"] == pytest.approx(SCIFACT_DOCS * 0.02 / 3600, abs=1e-3)
    rerank = steps["scifact/inpars-v2/rerank"]["estimate"]
    assert rerank["gpu_hours"] == pytest.approx(SCIFACT_PAIRS * 0.004 / 3600, abs=1e-3) and rerank["source"] == source
    assert steps["scifact/inpars-v2/filter"]["estimate"]["source"] == source
    # The file has no training rate: that estimate keeps the tables' quoted one.
    train = steps["scifact/inpars-v2/train"]["estimate"]
    assert train["source"] == "papers-cost" and train["seconds_per_unit"] == 11.5
    text = runner.invoke(
        app, ["reproduce", "scifact", "--plan", "-C", "inpars-v2", "--output-dir", str(tmp_path / "runs"), "--rates", str(path)]
    ).output
    assert f"5,183 documents x 0.02 s, {GPT_J}, [{source}])" in text
    assert f"156 steps x 11.5 s, {MONOT5}, [papers-cost])" in text
    assert f"[{source}] bench/gpu_rehearsal.py on NVIDIA H100 80GB HBM3" in text


def test_a_generation_rate_serves_only_its_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = rates_file(tmp_path / "gpu.json", MEASURED)
    steps = plan_json(tmp_path, "--rates", str(path), "--set", "generate.backend=hf")
    assert steps["scifact/inpars-v2/generate"]["estimate"]["source"] == "papers-cost"


def test_cpu_twin_rates_are_taken_but_labelled_as_no_gpu_hours(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = [{"stage": "train", "model": MONOT5, "reason": "train failed: OutOfMemoryError"}]
    path = rates_file(tmp_path / "twin.json", MEASURED, twin=True, missing_rates=missing)
    steps = plan_json(tmp_path, "--rates", str(path))
    assert steps["scifact/inpars-v2/rerank"]["estimate"]["source"] == f"CPU-twin rates, not GPU hours: {path}"
    notes = " ".join(steps["notes"])
    assert "holds the CPU twin's rates" in notes and "measure on a GPU with 'make gpu-rehearsal'" in notes
    assert f"{path} has no rate of train ({MONOT5}): train failed: OutOfMemoryError" in notes


GOOD = {"stage": "rerank", "model": MONOT5, "seconds": 0.004, "per": "pair"}
BAD_FILES = {
    "missing": (None, "rates file not found"),
    "not-json": ("{rates: [", ":1: not JSON (Expecting property name enclosed in double quotes)"),
    "wrong-format": (json.dumps({"format": "other", "rates": []}), "not a rates file of the GPU rehearsal (format 'other'"),
    "a-list": (json.dumps([GOOD]), "not a rates file of the GPU rehearsal (format 'list'"),
    "rates-not-a-list": ({"rates": GOOD}, "'rates' should be a list"),
    "nan": ({"rates": [{**GOOD, "seconds": "NaN"}]}, "'rates[0].seconds' should be a positive finite number of seconds per pair"),
    "infinite": ({"rates": [{**GOOD, "seconds": "Infinity"}]}, "'rates[0].seconds' should be a positive finite number"),
    "zero": ({"rates": [{**GOOD, "seconds": 0}]}, "'rates[0].seconds' should be a positive finite number"),
    "negative": ({"rates": [{**GOOD, "seconds": -1.5}]}, "got -1.5"),
    "text": ({"rates": [{**GOOD, "seconds": "fast"}]}, "got 'fast'"),
    "wrong-unit": ({"rates": [{**GOOD, "per": "query"}]}, "'rates[0].per' is 'query', but rerank is counted per pair"),
    "unknown-stage": ({"rates": [{**GOOD, "stage": "index"}]}, "'rates[0].stage' is 'index'"),
    "no-rates": (
        {"rates": [], "missing_rates": [{"stage": "rerank", "model": MONOT5, "reason": "rerank failed: CUDA error"}]},
        "holds no rates (no measurement succeeded: rerank (castorini/monot5-3b-msmarco-10k): rerank failed: CUDA error)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_rates_file_is_one_line_naming_it(case, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    content, wanted = BAD_FILES[case]
    path = tmp_path / f"{case}.json"
    if isinstance(content, dict):
        body = {"format": "inpars-gpu-rates/1", "twin": False, "device": {"name": "NVIDIA H100 80GB HBM3"}, **content}
        # NaN and Infinity as Python's json writes them (and reads them back): the check must catch them.
        content = json.dumps(body).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(
        app, ["reproduce", "scifact", "--plan", "-C", "inpars-v2", "--output-dir", str(tmp_path / "runs"), "--rates", str(path)]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith(f"error: {path}") and wanted in lines[0], lines[0]
    assert "write it with 'make gpu-rehearsal' (bench/gpu_rehearsal.py) on a GPU machine" in lines[0]


def test_rates_go_with_the_plan(tmp_path):
    path = rates_file(tmp_path / "gpu.json", MEASURED)
    result = runner.invoke(app, ["reproduce", "scifact", "-C", "inpars-v2", "--rates", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --rates changes the GPU-hour estimates of the plan: give it with --plan"


def test_without_a_gpu_the_full_rehearsal_points_to_the_twin(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the full rehearsal would run")
    assert rehearsal().main(["--out", str(tmp_path / "gpu.json")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "gpu_rehearsal: no CUDA GPU is visible here; run it on a GPU machine, or rehearse the script on the CPU with --cpu-twin"
    ]
    assert not (tmp_path / "gpu.json").exists()


def test_a_failed_measurement_is_recorded_and_the_rest_of_the_file_still_holds_rates():
    g = rehearsal()

    def out_of_memory(deadline: float) -> dict:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\n(a long second line)")

    failed = g.measure("rerank", out_of_memory, 30.0, "cpu")
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    train = {"status": "ok", "seconds_per_step": 3.25, "workload": {
        "optimizer": "adafactor", "effective_batch": 128, "micro_batch": 4, "accumulation": 32, "input_tokens": 512,
    }}
    settings = g.Settings(GPT_J, MONOT5, MONOT5, 64, 256, 256, 64, 512)
    prompts = g.Prompts(None, [], [], {"prompt_tokens": {"mean": 355.7}})
    skipped = {"status": "skipped", "reason": "vllm is not installed"}
    rates, missing = g.plan_rates(
        {"generate-vllm": skipped, "rerank": failed, "train": train}, settings, prompts
    )
    assert rates == [{
        "stage": "train", "model": MONOT5, "seconds": 3.25, "per": "step", "upper_bound": True, "measurement": "train",
        "note": "adafactor, effective batch 128 (4 x 32) of 512-token pairs",
    }]
    assert [(m["stage"], m.get("backend"), m["reason"]) for m in missing] == [
        ("generate", "vllm", "generate-vllm skipped: vllm is not installed"),
        ("generate", "hf", "generate-hf absent: not measured"),
        ("rerank", None, "rerank failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"),
        ("filter", None, "rerank failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"),
    ]


@pytest.mark.slow
def test_the_cpu_twin_runs_end_to_end_and_the_plan_takes_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "twin.json"
    assert rehearsal().main(["--cpu-twin", "--out", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["twin"] is True and data["device"]["kind"] == "cpu" and data["versions"]["torch"]
    measured = data["measurements"]
    for name in ("rerank", "train", "train-checkpointing", "train-adamw", "generate-hf"):
        assert measured[name]["status"] == "ok", (name, measured[name])
        assert measured[name]["rate"] > 0 and measured[name]["unit"]
    assert measured["generate-hf"]["workload"]["all_ran_to_max_new_tokens"] is True
    assert measured["train"]["workload"]["effective_batch"] == 4
    assert measured["train-checkpointing"]["workload"]["gradient_checkpointing"] is True
    vllm = measured["generate-vllm"]
    if importlib.util.find_spec("vllm") is None:
        assert vllm["status"] == "skipped" and "pip install \"inpars[vllm]\"" in vllm["reason"]
    else:
        assert vllm["status"] == "ok" and vllm["workload"]["all_ran_to_max_new_tokens"], vllm
    assert "embedded:smollm2-135m" in data["prompts"]["tokenizer"] and "zaragoza_construction_faq" in data["prompts"]["documents"]
    rates = {(r["stage"], r.get("backend")): r for r in data["rates"]}
    assert {("rerank", None), ("filter", None), ("train", None), ("generate", "hf")} <= set(rates)
    assert rates[("rerank", None)]["seconds"] == pytest.approx(1 / measured["rerank"]["rate"], rel=1e-4)
    steps = plan_json(tmp_path, "--rates", str(out))
    rerank = steps["scifact/inpars-v2/rerank"]["estimate"]
    assert rerank["seconds_per_unit"] == rates[("rerank", None)]["seconds"] and rerank["source"].startswith("CPU-twin rates")
    assert steps["scifact/inpars-v2/train"]["estimate"]["seconds_per_unit"] == rates[("train", None)]["seconds"]


@pytest.mark.vllm
def test_the_cpu_twin_measures_vllm_and_the_plan_takes_its_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "twin.json"
    code = rehearsal().main(["--cpu-twin", "--only", "generate-vllm", "--out", str(out)])
    data = json.loads(out.read_text(encoding="utf-8"))
    vllm = data["measurements"]["generate-vllm"]
    assert code == 0 and vllm["status"] == "ok", vllm
    assert vllm["workload"]["all_ran_to_max_new_tokens"] is True and vllm["workload"]["logprobs"] is True
    assert data["versions"]["vllm"]
    rate = next(r for r in data["rates"] if r["stage"] == "generate")
    assert rate["backend"] == "vllm" and rate["seconds"] == pytest.approx(1 / vllm["rate"], rel=1e-4)
    generate = plan_json(tmp_path, "--rates", str(out))["scifact/inpars-v2/generate"]["estimate"]
    assert generate["seconds_per_unit"] == rate["seconds"] and generate["source"].startswith("CPU-twin rates")
