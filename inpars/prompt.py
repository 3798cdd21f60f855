"""Few-shot prompts for query generation, loaded from YAML data files.

A prompt has a shared ``prefix`` (header plus rendered examples, identical for every document) and a
per-document ``suffix`` (the target template). Backends that can reuse computation over the prefix do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from inpars.errors import InparsError, InputError

_BUILTIN_PACKAGE = "inpars.prompts"


@dataclass(frozen=True)
class FewShotExample:
    document: str
    query: str


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str
    example_template: str = ""
    header: str = ""
    examples: tuple[FewShotExample, ...] = ()
    description: str = ""

    @property
    def prefix(self) -> str:
        """The part shared by every document: header and rendered examples."""
        rendered = [
            self.example_template.format(n=i, document=ex.document, query=ex.query)
            for i, ex in enumerate(self.examples, start=1)
        ]
        return self.header + "".join(rendered)

    def suffix(self, document: str) -> str:
        """The per-document part: the target template with the document filled in."""
        return self.template.format(n=len(self.examples) + 1, document=document)

    def render(self, document: str) -> str:
        return self.prefix + self.suffix(document)


def builtin_prompts() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(_BUILTIN_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def load_prompt(name_or_path: str) -> Prompt:
    """A built-in prompt by name (``inpars``) or a user's YAML template file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise InputError(path, None, "prompt file not found", "check the path")
        text = path.read_text(encoding="utf-8")
        source = str(path)
    else:
        if name_or_path not in builtin_prompts():
            raise InparsError(f"unknown prompt '{name_or_path}'; available: {', '.join(builtin_prompts())}, or a path to a YAML template file")
        text = resources.files(_BUILTIN_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
        source = f"{name_or_path}.yaml"
    return parse_prompt(text, source)


def parse_prompt(text: str, source: str) -> Prompt:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = exc.problem_mark.line + 1 if getattr(exc, "problem_mark", None) else None
        raise InputError(source, line, "invalid YAML", "fix the prompt file") from None
    if not isinstance(data, dict) or "template" not in data:
        raise InputError(source, None, "a prompt file needs at least 'template'", "see inpars/prompts/inpars.yaml for the layout")
    if "{document}" not in data["template"]:
        raise InputError(source, None, "'template' has no {document} placeholder", "put {document} where the document goes")
    examples = []
    for i, ex in enumerate(data.get("examples") or [], start=1):
        if not isinstance(ex, dict) or "document" not in ex or "query" not in ex:
            raise InputError(source, None, f"example {i} needs 'document' and 'query'", "fix the examples list")
        examples.append(FewShotExample(document=str(ex["document"]).strip(), query=str(ex["query"]).strip()))
    if examples and not data.get("example_template"):
        raise InputError(source, None, "examples given without 'example_template'", "add an example_template with {document} and {query}")
    return Prompt(
        name=str(data.get("name") or Path(source).stem),
        template=data["template"],
        example_template=data.get("example_template") or "",
        header=data.get("header") or "",
        examples=tuple(examples),
        description=str(data.get("description") or ""),
    )
