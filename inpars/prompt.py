"""Few-shot prompts for query generation, loaded from YAML data files.

A prompt has a shared ``prefix`` (header plus rendered examples, identical for every document) and a
per-document ``suffix`` (the target template). Backends that can reuse computation over the prefix do so.

Prompt files (``inpars/prompts/*.yaml`` or a user's own file) hold:

- ``template``: the target, with ``{document}`` (and optionally ``{n}``, the example number);
- ``example_template``: one example, with ``{document}``, ``{query}``, ``{n}`` and any other field the
  examples carry (``inpars-gbq`` examples carry ``bad_query``);
- ``header``: text before the examples;
- ``examples``: a list of mappings, or ``examples_from: dataset`` with ``num_examples``: the examples are
  then drawn at run time from the dataset's own judged queries (``promptagator-*``).

``published:<name>`` loads the prompt file published with the InPars papers (downloaded once, checked by
its sha256) for exact reproduction: ``published:inpars``, ``published:inpars-gbq``,
``published:promptagator-<dataset>``.
"""

from __future__ import annotations

import hashlib
import logging
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import yaml

from inpars.errors import InparsError, InputError
from inpars.io import parse_yaml, read_text
from inpars.registry import did_you_mean, suggest

logger = logging.getLogger(__name__)

_BUILTIN_PACKAGE = "inpars.prompts"
EXAMPLE_SOURCES = ("file", "dataset")

# The prompt file of the reference implementation, pinned to a commit and checked by hash.
PUBLISHED_URL = "https://raw.githubusercontent.com/zetaalphavector/InPars/f88c92ba090ee600eb3e3bf0b8296c33e52b311d/inpars/prompts/templates.yaml"
PUBLISHED_SHA256 = "570cd2899a70383279ddf9347ed6159e809fd7290ebd3468890dd0914bb73923"
PUBLISHED_PREFIX = "published:"


@dataclass(frozen=True)
class FewShotExample:
    document: str
    query: str
    fields: Mapping[str, str] = field(default_factory=dict)
    """Other texts the example template uses (``bad_query`` in inpars-gbq)."""
    query_id: str = ""
    doc_id: str = ""


@dataclass(frozen=True)
class Prompt:
    name: str
    template: str
    example_template: str = ""
    header: str = ""
    examples: tuple[FewShotExample, ...] = ()
    description: str = ""
    examples_from: str = "file"
    """``file`` (the examples above) or ``dataset`` (drawn at run time from the dataset's judged queries)."""
    num_examples: int = 0
    """How many examples to draw when ``examples_from`` is ``dataset``."""

    @property
    def needs_examples(self) -> bool:
        """True while examples still have to be drawn from a dataset."""
        return self.examples_from == "dataset" and not self.examples

    @property
    def prefix(self) -> str:
        """The part shared by every document: header and rendered examples."""
        if self.needs_examples:
            raise InparsError(
                f"prompt '{self.name}' takes its examples from a dataset; draw them first (inpars.generate.fewshot)"
            )
        rendered = [
            self.example_template.format(**{**ex.fields, "n": i, "document": ex.document, "query": ex.query})
            for i, ex in enumerate(self.examples, start=1)
        ]
        return self.header + "".join(rendered)

    def suffix(self, document: str) -> str:
        """The per-document part: the target template with the document filled in."""
        return self.template.format(n=len(self.examples) + 1, document=document)

    def render(self, document: str) -> str:
        return self.prefix + self.suffix(document)

    def with_examples(self, examples: Sequence[FewShotExample]) -> Prompt:
        return replace(self, examples=tuple(examples))

    def digest(self) -> str:
        """A hash of everything that shapes the prompt text (for resume checks)."""
        parts = [
            self.header, self.example_template, self.template,
            *(f"{e.document}\x1f{e.query}\x1f{sorted(e.fields.items())}" for e in self.examples),
        ]
        return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:16]


def builtin_prompts() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(_BUILTIN_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def load_prompt(name_or_path: str) -> Prompt:
    """A built-in prompt by name (``inpars``), a published one (``published:inpars``) or a user's YAML file by path."""
    if name_or_path.startswith(PUBLISHED_PREFIX):
        return load_published_prompt(name_or_path[len(PUBLISHED_PREFIX):])
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise InputError(path, None, "prompt file not found", "check the path")
        text = read_text(path, "prompt file")
        source = str(path)
    else:
        if name_or_path not in builtin_prompts():
            raise InparsError(
                f"unknown prompt '{name_or_path}'; {suggest(name_or_path, builtin_prompts())}, "
                f"'{PUBLISHED_PREFIX}<name>' for the published prompts, or a path to a YAML template file"
            )
        text = resources.files(_BUILTIN_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
        source = f"{name_or_path}.yaml"
    return parse_prompt(text, source)


# ---------------------------------------------------------------------------------------------- parsing


def _placeholders(template: str, source: str, key: str, line: int | None) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise InputError(
            source, line, f"'{key}' is not a valid template ({exc})",
            "write placeholders as {document}; double literal braces as {{ }}",
        ) from None


def parse_prompt(text: str, source: str) -> Prompt:
    data, lines = parse_yaml(text, source, "fix the prompt file")
    if not isinstance(data, dict) or "template" not in data:
        raise InputError(source, None, "a prompt file needs at least 'template'", "see inpars/prompts/inpars.yaml for the layout")
    known = {"name", "description", "header", "example_template", "template", "examples", "examples_from", "num_examples"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            source, lines.get(unknown[0]), f"unknown key '{unknown[0]}'",
            did_you_mean(unknown[0], sorted(known), f"known keys: {', '.join(sorted(known))}"),
        )
    template = str(data["template"])
    used = _placeholders(template, source, "template", lines.get("template"))
    if "document" not in used:
        raise InputError(
            source, lines.get("template"), "'template' has no {document} placeholder", "put {document} where the document goes"
        )
    if used - {"document", "n"}:
        raise InputError(
            source, lines.get("template"), f"'template' uses unknown placeholder {{{min(used - {'document', 'n'})}}}",
            "the target template may use {document} and {n}",
        )
    example_template = str(data.get("example_template") or "")
    example_fields = _placeholders(example_template, source, "example_template", lines.get("example_template"))
    examples_from = str(data.get("examples_from") or "file")
    if examples_from not in EXAMPLE_SOURCES:
        raise InputError(
            source, lines.get("examples_from"), f"examples_from '{examples_from}' is not one of {', '.join(EXAMPLE_SOURCES)}",
            "use 'dataset' to draw examples from the dataset's judged queries",
        )
    examples = _parse_examples(data.get("examples") or [], example_fields, source, lines)
    num_examples = data.get("num_examples", 0)
    if not isinstance(num_examples, int) or isinstance(num_examples, bool) or num_examples < 0:
        raise InputError(
            source, lines.get("num_examples"), f"num_examples should be a whole number, got {num_examples!r}",
            "e.g. num_examples: 3",
        )
    if (examples or examples_from == "dataset") and not example_template:
        raise InputError(
            source, None, "examples without 'example_template'", "add an example_template with {document} and {query}"
        )
    if examples_from == "dataset":
        if examples:
            raise InputError(
                source, lines.get("examples"), "examples_from: dataset, but the file also lists examples", "keep one of the two"
            )
        if num_examples < 1:
            raise InputError(
                source, lines.get("num_examples") or lines.get("examples_from"),
                "examples_from: dataset needs num_examples of at least 1", "e.g. num_examples: 3",
            )
        extra = example_fields - {"n", "document", "query"}
        if extra:
            raise InputError(
                source, lines.get("example_template"),
                f"example_template uses {{{min(extra)}}}, which dataset examples do not have",
                "dataset examples give {document} and {query}",
            )
    return Prompt(
        name=str(data.get("name") or Path(source).stem),
        template=template,
        example_template=example_template,
        header=str(data.get("header") or ""),
        examples=tuple(examples),
        description=str(data.get("description") or ""),
        examples_from=examples_from,
        num_examples=num_examples,
    )


def _parse_examples(items, example_fields: set[str], source: str, lines: dict[str, int]) -> list[FewShotExample]:
    if not isinstance(items, list):
        raise InputError(
            source, lines.get("examples"), "'examples' should be a list",
            "write each example as '- document: ...' with 'query: ...'",
        )
    examples = []
    for i, ex in enumerate(items, start=1):
        line = lines.get(f"examples.{i - 1}")
        if not isinstance(ex, dict) or "document" not in ex or "query" not in ex:
            raise InputError(source, line, f"example {i} needs 'document' and 'query'", "fix the examples list")
        texts = {str(k): str(v).strip() for k, v in ex.items()}
        missing = sorted(example_fields - set(texts) - {"n"})
        if missing:
            raise InputError(
                source, line, f"example {i} has no '{missing[0]}', which example_template uses",
                f"add '{missing[0]}' to every example",
            )
        others = {k: v for k, v in texts.items() if k not in ("document", "query")}
        examples.append(FewShotExample(document=texts["document"], query=texts["query"], fields=others))
    return examples


# ---------------------------------------------------------------------------------------------- published


def published_prompts_file() -> Path:
    """The published prompt file, downloaded once into the inpars cache and checked by sha256."""
    from inpars.models import cache_dir

    target = cache_dir() / "prompts" / f"inpars-templates-{PUBLISHED_SHA256[:12]}.yaml"
    if target.is_file():
        _check_published(target.read_bytes(), str(target))
        return target
    from inpars.io import download

    download(
        PUBLISHED_URL, target, "the published prompt file", "use a built-in prompt (inpars, inpars-gbq, promptagator-<dataset>)",
        lambda data: _check_published(data, PUBLISHED_URL), timeout=30,
    )
    return target


def _check_published(data: bytes, where: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != PUBLISHED_SHA256:
        raise InparsError(
            f"{where}: sha256 {digest} differs from the pinned {PUBLISHED_SHA256}; delete the file and retry, or use a "
            "built-in prompt"
        )


def load_published_prompt(name: str) -> Prompt:
    """One prompt of the published file, in inpars' layout (the text the reference code builds, token for token)."""
    text = published_prompts_file().read_text(encoding="utf-8")
    return convert_published(text, name, source=PUBLISHED_URL)


def _escape(text: str, keep: Sequence[str]) -> str:
    out = text.replace("{", "{{").replace("}", "}}")
    for name in keep:
        out = out.replace("{{" + name + "}}", "{" + name + "}")
    return out


def convert_published(text: str, name: str, source: str) -> Prompt:
    """Convert an entry of the published file: ``static`` entries hold the whole prompt; ``dynamic`` ones one example.

    The reference fills the last ``{query}`` with an empty string and strips trailing whitespace (so does this,
    except that a query line without a label keeps its newline); the shared prefix ends at the start of the
    line holding ``{document}``, so it tokenizes as the whole prompt does.
    """
    data = yaml.safe_load(text)
    entries = data if isinstance(data, dict) else {}
    if name not in entries:
        raise InparsError(
            f"no prompt '{name}' in the published file; available: {', '.join(PUBLISHED_PREFIX + n for n in sorted(entries))}"
        )
    entry = entries[name]
    body = str(entry["template"])
    cut = body.rfind("\n", 0, body.index("{document}")) + 1
    before_query = body[cut:body.index("{query}")]
    target = before_query.rstrip()
    if "\n" in before_query and not before_query.rsplit("\n", 1)[1].strip():
        # The query has a line of its own with no label (promptagator-fiqa): end the prompt with that newline,
        # or the model's first token would be the newline that ends a query.
        target += "\n"
    target = _escape(target, ["document"])
    if entry.get("mode") == "static":
        return Prompt(
            name=f"{PUBLISHED_PREFIX}{name}", header=body[:cut], template=target, description=f"published '{name}' prompt"
        )
    return Prompt(
        name=f"{PUBLISHED_PREFIX}{name}",
        template=target,
        example_template=_escape(body, ["document", "query"]),
        examples_from="dataset",
        num_examples=3,
        description=f"published '{name}' prompt; examples from the dataset",
    )
