"""Errors that reach the user as one clear line."""

from __future__ import annotations


class InparsError(Exception):
    """A failure the user can act on; the CLI prints its message and exits non-zero."""


class InputError(InparsError):
    """Malformed input: the message names the file, the line and what to do."""

    def __init__(self, path: object, line: int | None, problem: str, hint: str = "") -> None:
        where = f"{path}:{line}" if line is not None else f"{path}"
        message = f"{where}: {problem}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)
        self.path = path
        self.line = line


class MissingDependencyError(InparsError):
    """An optional dependency is absent; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"'{module}' is not installed; install it with: pip install \"inpars[{extra}]\"")


def require(module: str, extra: str):
    """Import an optional module or raise an error naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra) from exc
