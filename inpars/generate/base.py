"""What every generator backend takes and returns."""

from __future__ import annotations

from dataclasses import dataclass

from inpars.registry import Registry


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt split into the part shared by all documents and the part for this document."""

    prefix: str
    suffix: str


@dataclass(frozen=True)
class Generation:
    text: str
    log_probs: tuple[float, ...]
    finished: bool = True


def stop_token_ids(tokenizer) -> set[int]:
    """Token ids that end a query: end-of-sequence tokens and every token whose text contains a newline.

    Computed from the vocabulary, so generation stops at a newline whatever the tokenizer.
    """
    ids: set[int] = set()
    for special in (tokenizer.eos_token_id,):
        if special is not None:
            ids.add(int(special))
    pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=False)
    ids.update(i for i, piece in enumerate(pieces) if "\n" in piece)
    return ids


generators = Registry("generator")
generators.register("hf", "inpars.generate.hf:HFGenerator")
