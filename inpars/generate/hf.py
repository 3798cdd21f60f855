"""Query generation with a transformers causal LM.

The few-shot prefix that every prompt shares is run through the model once. Its keys and values are kept
once, with a batch size of one: an attention function registered with transformers attends every row of a
batch to that single copy (one matrix product for the whole batch) and to the row's own tokens, which grow
in a preallocated buffer. Nothing of the prefix is copied or recomputed per document or per step. The
documents of a batch are run in chunks of similar length, each padded on the left only to its own longest
row (positions follow the padding); finished sequences leave the batch. Decoding stops at the first token
whose text holds a newline, whatever the tokenizer. A model whose attention cannot be swapped (or that uses
soft-capping or sliding windows) copies the prefix cache into each batch instead; ``reuse_prefix=False``
runs every prompt whole (the naive way, kept as the baseline).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from inpars.generate.base import Generation, GenerationRequest, TokenizerOps, kept_tokens, stop_token_ids
from inpars.models import device_of, pick_dtype, resolve

logger = logging.getLogger(__name__)

SHARED_PREFIX_ATTENTION = "inpars_shared_prefix"
UNSUPPORTED_ATTENTION_OPTIONS = ("softcap", "sliding_window", "s_aux")
"""Attention variants the shared-prefix attention does not compute; models that use them copy the prefix instead."""
PREFILL_TOKENS = 2048
"""Tokens (rows times padded width) per prefill pass: rows of similar length run together, so little is padding."""


# ---------------------------------------------------------------------------------------------- attention


def shared_prefix_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, shared_prefix=None, **kwargs):
    """Attention over a prefix held once for the whole batch, then over each row's own keys.

    ``query`` is (batch, heads, new, dim); ``key``/``value`` hold the rows' own tokens (batch, kv_heads, own,
    dim); ``attention_mask`` is additive, (batch, 1, new, own). The prefix is visible to every query, so its
    scores need no mask. Without ``shared_prefix`` (computing the prefix itself) this is plain SDPA.
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if shared_prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    unsupported = [name for name in UNSUPPORTED_ATTENTION_OPTIONS if kwargs.get(name) is not None]
    if unsupported:
        raise NotImplementedError(f"shared-prefix attention does not implement {', '.join(unsupported)}")
    prefix_keys, prefix_values = shared_prefix.prefix[module.layer_idx]  # (kv_heads, prefix, dim)
    batch, heads, new, dim = query.shape
    kv_heads, own = key.shape[1], key.shape[2]
    group = heads // kv_heads
    prefix_len = prefix_keys.shape[1]
    scaling = dim**-0.5 if scaling is None else scaling
    # Query heads that share a key/value head are adjacent; fold them (and the batch) into one matrix product.
    grouped = query.reshape(batch, kv_heads, group * new, dim)
    rows = grouped.transpose(0, 1).reshape(kv_heads, batch * group * new, dim)
    prefix_scores = torch.matmul(rows, prefix_keys.transpose(1, 2)).view(kv_heads, batch, group * new, prefix_len).transpose(0, 1)
    own_scores = torch.matmul(grouped, key.transpose(2, 3)).view(batch, kv_heads, group, new, own)
    own_scores = (own_scores + attention_mask[:, :, None]).view(batch, kv_heads, group * new, own)
    scores = torch.cat([prefix_scores, own_scores], dim=-1) * scaling
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(probs[..., prefix_len:], value)
    prefix_probs = probs[..., :prefix_len].transpose(0, 1).reshape(kv_heads, batch * group * new, prefix_len)
    out = out + torch.matmul(prefix_probs, prefix_values).view(kv_heads, batch, group * new, dim).transpose(0, 1)
    return out.view(batch, heads, new, dim).transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers import AttentionInterface

    if SHARED_PREFIX_ATTENTION not in AttentionInterface._global_mapping:
        AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)


class SharedPrefixCache:
    """The prefix's keys/values once (batch of one), and each row's own keys/values in a preallocated buffer.

    Duck-types the part of ``transformers.Cache`` that decoder layers call (``update``). Before each forward
    pass the caller sets the window: which rows run, where their new tokens go, from where they read.
    """

    def __init__(self, prefix: list[tuple], batch: int, capacity: int) -> None:
        import torch

        self.prefix = [(k[0], v[0]) for k, v in prefix]
        like = self.prefix[0][0]
        shape = (batch, like.shape[0], capacity, like.shape[2])
        self.keys = [torch.empty(shape, dtype=like.dtype, device=like.device) for _ in prefix]
        self.values = [torch.empty(shape, dtype=like.dtype, device=like.device) for _ in prefix]
        self.rows, self.write_at, self.read_from = slice(None), 0, 0

    def window(self, rows: slice, write_at: int, read_from: int) -> None:
        self.rows, self.write_at, self.read_from = rows, write_at, read_from

    def clear(self, rows: slice, end: int) -> None:
        """Zero positions no token was computed for (left padding), so masked attention reads finite numbers."""
        for buffer in (*self.keys, *self.values):
            buffer[rows, :, :end].zero_()

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        end = self.write_at + key_states.shape[2]
        self.keys[layer_idx][self.rows, :, self.write_at:end] = key_states
        self.values[layer_idx][self.rows, :, self.write_at:end] = value_states
        return self.keys[layer_idx][self.rows, :, self.read_from:end], self.values[layer_idx][self.rows, :, self.read_from:end]

    def batch_select_indices(self, index) -> None:
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]


# ---------------------------------------------------------------------------------------------- generator


class HFGenerator(TokenizerOps):
    """Greedy or sampled decoding with per-token log-probs, batched, with a shared prefix computed once."""

    name = "hf"

    def __init__(
        self, model: str, device: str = "auto", dtype: str = "auto", reuse_prefix: bool = True, context_length: int | None = None
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device_of(device)
        path = resolve(model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        loaded = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, pick_dtype(dtype, device))).to(device)
        self._attach(model, loaded, tokenizer, device, reuse_prefix, context_length)

    @classmethod
    def from_model(
        cls, name: str, model, tokenizer, reuse_prefix: bool = True, context_length: int | None = None
    ) -> HFGenerator:
        """A generator over a model already in memory, on its device (one built from a config, as the GPU rehearsal does)."""
        generator = cls.__new__(cls)
        generator._attach(name, model, tokenizer, str(model.device), reuse_prefix, context_length)
        return generator

    def _attach(self, name: str, model, tokenizer, device: str, reuse_prefix: bool, context_length: int | None) -> None:
        self.model_name = name
        self.device = device
        self.tokenizer = tokenizer
        self.model = model
        self.model.eval()
        self.reuse_prefix = reuse_prefix
        self.shared_attention = reuse_prefix and self._use_shared_attention()
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (self.tokenizer.eos_token_id or 0)
        )
        self.max_length = context_length or int(
            getattr(self.model.config, "max_position_embeddings", 0) or self.tokenizer.model_max_length
        )
        self._prefix_cache: dict[tuple[int, ...], list[tuple]] = {}
        self.prefill_tokens = PREFILL_TOKENS

    @classmethod
    def from_config(cls, config) -> HFGenerator:
        return cls(config.model, device=config.device, dtype=config.dtype, context_length=config.context_length)

    def _use_shared_attention(self) -> bool:
        """Swap in the shared-prefix attention where the model dispatches attention through transformers' interface."""
        config = self.model.config
        special = [
            name
            for name, used in (
                ("logit soft-capping", getattr(config, "attn_logit_softcapping", None)),
                (
                    "sliding-window attention",
                    getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True),
                ),
                ("sliding-window layers", "sliding_attention" in (getattr(config, "layer_types", None) or ())),
            )
            if used
        ]
        if special:
            logger.info("%s uses %s; the prefix cache is copied into each batch instead", self.model_name, ", ".join(special))
            return False
        _register_attention()
        try:
            self.model.set_attn_implementation(SHARED_PREFIX_ATTENTION)
        except (ValueError, NotImplementedError, AttributeError) as exc:
            logger.info(
                "%s cannot take a custom attention (%s); the prefix cache is copied into each batch instead", self.model_name, exc
            )
            return False
        if self.model.config._attn_implementation != SHARED_PREFIX_ATTENTION:
            logger.info("%s kept its own attention; the prefix cache is copied into each batch instead", self.model_name)
            return False
        return True

    # -------------------------------------------------------------------------------------- decoding

    def _prefix_state(self, prefix_ids: list[int]) -> list[tuple]:  # called under inference_mode by generate()
        """Key/value tensors of the shared prefix (batch of one), computed once per distinct prefix."""
        import torch

        key = tuple(prefix_ids)
        if key not in self._prefix_cache:
            ids = torch.tensor([prefix_ids], device=self.device)
            out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
            self._prefix_cache = {key: [(layer.keys, layer.values) for layer in out.past_key_values.layers]}
        return self._prefix_cache[key]

    def generate(
        self, requests: Sequence[GenerationRequest], max_new_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0
    ) -> list[Generation]:
        """Generate for requests that share one prefix; returns one Generation per request, in order."""
        import torch

        if not requests:
            return []
        if len({r.prefix for r in requests}) != 1:
            raise ValueError("a batch must share one prefix")
        with torch.inference_mode():
            return self._generate(requests, max_new_tokens, temperature, top_p)

    def _generate(
        self, requests: Sequence[GenerationRequest], max_new_tokens: int, temperature: float, top_p: float
    ) -> list[Generation]:
        import torch

        prefix_ids = self.prefix_ids(requests[0].prefix)
        suffixes = [self.suffix_ids(r.suffix) for r in requests]
        # Rows sorted by length pad little; the answers go back in the order asked.
        order = sorted(range(len(requests)), key=lambda i: len(suffixes[i]))
        requests, suffixes = [requests[i] for i in order], [suffixes[i] for i in order]
        batch = len(requests)
        if self.shared_attention:
            step = _SharedPrefixStep(
                self.model, self._prefix_state(prefix_ids), suffixes, max_new_tokens, self.pad_id, self.device,
                self.prefill_tokens,
            )
        elif self.reuse_prefix:
            step = _FullStep(self.model, suffixes, self.pad_id, self.device, prefix=self._prefix_state(prefix_ids))
        else:
            step = _FullStep(self.model, [prefix_ids + s for s in suffixes], self.pad_id, self.device)

        generators = [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests] if temperature > 0 else []
        active = list(range(batch))
        tokens: list[list[int]] = [[] for _ in range(batch)]
        log_probs: list[list[float]] = [[] for _ in range(batch)]
        stopped = [False] * batch
        stop = torch.tensor(sorted(self.stop_ids), device=self.device)
        for _ in range(max_new_tokens):
            logits = step.logits().float()
            logp = torch.log_softmax(logits, dim=-1)
            if temperature > 0:
                chosen = _sample(logits, temperature, top_p, [generators[i] for i in active]).to(self.device)
            else:
                chosen = logits.argmax(dim=-1)
            chosen_logp = logp.gather(1, chosen[:, None])[:, 0]
            keep = []
            for row, (seq, token, lp, halt) in enumerate(
                zip(active, chosen.tolist(), chosen_logp.tolist(), torch.isin(chosen, stop).tolist())
            ):
                tokens[seq].append(token)
                log_probs[seq].append(lp)
                if halt:
                    stopped[seq] = True
                else:
                    keep.append(row)
            if not keep:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                step.select(index)
                chosen = chosen[index]
                active = [active[i] for i in keep]
            step.advance(chosen)
        results: list[Generation] = [None] * batch  # type: ignore[list-item]
        for position, i in enumerate(order):
            results[i] = self._finish(tokens[position], log_probs[position], stopped[position])
        return results

    def _finish(self, tokens: list[int], log_probs: list[float], stopped: bool) -> Generation:
        """Cut the output at the first newline; keep the log-probs of the tokens that make the query."""
        pieces = [self.tokenizer.decode([t], skip_special_tokens=True) for t in tokens]
        end = kept_tokens(pieces, [t in self.stop_ids and "\n" not in p for t, p in zip(tokens, pieces)])
        text = self.tokenizer.decode(tokens[:end], skip_special_tokens=True).split("\n", 1)[0]
        return Generation(text=text.strip(), log_probs=tuple(log_probs[:end]), finished=stopped)


def _left_pad(rows: list[list[int]], pad_id: int):
    """Rows padded on the left to the longest one: token ids, and a mask of the real tokens."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    real = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        real[i, width - len(row):] = True
    return ids, real


class _Step:
    """The decoding state of one batch: a ``cache``, a ``mask`` of real tokens and each row's ``positions``."""

    def select(self, index) -> None:
        """Keep only the rows in ``index`` (the others finished)."""
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        self.positions = self.positions[index]

    def advance(self, chosen) -> None:
        """Feed each row's chosen token at the next step."""
        import torch

        self.input_ids = chosen[:, None]
        self.mask = torch.cat([self.mask, torch.ones((len(chosen), 1), dtype=self.mask.dtype, device=self.mask.device)], dim=1)
        self.positions = self.positions[:, -1:] + 1


class _SharedPrefixStep(_Step):
    """One batch decoded against a shared prefix: rows hold only their own tokens, padded on the left.

    The documents are run in chunks of rows of similar length (the batch comes sorted by length), each padded
    only to its own longest row; decoding then runs all rows together.
    """

    def __init__(
        self,
        model,
        prefix: list[tuple],
        rows: list[list[int]],
        max_new_tokens: int,
        pad_id: int,
        device: str,
        prefill_tokens: int,
    ) -> None:
        import torch

        self.model = model
        self.device = device
        self.prefill_tokens = prefill_tokens
        self.dtype = prefix[0][0].dtype
        self.width = max(len(r) for r in rows)
        prefix_len = prefix[0][0].shape[2]
        self.cache = SharedPrefixCache(prefix, len(rows), self.width + max_new_tokens)
        self.mask = _left_pad(rows, pad_id)[1].to(device)
        self.positions = torch.tensor([[prefix_len + len(row) - 1] for row in rows], device=device)
        self.input_ids = None
        self.pending = self._prefill(rows, pad_id, prefix_len)

    def _chunks(self, rows: list[list[int]]):
        start = 0
        while start < len(rows):
            end = start + 1
            while end < len(rows) and (end + 1 - start) * max(len(r) for r in rows[start : end + 1]) <= self.prefill_tokens:
                end += 1
            yield start, end
            start = end

    def _prefill(self, rows: list[list[int]], pad_id: int, prefix_len: int):
        import torch

        logits = []
        for start, end in self._chunks(rows):
            ids, real = _left_pad(rows[start:end], pad_id)
            offset = self.width - ids.shape[1]
            positions = (prefix_len + real.long().cumsum(dim=1) - 1).clamp(min=prefix_len)
            if offset:
                self.cache.clear(slice(start, end), offset)
            self.cache.window(slice(start, end), offset, offset)
            logits.append(self._forward(ids.to(self.device), real.to(self.device), positions.to(self.device)))
        return torch.cat(logits)

    def _forward(self, input_ids, real, positions):
        import torch

        new, seen = input_ids.shape[1], real.shape[1]
        causal = torch.ones((new, seen), dtype=torch.bool, device=real.device).tril(diagonal=seen - new)
        allowed = real[:, None, None, :] & causal[None, None]
        mask = torch.zeros(allowed.shape, dtype=self.dtype, device=real.device).masked_fill_(
            ~allowed, torch.finfo(self.dtype).min
        )
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
            shared_prefix=self.cache,
        )
        return out.logits[:, -1, :]

    def logits(self):
        if self.pending is not None:
            logits, self.pending = self.pending, None
            return logits
        return self._forward(self.input_ids, self.mask, self.positions)

    def advance(self, chosen) -> None:
        super().advance(chosen)
        self.cache.window(slice(None), self.mask.shape[1] - 1, 0)


class _FullStep(_Step):
    """One batch decoded with transformers' own cache and attention; ``prefix`` (if given) is copied into each row."""

    def __init__(self, model, rows: list[list[int]], pad_id: int, device: str, prefix: list[tuple] | None = None) -> None:
        import torch
        from transformers import DynamicCache

        self.model = model
        batch = len(rows)
        fixed = prefix[0][0].shape[2] if prefix else 0
        if prefix:
            self.cache = DynamicCache(
                ddp_cache_data=[
                    (k.expand(batch, -1, -1, -1).contiguous(), v.expand(batch, -1, -1, -1).contiguous()) for k, v in prefix
                ]
            )
        else:
            self.cache = DynamicCache()
        ids, real = _left_pad(rows, pad_id)
        mask = torch.cat([torch.ones((batch, fixed), dtype=torch.long), real.long()], dim=1)
        self.positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, fixed:].to(device)
        self.input_ids, self.mask = ids.to(device), mask.to(device)

    def logits(self):
        out = self.model(
            input_ids=self.input_ids, attention_mask=self.mask, position_ids=self.positions, past_key_values=self.cache,
            use_cache=True, logits_to_keep=1,
        )
        self.cache = out.past_key_values
        return out.logits[:, -1, :]


def _sample(logits, temperature: float, top_p: float, generators: list):
    """One token per row, each row drawn with its own generator (so a row's draw does not depend on its batch)."""
    import torch

    probs = torch.softmax(logits / temperature, dim=-1).cpu()
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        cumulative = sorted_probs.cumsum(dim=-1)
        sorted_probs[cumulative - sorted_probs > top_p] = 0.0
        probs = torch.zeros_like(probs).scatter(1, order, sorted_probs)
    return torch.stack([torch.multinomial(row, 1, generator=g)[0] for row, g in zip(probs, generators)])
