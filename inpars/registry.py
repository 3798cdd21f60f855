"""Registries of pluggable backends: a name is written once and its class is imported only when used."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from inpars.errors import InparsError


def did_you_mean(name: str, known: Iterable[str], otherwise: str = "") -> str:
    """``did you mean 'x'?`` for the name among ``known`` closest to a mistyped ``name``; ``otherwise`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f"did you mean '{close[0]}'?" if close else otherwise


def suggest(name: str, known: Iterable[str]) -> str:
    """The hint after an unknown name: the closest known name, if any, then all of them (``did you mean 'x'? available: ...``)."""
    known = [str(k) for k in known]
    return " ".join(part for part in (did_you_mean(name, known), f"available: {', '.join(known)}") if part)


class UnknownNameError(InparsError):
    pass


class Registry:
    """Maps backend names to ``"module:attribute"`` targets, loaded lazily."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str] = {}

    def register(self, name: str, target: str) -> None:
        if name in self._targets:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._targets[name] = target

    def names(self) -> list[str]:
        return sorted(self._targets)

    def __iter__(self) -> Iterator[str]:
        """The names in the order they were registered (where that order matters, e.g. which source claims a name)."""
        return iter(self._targets)

    def __contains__(self, name: str) -> bool:
        return name in self._targets

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise an error suggesting the closest names."""
        if name in self._targets:
            return name
        raise UnknownNameError(f"unknown {self.kind} '{name}'; {suggest(name, self.names())}")

    def get(self, name: str) -> Any:
        target = self._targets[self.check(name)]
        module_name, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)
