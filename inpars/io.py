"""All file reading and writing: JSONL, BEIR folders, TREC runs and qrels, synthetic queries, training pairs.

Every writer goes through :func:`atomic_write`, so a crash never leaves a half file under the final name.
Every reader reports malformed input as one :class:`InputError` naming the file and the line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from inpars.checks import finite
from inpars.data import Doc, Qrels, Query, Run, SyntheticQuery, TrainingExample, ranked
from inpars.errors import InparsError, InputError

# ---------------------------------------------------------------------------------------------- writing


def _umask() -> int:
    # os.umask can only be read by setting it; set it back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output(path: str | os.PathLike, folder: bool = False) -> Path:
    """Refuse an output path that cannot be replaced atomically by a file (or a folder), before any work is done.

    A symbolic link is refused: renaming over it would replace the link, not the file it points to.
    """
    path = Path(path)
    if path.is_symlink():
        raise InputError(
            path,
            None,
            f"is a symbolic link (to {os.readlink(path)}); outputs are written by renaming over their path, which would "
            "replace the link",
            "give the real path as the output",
        )
    if path.is_dir() and not folder:
        raise InputError(path, None, "is a folder, not a file", "give a file name as the output")
    if path.exists() and folder and not path.is_dir():
        raise InputError(path, None, "is a file, not a folder", "give a folder name as the output")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(path, None, f"cannot be created: {parent} is a file", "choose another output path")
            if not os.access(parent, os.W_OK | os.X_OK) and parent == path.parent:
                raise InputError(
                    path, None, f"cannot be written: no permission to write in {parent}", "choose another output path"
                )
            break
    return path


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(path, None, f"cannot create the folder ({exc.strerror})", "choose another output path") from None


_HELD: dict[str, list] = {}
"""Locks this process holds: path -> [lock, depth] (a stage inside a run takes its folder's lock again)."""


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of ``target`` (a file or a folder, existing or not): ``.<name>.lock`` beside it, so that a folder
    replaced whole (a model written atomically) keeps its lock."""
    target = Path(target).absolute()
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def exclusive(target: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an advisory lock on ``target`` (a run folder, a stage folder, an output being written) while the block runs.

    A second process that asks for it is refused at once with one line naming the holder's pid: two writers of one
    output (or two runs of one folder) would otherwise interleave their rows. The lock is ``filelock``'s (``flock``),
    released by the system when its holder dies, so a killed run never leaves a stale lock behind.
    """
    from filelock import FileLock, Timeout

    path = lock_path(target)
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    _mkdir(path.parent)
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = path.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise InparsError(
            f"{target}: {what} is in use by another inpars process (pid {holder}); wait for it to finish, or stop it"
        ) from None
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    except OSError:
        pass  # the lock holds without its note
    _HELD[key] = [lock, 1]
    try:
        yield
    finally:
        _HELD.pop(key, None)
        # Unlinked while still held: a process that opened the file meanwhile finds its lock guards no name, and retries.
        with contextlib.suppress(OSError):
            path.unlink()
        lock.release()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place only when the block succeeds."""
    path = check_output(path)
    _mkdir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(path, None, f"cannot be written ({exc.strerror})", "choose another output path") from None
    try:
        # mkstemp creates 0600; an output follows the umask like any file the user creates (0644 usually).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, ensure_ascii=False)
        handle.write("\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Fill a temporary folder beside ``path`` and rename it into place only when the block succeeds.

    If another writer completed ``path`` first, its folder is kept and this one is discarded.
    """
    path = check_output(path, folder=True)
    _mkdir(path.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        staging.chmod(0o777 & ~_umask())
        yield staging
        try:
            os.rename(staging, path)
        except OSError:
            if not path.is_dir():
                raise
            shutil.rmtree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------------- reading


def copy_tree(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy the folder ``source`` to ``target`` (which must not exist yet), renamed into place only when whole."""
    source, target = Path(source), check_output(target, folder=True)
    with atomic_directory(target) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise InputError(path, None, f"{what} not found", "check the path")


BOM = b"\xef\xbb\xbf"
UTF8_HINT = "save the file as UTF-8 (for example: iconv -f latin1 -t utf-8 FILE)"


def show(value: Any, limit: int = 40) -> str:
    """A value as an error message quotes it: its repr, cut short (a 5 MB line, or a YAML alias bomb, stays short)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxdict, short.maxstring, short.maxother = 2, 4, 4, 4, limit, limit
    text = short.repr(value)
    return text if len(text) <= limit + 10 else text[:limit] + "..."


def _not_utf8(path: Path, lineno: int, line_offset: int, raw: bytes, exc: UnicodeDecodeError) -> InputError:
    return InputError(
        path, lineno,
        f"not UTF-8: byte 0x{raw[exc.start]:02x} at byte offset {line_offset + exc.start:,} (column {exc.start + 1})", UTF8_HINT,
    )


def iter_lines(path: str | os.PathLike, what: str = "file") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a UTF-8 text file, without the line end (``\\n`` or ``\\r\\n``).

    A leading byte-order mark is dropped (it would otherwise become part of the first id); bytes that are not
    UTF-8 raise one :class:`InputError` with the line and the byte offset.
    """
    path = Path(path)
    _require_file(path, what)
    offset = 0
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            start = len(BOM) if lineno == 1 and raw.startswith(BOM) else 0
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, lineno, offset + start, raw[start:], exc) from None
            offset += len(raw)
            yield lineno, text.rstrip("\n").removesuffix("\r")


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """A whole UTF-8 text file (a leading byte-order mark dropped); bytes that are not UTF-8 name their line and offset."""
    path = Path(path)
    _require_file(path, what)
    data = path.read_bytes()
    start = len(BOM) if data.startswith(BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, start + exc.start) + 1
        lineno = data.count(b"\n", 0, start + exc.start) + 1
        raise _not_utf8(
            path,
            lineno,
            line_start,
            data[line_start:],
            UnicodeDecodeError(
                exc.encoding, exc.object, start + exc.start - line_start, start + exc.end - line_start, exc.reason
            ),
        ) from None


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(read_text(path, "JSON file"))
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"invalid JSON ({exc.msg})", "fix or regenerate the file") from None


def parse_yaml(text: str, source: object, fix: str) -> tuple[Any, dict[str, int]]:
    """YAML ``text`` (safe tags only) and the line of each of its keys, dotted (``generate.model``; list items
    ``steps.0``); invalid YAML is one :class:`InputError` naming ``source``, the line and ``fix``."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            source, mark.line + 1 if mark else None, f"invalid YAML ({getattr(exc, 'problem', None) or exc})", fix
        ) from None
    finally:
        loader.dispose()
    return data, (_yaml_key_lines(node, source=source) if node is not None else {})


def _yaml_key_lines(node: Any, prefix: str = "", seen: set[int] | None = None, source: object = "<yaml>") -> dict[str, int]:
    """The line of each key, dotted; a key given twice in one mapping is refused (YAML would keep the last one
    silently, and a recipe with a section twice would lose the first)."""
    import yaml

    out: dict[str, int] = {}
    # An alias is the node it names: walk each node once, or nested aliases (an "alias bomb") take forever.
    seen = set() if seen is None else seen
    if id(node) in seen:
        return out
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key in first:
                    raise InputError(
                        source, line, f"'{key}' is given twice (first on line {first[key]})", "keep one and merge the two"
                    )
                first[key] = line
            out[key] = line
            out.update(_yaml_key_lines(value_node, f"{key}.", seen, source))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = f"{prefix}{index}"
            out[key] = item.start_mark.line + 1
            out.update(_yaml_key_lines(item, f"{key}.", seen, source))
    return out


def iter_jsonl(path: str | os.PathLike, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line; blank lines are allowed and skipped."""
    path = Path(path)
    for lineno, line in iter_lines(path, "JSONL file"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, lineno, f"invalid JSON ({exc.msg})", "each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise InputError(path, lineno, "expected a JSON object", "each line must be one JSON object")
        missing = [key for key in required if key not in obj]
        if missing:
            raise InputError(path, lineno, f"missing field(s) {', '.join(missing)}", f"each line needs {', '.join(required)}")
        yield lineno, obj


def _as_id(value: Any, path: Path, lineno: int, key: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError(path, lineno, f"empty {key}", f"give every record a non-empty {key}")
    if isinstance(value, (dict, list)):
        raise InputError(path, lineno, f"{key} {show(value)} is not a string or a number", f"give every record a plain {key}")
    text = str(value)
    if any(c.isspace() for c in text):
        # TREC runs and qrels separate their fields by whitespace: such an id would split into two fields there.
        raise InputError(
            path, lineno, f"{key} {show(text)} contains whitespace", "ids must not contain spaces, tabs or line breaks"
        )
    return text


def _as_text(value: Any, path: Path, lineno: int, key: str, *, optional: bool = False) -> str:
    """A text field as the string it is: null (unless ``optional``, where it reads as empty), a number, a list or an
    object is refused rather than turned into ``"None"`` or its repr."""
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__.replace("dict", "an object").replace("list", "a list")
        kind = {"int": "a number", "float": "a number", "bool": "a boolean"}.get(kind, kind)
        raise InputError(path, lineno, f"{key} is {kind}, not a string ({show(value)})", f"give every record's {key} as text")
    return value


def _require_rows(path: Path, count: int, what: str, hint: str) -> None:
    if count == 0:
        raise InputError(path, None, f"holds no {what}", hint)


# ---------------------------------------------------------------------------------------------- BEIR


def read_beir_corpus(path: str | os.PathLike) -> dict[str, Doc]:
    path = Path(path)
    docs: dict[str, Doc] = {}
    for lineno, obj in iter_jsonl(path, required=("_id", "text")):
        doc_id = _as_id(obj["_id"], path, lineno, "_id")
        if doc_id in docs:
            raise InputError(path, lineno, f"duplicate document id {show(doc_id)}", "document ids must be unique")
        docs[doc_id] = Doc(
            doc_id=doc_id,
            text=_as_text(obj["text"], path, lineno, "text"),
            title=_as_text(obj.get("title"), path, lineno, "title", optional=True),
        )
    _require_rows(path, len(docs), "documents", "a corpus has one JSON object per line with _id and text")
    return docs


def read_beir_queries(path: str | os.PathLike) -> dict[str, Query]:
    path = Path(path)
    queries: dict[str, Query] = {}
    for lineno, obj in iter_jsonl(path, required=("_id", "text")):
        query_id = _as_id(obj["_id"], path, lineno, "_id")
        if query_id in queries:
            raise InputError(path, lineno, f"duplicate query id {show(query_id)}", "query ids must be unique")
        queries[query_id] = Query(query_id=query_id, text=_as_text(obj["text"], path, lineno, "text"))
    _require_rows(path, len(queries), "queries", "a queries file has one JSON object per line with _id and text")
    return queries


def _add_judgement(qrels: Qrels, first_line: dict, path: Path, lineno: int, query_id: str, doc_id: str, grade: int) -> None:
    """Record a judgement; the same pair judged twice with different grades is an error naming both lines."""
    previous = qrels.get(query_id, {}).get(doc_id)
    if previous is not None and previous != grade:
        raise InputError(
            path,
            lineno,
            f"query {show(query_id)} judges document {show(doc_id)} {grade} here and {previous} on line "
            f"{first_line[query_id, doc_id]}",
            "keep one judgement per query and document",
        )
    first_line.setdefault((query_id, doc_id), lineno)
    qrels.setdefault(query_id, {})[doc_id] = grade


def read_qrels_tsv(path: str | os.PathLike) -> Qrels:
    """BEIR qrels: a header ``query-id corpus-id score`` (optional), then tab-separated rows."""
    path = Path(path)
    qrels: Qrels = {}
    first_line: dict = {}
    for lineno, line in iter_lines(path, "qrels file"):
        if not line.strip():
            continue
        parts = line.split("\t")
        if lineno == 1 and parts[0] in ("query-id", "query_id", "qid"):
            continue
        if len(parts) != 3:
            raise InputError(
                path, lineno, f"expected 3 tab-separated fields, found {len(parts)}", "rows are query-id, corpus-id, score"
            )
        try:
            value = float(parts[2])
            if not value.is_integer():
                raise ValueError
        except ValueError:
            raise InputError(
                path, lineno, f"relevance {show(parts[2])} is not an integer", "the third field is an integer grade"
            ) from None
        _add_judgement(qrels, first_line, path, lineno, parts[0], parts[1], int(value))
    _require_rows(path, len(qrels), "judgements", "rows are query-id, corpus-id, score")
    return qrels


def write_qrels_tsv(path: str | os.PathLike, qrels: Qrels) -> None:
    with atomic_write(path) as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id, docs in qrels.items():
            for doc_id, grade in docs.items():
                handle.write(f"{query_id}\t{doc_id}\t{grade}\n")


def write_beir_folder(
    folder: str | os.PathLike, docs: Iterable[Doc], queries: Iterable[Query], qrels: Qrels, split: str = "test"
) -> None:
    folder = Path(folder)
    write_jsonl(folder / "corpus.jsonl", ({"_id": d.doc_id, "title": d.title, "text": d.text} for d in docs))
    write_jsonl(folder / "queries.jsonl", ({"_id": q.query_id, "text": q.text} for q in queries))
    write_qrels_tsv(folder / "qrels" / f"{split}.tsv", qrels)


# ---------------------------------------------------------------------------------------------- documents alone

ID_NAMES = ("_id", "id", "doc_id", "docid")
"""What the document id may be called in a JSONL, CSV or TSV file of documents: BEIR's name and the usual others."""

TEXT_SUFFIXES = (".txt", ".md")
"""The files a folder of documents is read from."""

_DELIMITERS = {".csv": ",", ".tsv": "\t"}


def _id_name(names: Iterable[str], path: Path, lineno: int, what: str) -> str:
    """The one id name among ``names`` (fields of a JSON object, or columns of a header); none or several is refused."""
    found = [name for name in ID_NAMES if name in names]
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(path, lineno, f"no document id {what}", f"call the id {what} one of {', '.join(ID_NAMES)}")
    raise InputError(
        path, lineno, f"{len(found)} {what}s could be the document id ({', '.join(found)})",
        "keep one of them, or rename the others",
    )


def _add_doc(docs: dict[str, Doc], path: Path, lineno: int, doc: Doc) -> None:
    if doc.doc_id in docs:
        raise InputError(path, lineno, f"duplicate document id {show(doc.doc_id)}", "document ids must be unique")
    docs[doc.doc_id] = doc


def read_jsonl_corpus(path: str | os.PathLike) -> dict[str, Doc]:
    """A JSONL file of documents: one object per line with an id (``_id``, ``id``, ``doc_id`` or ``docid``; exactly one
    of them), ``text`` and, optionally, ``title``; other fields are ignored."""
    path = Path(path)
    docs: dict[str, Doc] = {}
    for lineno, obj in iter_jsonl(path, required=("text",)):
        key = _id_name(obj, path, lineno, "field")
        doc = Doc(
            doc_id=_as_id(obj[key], path, lineno, key),
            text=_as_text(obj["text"], path, lineno, "text"),
            title=_as_text(obj.get("title"), path, lineno, "title", optional=True),
        )
        _add_doc(docs, path, lineno, doc)
    _require_rows(path, len(docs), "documents", f"give one JSON object per line with an id ({ID_NAMES[0]}) and text")
    return docs


def read_delimited_corpus(path: str | os.PathLike) -> dict[str, Doc]:
    """A ``.csv`` (comma-separated, fields quoted as spreadsheets write them) or ``.tsv`` file (tab-separated, no quoting:
    a field holds no tab or line break) of documents.

    The first row names the columns: an id (``_id``, ``id``, ``doc_id`` or ``docid``; exactly one of them), ``text``
    and, optionally, ``title``; other columns are ignored. Names are matched without regard to case or surrounding
    spaces. Blank lines are skipped.
    """
    import csv
    import sys

    path = Path(path)
    delimiter = _DELIMITERS.get(path.suffix.lower())
    if delimiter is None:
        raise InputError(path, None, "is not a .csv or .tsv file", "name a file of documents .csv, .tsv or .jsonl")
    kind = "comma" if delimiter == "," else "tab"
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    lines = (f"{line}\n" for _, line in iter_lines(path, "file of documents"))
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting, strict=True)
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a document may be longer than csv's default of 128 KiB
    docs: dict[str, Doc] = {}
    header: list[str] | None = None
    header_line = 0
    try:
        start = 1
        for row in reader:
            lineno, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header, header_line = [name.strip().lower() for name in row], lineno
                id_name, where = _corpus_columns(header, path, lineno)
                continue
            if len(row) != len(header):
                raise InputError(
                    path, lineno,
                    f"{len(row)} {kind}-separated fields where the header (line {header_line}) names {len(header)}",
                    "quote the fields that hold commas or line breaks" if delimiter == ","
                    else "a .tsv field holds no tab or line break: for such text, write a quoted .csv or a .jsonl file",
                )
            doc = Doc(
                doc_id=_as_id(row[where[id_name]], path, lineno, id_name),
                text=row[where["text"]],
                title=row[where["title"]] if "title" in where else "",
            )
            _add_doc(docs, path, lineno, doc)
    except csv.Error as exc:
        raise InputError(path, reader.line_num, f"malformed {kind}-separated text ({exc})", "check the quoting") from None
    finally:
        csv.field_size_limit(previous_limit)
    _require_rows(path, len(docs), "documents", f"a header row ({ID_NAMES[0]}, title, text), then one row per document")
    return docs


def _corpus_columns(header: list[str], path: Path, lineno: int) -> tuple[str, dict[str, int]]:
    """The id column's name and the position of each column that is read, from a header row (names lowered)."""
    id_name = _id_name(header, path, lineno, "column")
    where: dict[str, int] = {}
    for name in (id_name, "text", "title"):
        if header.count(name) > 1:
            raise InputError(path, lineno, f"the header names the column '{name}' {header.count(name)} times", "keep one")
        if name in header:
            where[name] = header.index(name)
    if "text" not in where:
        raise InputError(
            path, lineno, f"no 'text' column (the header names {', '.join(map(repr, header))})",
            f"the header names an id column ({ID_NAMES[0]}), 'text' and, optionally, 'title'",
        )
    return id_name, where


def _markdown_title(content: str) -> tuple[str, str]:
    """``(title, text)`` of a Markdown file: a file that opens with an ATX heading (``# Title``, any level) has it as
    title and the rest as text; any other has no title."""
    import re

    first, _, rest = content.lstrip("\r\n").partition("\n")
    heading = re.fullmatch(r" {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*", first.rstrip("\r"))
    if heading is None:
        return "", content.strip()
    return (heading.group(1) or "").strip(), rest.strip()


def text_folder_id(relative: str) -> str:
    """The document id of a file in a folder of documents: its path relative to the folder, folders separated by ``/``,
    each run of whitespace replaced by ``_`` (TREC runs and qrels split their fields at whitespace)."""
    import re

    return re.sub(r"\s+", "_", relative)


def read_text_folder(folder: str | os.PathLike) -> tuple[dict[str, Doc], dict[str, Path]]:
    """Every ``.txt`` and ``.md`` file under ``folder``, subfolders too, as one document; hidden files and folders (a
    name that starts with ``.``) are left out, and symbolic links to folders are not followed.

    Its id is :func:`text_folder_id` of its relative path; its text the file's content (UTF-8), stripped of surrounding
    blank space; a ``.md`` file that opens with a heading has it as title (see :func:`_markdown_title`), any other
    file has none. Two files whose ids coincide are refused. Returns the documents, and by id the file each was read
    from, in the order of their ids.
    """
    folder = Path(folder)
    found: dict[str, Path] = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in TEXT_SUFFIXES or not path.is_file():
                continue
            relative = path.relative_to(folder).as_posix()
            doc_id = text_folder_id(relative)
            if doc_id in found:
                other = found[doc_id].relative_to(folder).as_posix()
                raise InputError(
                    folder, None, f"'{other}' and '{relative}' both have the document id '{doc_id}' (whitespace becomes '_')",
                    "rename one of the two files",
                )
            found[doc_id] = path
    if not found:
        raise InputError(
            folder, None, "holds no corpus.jsonl and no .txt or .md file",
            "give a BEIR folder, a folder of .txt or .md files, or a .jsonl, .csv or .tsv file of documents",
        )
    docs: dict[str, Doc] = {}
    files: dict[str, Path] = {}
    for doc_id in sorted(found):
        path = found[doc_id]
        content = read_text(path, "document")
        title, text = _markdown_title(content) if path.suffix.lower() == ".md" else ("", content.strip())
        docs[doc_id] = Doc(doc_id=doc_id, text=text, title=title)
        files[doc_id] = path
    return docs, files


# ---------------------------------------------------------------------------------------------- TREC runs


def format_score(score: float) -> str:
    """The shortest text that reads back as the same float: distinct scores stay distinct in a run file.

    A fixed number of decimals would not do: monoT5's log P(true) of confident documents lies within 5e-7 of 0,
    and six decimals would print them all as ``-0.000000`` and leave their order to the document ids.
    """
    return repr(float(score))


def write_trec_run(path: str | os.PathLike, run: Run | Iterable[Run], tag: str = "inpars") -> int:
    """TREC format ``qid Q0 docid rank score tag``, in :func:`inpars.data.ranked`'s order (trec_eval's); scores exact.

    ``run`` is one run, or runs of disjoint queries written one after the other (a search in chunks, so the whole run
    is never held). Returns the number of queries written.
    """
    count = 0
    with atomic_write(path) as handle:
        for part in [run] if isinstance(run, Mapping) else run:
            for query_id, scores in part.items():
                bad = [doc_id for doc_id, score in scores.items() if not math.isfinite(score)]
                if bad:  # a model's NaN (an fp16 overflow, say) would rank anywhere and score as anything
                    raise InparsError(
                        f"{path}: query {show(query_id)} has {len(bad)} document(s) scored {scores[bad[0]]} "
                        f"(e.g. {show(bad[0])}); a run takes finite scores only: check the model's precision (try fp32)"
                    )
                handle.writelines(
                    f"{query_id} Q0 {doc_id} {rank} {format_score(score)} {tag}\n"
                    for rank, (doc_id, score) in enumerate(ranked(scores), 1)
                )
                count += 1
    return count


def read_trec_run(path: str | os.PathLike) -> Run:
    """A TREC run; a document listed twice for one query, or a score that is not a finite number, is an error."""
    path = Path(path)
    run: Run = {}
    first_line: dict[tuple[str, str], int] = {}
    for lineno, line in iter_lines(path, "run file"):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            raise InputError(
                path, lineno, f"expected 6 fields (qid Q0 docid rank score tag), found {len(parts)}", "write runs in TREC format"
            )
        score = finite(parts[4], "score", path, lineno, "the fifth field is the score: give every document a finite number")
        key = (parts[0], parts[2])
        if key in first_line:
            raise InputError(
                path, lineno, f"query {show(parts[0])} lists document {show(parts[2])} again (first on line {first_line[key]})",
                "a run ranks each document at most once per query; remove the duplicate line",
            )
        first_line[key] = lineno
        run.setdefault(parts[0], {})[parts[2]] = score
    _require_rows(path, len(run), "results", "a run has one line per retrieved document: qid Q0 docid rank score tag")
    return run


def read_trec_qrels(path: str | os.PathLike) -> Qrels:
    """TREC qrels ``qid iter docid grade``."""
    path = Path(path)
    qrels: Qrels = {}
    first_line: dict = {}
    for lineno, line in iter_lines(path, "qrels file"):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise InputError(
                path, lineno, f"expected 4 fields (qid iter docid grade), found {len(parts)}", "write qrels in TREC format"
            )
        try:
            grade = int(parts[3])
        except ValueError:
            raise InputError(path, lineno, f"grade {show(parts[3])} is not an integer", "the fourth field is the grade") from None
        _add_judgement(qrels, first_line, path, lineno, parts[0], parts[2], grade)
    _require_rows(path, len(qrels), "judgements", "write qrels in TREC format: qid iter docid grade")
    return qrels


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Qrels in BEIR TSV (by extension ``.tsv``) or TREC format."""
    return read_qrels_tsv(path) if str(path).endswith(".tsv") else read_trec_qrels(path)


# ---------------------------------------------------------------------------------------------- synthetic queries


def synthetic_to_row(query: SyntheticQuery) -> dict:
    if not all(math.isfinite(lp) for lp in query.log_probs):
        raise InparsError(
            f"the generator gave query {show(query.query_id)} a log-probability that is not finite ({list(query.log_probs)}); "
            "check the model's precision (try fp32) before filtering on it"
        )
    row = {
        "query_id": query.query_id,
        "doc_id": query.doc_id,
        "text": query.text,
        "log_probs": [round(lp, 6) for lp in query.log_probs],
        "prompt": query.prompt,
        "model": query.model,
    }
    row.update(query.extra)
    return row


_SYNTHETIC_KEYS = {"query_id", "doc_id", "text", "log_probs", "prompt", "model"}


def _log_probs(obj: dict, path: Path, lineno: int, hint: str) -> tuple[float, ...]:
    log_probs = obj.get("log_probs") or []
    if not isinstance(log_probs, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in log_probs):
        raise InputError(path, lineno, "log_probs must be a list of numbers", hint)
    return tuple(finite(x, f"log_probs[{i}]", path, lineno, hint) for i, x in enumerate(log_probs))


def synthetic_from_row(obj: dict, path: Path, lineno: int) -> SyntheticQuery:
    return SyntheticQuery(
        query_id=_as_id(obj["query_id"], path, lineno, "query_id"),
        doc_id=_as_id(obj["doc_id"], path, lineno, "doc_id"),
        text=_as_text(obj["text"], path, lineno, "text"),
        log_probs=_log_probs(obj, path, lineno, "regenerate the file with 'inpars generate'"),
        prompt=_as_text(obj.get("prompt"), path, lineno, "prompt", optional=True),
        model=_as_text(obj.get("model"), path, lineno, "model", optional=True),
        extra={k: v for k, v in obj.items() if k not in _SYNTHETIC_KEYS},
    )


def read_synthetic(path: str | os.PathLike, allow_empty: bool = False) -> list[SyntheticQuery]:
    """Synthetic queries; an empty file is an error unless ``allow_empty`` (a shard, or an interrupted run's rows)."""
    path = Path(path)
    queries: list[SyntheticQuery] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path, required=("query_id", "doc_id", "text")):
        query = synthetic_from_row(obj, path, lineno)
        if query.query_id in first_line:
            raise InputError(
                path, lineno, f"duplicate query_id {show(query.query_id)} (first on line {first_line[query.query_id]})",
                "query ids must be unique",
            )
        first_line[query.query_id] = lineno
        queries.append(query)
    if not allow_empty:
        _require_rows(
            path, len(queries), "synthetic queries", "generate some with 'inpars generate' (or check that the filter kept any)"
        )
    return queries


def write_synthetic(path: str | os.PathLike, queries: Iterable[SyntheticQuery]) -> int:
    return write_jsonl(path, (synthetic_to_row(q) for q in queries))


# ---------------------------------------------------------------------------------------------- training pairs


def write_training(path: str | os.PathLike, examples: Iterable[TrainingExample]) -> int:
    return write_jsonl(
        path,
        ({"query_id": e.query_id, "query": e.query, "doc_id": e.doc_id, "doc": e.doc, "label": e.label} for e in examples),
    )


def read_training(path: str | os.PathLike) -> list[TrainingExample]:
    path = Path(path)
    examples = []
    for lineno, obj in iter_jsonl(path, required=("query", "doc", "label")):
        label = obj["label"]
        if label not in (0, 1, True, False):
            raise InputError(path, lineno, f"label {label!r} is not 0 or 1", "labels are 1 (relevant) or 0 (not)")
        examples.append(
            TrainingExample(
                query_id=str(obj.get("query_id", "")),
                query=_as_text(obj["query"], path, lineno, "query"),
                doc_id=str(obj.get("doc_id", "")),
                doc=_as_text(obj["doc"], path, lineno, "doc"),
                label=int(label),
            )
        )
    _require_rows(path, len(examples), "training examples", "write them with 'inpars negatives'")
    return examples


# ---------------------------------------------------------------------------------------------- few-shot query ids


def read_fewshot_query_ids(path: str | os.PathLike) -> list[str]:
    """The query ids used as few-shot examples (``fewshot_query_ids.json``), which evaluation leaves out."""
    path = Path(path)
    data = read_json(path)
    ids = data.get("query_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InputError(
            path, None, "expected an object with 'query_ids', a list of strings", "regenerate the file with 'inpars generate'"
        )
    return ids


# ---------------------------------------------------------------------------------------------- append-only caches


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Append rows to a cache file and flush them to disk, so that an interruption loses nothing written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        handle.flush()
        os.fsync(handle.fileno())


def read_appended_jsonl(path: str | os.PathLike) -> list[dict]:
    """Rows of a file written by :func:`append_jsonl`; a torn last line (killed mid-write) is cut off."""
    path = Path(path)
    if not path.is_file():
        return []
    drop_torn_tail(path)
    return [obj for _, obj in iter_jsonl(path)]


def drop_torn_tail(path: str | os.PathLike) -> None:
    """Cut a last line that has no newline: the write of a process killed mid-line."""
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


# ---------------------------------------------------------------------------------------------- figures


def write_png(path: str | os.PathLike, figure: Any) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")


# ---------------------------------------------------------------------------------------------- released data


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in blocks."""
    import hashlib

    path = Path(path)
    _require_file(path, "file")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_sha256(path: str | os.PathLike) -> str:
    """:func:`file_sha256`, remembered in the cache folder by the file's path, size, modification time and inode, so a
    collection of millions of documents is hashed once, not on every run; any change to the file hashes it again."""
    import hashlib

    from inpars.models import cache_dir

    path = Path(path).resolve()
    _require_file(path, "file")
    stat = path.stat()
    key = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
    record = cache_dir() / "hashes" / f"{hashlib.sha256(str(path).encode()).hexdigest()[:32]}.json"
    try:
        cached = json.loads(record.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and cached.get("key") == key and isinstance(cached.get("sha256"), str):
            return cached["sha256"]
    except (OSError, ValueError):
        pass  # no record, or a torn one: hash again
    digest = file_sha256(path)
    if path.stat().st_mtime_ns == stat.st_mtime_ns:  # not changed while it was read
        try:
            write_json(record, {"key": key, "sha256": digest})
        except (OSError, InparsError):
            pass  # a read-only cache only costs the next run another read
    return digest


def tree_sha256(path: str | os.PathLike) -> str:
    """A file's :func:`cached_sha256`; for a folder, the sha256 of its files' relative paths and hashes (hidden lock
    files left out)."""
    import hashlib

    path = Path(path)
    if not path.is_dir():
        return cached_sha256(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.endswith(".lock")):
        digest.update(f"{item.relative_to(path).as_posix()}\0{cached_sha256(item)}\n".encode())
    return digest.hexdigest()


def read_released_synthetic(path: str | os.PathLike, model: str = "EleutherAI/gpt-j-6b") -> list[SyntheticQuery]:
    """The InPars papers' released synthetic queries (JSONL rows with ``doc_id``, ``question``, ``log_probs``).

    Each row becomes a synthetic query whose id is its line number, so two queries for one document stay apart.
    """
    path = Path(path)
    queries = []
    for lineno, obj in iter_jsonl(path, required=("doc_id", "question")):
        log_probs = _log_probs(obj, path, lineno, "is this a released InPars synthetic-queries file?")
        doc_id = _as_id(obj["doc_id"], path, lineno, "doc_id")
        text = " ".join(_as_text(obj["question"], path, lineno, "question").split())
        queries.append(SyntheticQuery(query_id=f"released-{lineno}", doc_id=doc_id, text=text, log_probs=log_probs, model=model))
    _require_rows(path, len(queries), "synthetic queries", "is it a released InPars synthetic-queries file?")
    return queries


def download(
    url: str,
    target: str | os.PathLike,
    what: str,
    instead: str = "",
    check: Callable[[bytes], object] | None = None,
    not_found: str = "",
    timeout: float = 60.0,
) -> dict[str, str]:
    """Download ``url`` into ``target`` atomically; ``check``, when given, sees the bytes before they are kept (a file
    pinned by its hash), else they are streamed to disk. Returns the response headers.

    Every failure is one line: an HTTP error says ``not_found`` for a 404; offline, it says where to save the file by
    hand, or ``instead`` what to do without it.
    """
    import urllib.error
    import urllib.request

    from inpars.errors import InparsError

    target = Path(target)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_write(target, "wb") as handle:
            headers = {str(k): str(v) for k, v in response.headers.items()}
            if check is None:
                shutil.copyfileobj(response, handle, length=1 << 20)
            else:
                data = response.read()
                check(data)
                handle.write(data)
    except urllib.error.HTTPError as exc:
        hint = not_found if exc.code == 404 and not_found else f"retry later, or save the file by hand as {target}"
        raise InparsError(f"{url}: HTTP {exc.code} ({exc.reason}); {hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InparsError(
            f"{what} could not be downloaded from {url} ({getattr(exc, 'reason', exc)}); it needs a network once. "
            f"Offline, download it elsewhere and save it as {target}" + (f", or {instead}" if instead else "")
        ) from None
    return headers
