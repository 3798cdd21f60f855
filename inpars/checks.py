"""The checks every value passes where it is read: finite numbers, ranges, registered names.

This module sits at the bottom of the package (it imports only ``errors`` and ``registry``), so the config and the
stage modules that validate their own settings can all import it without importing each other.
"""

from __future__ import annotations

import math
from typing import Any

from inpars.errors import InparsError, InputError
from inpars.registry import Registry, suggest


class InvalidValue(InparsError):
    """A config field holds a value it cannot take; the config builder adds the file and line."""

    def __init__(self, key: str, problem: str, hint: str = "") -> None:
        super().__init__(f"'{key}' {problem}" + (f"; {hint}" if hint else ""))
        self.key = key
        self.problem = problem
        self.hint = hint


def is_number(value: Any) -> bool:
    """An int or float that is finite (True and False are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def finite(value: Any, what: str, where: object, line: int | None = None, hint: str = "") -> float:
    """``value`` as a float when it is a finite number (or text of one), else one line naming ``where:line``.

    ``what`` names the value (``score``, ``log_probs[2]``); NaN, infinity, booleans and text that is not a number are
    refused alike, since every measure and every ranking downstream would silently take them.
    """
    if isinstance(value, bool):
        number = math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
    if not math.isfinite(number) or isinstance(value, bool):
        raise InputError(where, line, f"{what} {_shown(value)} is not a finite number", hint or "fix the value")
    return number


def check_finite(config: Any, keys: tuple[str, ...]) -> None:
    """Each of ``keys`` is None or a finite number (a config's float fields)."""
    for key in keys:
        value = getattr(config, key)
        if value is not None and not is_number(value):
            raise InvalidValue(key, f"is {value}", "it must be a finite number")


def check_float_fields(config: Any) -> None:
    """Every field of a config dataclass declared ``float`` (or ``float | None``, or a tuple of floats) holds finite
    numbers: NaN passes every comparison as false, so a range check alone would let it through."""
    import dataclasses

    for item in dataclasses.fields(config):
        kind = item.type if isinstance(item.type, str) else getattr(item.type, "__name__", str(item.type))
        if "float" not in kind:
            continue
        value = getattr(config, item.name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        for number in values:
            if number is not None and isinstance(number, (int, float)) and not is_number(number):
                raise InvalidValue(item.name, f"is {number}", "it must be a finite number")


def check_range(config: Any, keys: tuple[str, ...], low: float, *, strict: bool = False, high: float | None = None) -> None:
    """Each of ``keys`` is None (when its field allows it) or a finite number in [low, high] ((low, high] when
    ``strict``)."""
    check_finite(config, keys)
    for key in keys:
        value = getattr(config, key)
        if value is None:
            continue
        below = value <= low if strict else value < low
        if below or (high is not None and value > high):
            bound = f"{'above' if strict else 'at least'} {_bound(low)}"
            bound += f" and at most {_bound(high)}" if high is not None else ""
            raise InvalidValue(key, f"is {value}", f"it must be {bound}")


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_name(registry: Registry, key: str, name: str) -> None:
    """A field that names a registered backend (a generator, retriever, reranker) holds one of the registry's names."""
    if name not in registry:
        raise InvalidValue(key, f"is '{name}', an unknown {registry.kind}", suggest(name, registry.names()))
