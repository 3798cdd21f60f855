"""Query generation with a transformers causal LM.

The few-shot prefix that every prompt shares is run through the model once; its key/value cache is copied
into each batch, so a batch only computes its documents and the new tokens. Batches are length-sorted and
padded between the prefix and the document (positions follow the attention mask), and finished sequences
leave the batch. Decoding stops at the first token whose text holds a newline, whatever the tokenizer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from inpars.generate.base import Generation, GenerationRequest, stop_token_ids
from inpars.models import resolve

logger = logging.getLogger(__name__)


def _pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _pick_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


class HFGenerator:
    """Greedy or sampled decoding with per-token log-probs, batched, with a cached shared prefix."""

    name = "hf"

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", reuse_prefix: bool = True) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_name = model
        self.device = _pick_device(device)
        path = resolve(model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=_pick_dtype(dtype, self.device)).to(self.device)
        self.model.eval()
        self.reuse_prefix = reuse_prefix
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (self.tokenizer.eos_token_id or 0)
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 0) or self.tokenizer.model_max_length)
        self._prefix_cache: dict[str, tuple] = {}

    # -------------------------------------------------------------------------------------- tokens

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            return text
        return self.tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)

    def _prefix_ids(self, prefix: str) -> list[int]:
        ids = self.tokenizer(prefix, add_special_tokens=True)["input_ids"] if prefix else []
        if not ids and self.tokenizer.bos_token_id is not None:
            ids = [self.tokenizer.bos_token_id]
        return ids

    def prompt_length(self, request: GenerationRequest) -> int:
        return len(self._prefix_ids(request.prefix)) + len(self._suffix_ids(request.suffix))

    def _suffix_ids(self, suffix: str) -> list[int]:
        return self.tokenizer(suffix, add_special_tokens=False)["input_ids"]

    # -------------------------------------------------------------------------------------- decoding

    def _prefix_state(self, prefix_ids: list[int]):  # called under inference_mode by generate()
        """Key/value tensors of the shared prefix, computed once per distinct prefix."""
        import torch

        key = tuple(prefix_ids)
        if key not in self._prefix_cache:
            ids = torch.tensor([prefix_ids], device=self.device)
            out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            self._prefix_cache = {key: tuple((layer.keys, layer.values) for layer in cache.layers)}
        return self._prefix_cache[key]

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> list[Generation]:
        """Generate for requests that share one prefix; returns one Generation per request, in order."""
        import torch

        with torch.inference_mode():
            return self._generate(requests, max_new_tokens, temperature, top_p, seed)

    def _generate(self, requests, max_new_tokens, temperature, top_p, seed) -> list[Generation]:
        import torch
        from transformers import DynamicCache

        if not requests:
            return []
        prefixes = {r.prefix for r in requests}
        if len(prefixes) != 1:
            raise ValueError("a batch must share one prefix")
        prefix_ids = self._prefix_ids(requests[0].prefix)
        suffixes = [self._suffix_ids(r.suffix) for r in requests]
        batch = len(requests)
        if self.reuse_prefix:
            state = self._prefix_state(prefix_ids)
            past = DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1).contiguous(), v.expand(batch, -1, -1, -1).contiguous()) for k, v in state])
            fixed = len(prefix_ids)
            rows = suffixes
        else:
            past = DynamicCache()
            fixed = 0
            rows = [prefix_ids + s for s in suffixes]
        width = max(len(r) for r in rows)
        # Pad on the left of each row (between the prefix and the document when the prefix is cached).
        input_ids = torch.full((batch, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, fixed + width), dtype=torch.long)
        mask[:, :fixed] = 1
        for i, row in enumerate(rows):
            input_ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[i, fixed + width - len(row):] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, fixed:]
        input_ids, mask, positions = input_ids.to(self.device), mask.to(self.device), positions.to(self.device)

        generator = torch.Generator(device="cpu").manual_seed(seed)
        active = list(range(batch))
        tokens: list[list[int]] = [[] for _ in range(batch)]
        log_probs: list[list[float]] = [[] for _ in range(batch)]
        stopped = [False] * batch
        stop = torch.tensor(sorted(self.stop_ids), device=self.device)
        next_positions = positions[:, -1:]
        for _ in range(max_new_tokens):
            out = self.model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=past, use_cache=True, logits_to_keep=1
            )
            past = out.past_key_values
            logits = out.logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            if temperature > 0:
                chosen = _sample(logits, temperature, top_p, generator).to(self.device)
            else:
                chosen = logits.argmax(dim=-1)
            chosen_logp = logp.gather(1, chosen[:, None])[:, 0]
            is_stop = torch.isin(chosen, stop)
            keep = []
            for row, (seq, token, lp, halt) in enumerate(zip(active, chosen.tolist(), chosen_logp.tolist(), is_stop.tolist())):
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
                past.batch_select_indices(index)
                chosen = chosen[index]
                mask = mask[index]
                next_positions = next_positions[index]
                active = [active[i] for i in keep]
            input_ids = chosen[:, None]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=self.device)], dim=1)
            next_positions = next_positions + 1
            positions = next_positions
        return [self._finish(tokens[i], log_probs[i], stopped[i]) for i in range(batch)]

    def _finish(self, tokens: list[int], log_probs: list[float], stopped: bool) -> Generation:
        """Cut the output at the first newline; keep the log-probs of the tokens that make the query."""
        end = next((i for i, t in enumerate(tokens) if t in self.stop_ids), len(tokens))
        if end < len(tokens) and self.tokenizer.decode(tokens[end : end + 1], skip_special_tokens=True).split("\n", 1)[0].strip():
            end += 1  # the stop token carries text before its newline ("?\n"): that text is part of the query
        text = self.tokenizer.decode(tokens[:end], skip_special_tokens=True).split("\n", 1)[0]
        return Generation(text=text.strip(), log_probs=tuple(log_probs[:end]), finished=stopped)


def _sample(logits, temperature: float, top_p: float, generator):
    import torch

    probs = torch.softmax(logits / temperature, dim=-1).cpu()
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        cumulative = sorted_probs.cumsum(dim=-1)
        cut = cumulative - sorted_probs > top_p
        sorted_probs[cut] = 0.0
        probs = torch.zeros_like(probs).scatter(1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
