"""Registries of pluggable backends: a name is written once and its class is imported only when used."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from inpars.errors import InparsError


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

    def __contains__(self, name: str) -> bool:
        return name in self._targets

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise an error suggesting the closest names."""
        if name in self._targets:
            return name
        close = difflib.get_close_matches(name, self._targets, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownNameError(f"unknown {self.kind} '{name}'{hint} available: {', '.join(self.names())}")

    def get(self, name: str) -> Any:
        target = self._targets[self.check(name)]
        module_name, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)
