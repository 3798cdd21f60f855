"""The ``inpars`` command line: one command per stage, plus ``run``, ``demo`` and ``reproduce``.

Each command builds a config and calls the library; failures print one line and exit non-zero.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from inpars import __version__, io, threads
from inpars.config import NEGATIVE_STRATEGIES, TRAIN_PRESETS
from inpars.errors import InparsError, InputError
from inpars.evaluate import format_stats
from inpars.filter.lm_score import SCORES
from inpars.generate.base import generators
from inpars.pipeline import SHARDED, STAGES
from inpars.rerank.base import rerankers
from inpars.retrieve.base import retrievers

app = typer.Typer(
    name="inpars", help="Synthetic training data for neural IR: generate, filter, mine, train, rerank, evaluate.",
    no_args_is_help=True, add_completion=False, rich_markup_mode=None,
)


def _one_of(names: Iterable[str]) -> str:
    """Choices as help text lists them (``a, b or c``), taken from a registry or the library's own list, never retyped."""
    names = list(names)
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"inpars {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """The options of ``inpars`` itself, given before a command."""


# Shared options, declared once.
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        "-d",
        help=(
            "faq-construction, beir/<name>[/<split>], irds:<ir_datasets id>, or a path: a BEIR folder (queries and qrels "
            "optional), a folder of .txt/.md files, or a .jsonl, .csv or .tsv file of documents (see 'inpars datasets'); "
            "default: the recipe's dataset, else faq-construction."
        ),
    ),
]
RecipeOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="A recipe YAML whose section for this stage supplies defaults.")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe key, e.g. --set generate.num_docs=50 (repeatable).")
]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")]
RerankerOpt = Annotated[str | None, typer.Option(help=f"Reranker kind: {_one_of(rerankers.names())}.")]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


# What to do about the operating system's refusals that a user's setup causes (no bug of inpars): by errno name.
OS_ERROR_HINTS = {
    "EACCES": "check the permissions of the path and its folders, or choose another path",
    "EPERM": "check the permissions of the path and its folders, or choose another path",
    "EROFS": "the file system is read-only: choose a path on a writable one",
    "ENOSPC": "the disk is full: free some space, or choose a path on another disk",
    "EDQUOT": "the disk quota is used up: free some space, or choose a path on another disk",
    "EFBIG": "the file is larger than this system allows: free space, raise the limit (ulimit -f) or use another disk",
    "ENOTDIR": "a part of the path is a file where a folder is needed: choose another path",
    "EISDIR": "it is a folder where a file is needed: choose another path",
    "ENOENT": "check the path",
    "EEXIST": "something is already there: remove it or choose another path",
    "ENAMETOOLONG": "choose a shorter path",
    "EXDEV": "the two paths lie on different file systems: keep them on one",
}
"""An OSError without a file name is explained only for these, which can only come from the disk; any other is a bug
and keeps its traceback."""
DISK_ERRNOS = ("ENOSPC", "EDQUOT", "EFBIG", "EROFS")


def os_error_line(exc: OSError) -> str | None:
    """One line for an OSError the user's files or disk caused: the path, the reason and what to do; None for any other
    (a bug, whose traceback must not be hidden)."""
    code = errno.errorcode.get(exc.errno or 0, "")
    if exc.filename is None and code not in DISK_ERRNOS:
        return None
    reason = exc.strerror or str(exc)
    hint = OS_ERROR_HINTS.get(code, "check the path")
    if exc.filename is None:
        return f"cannot write the output: {reason} ({code}); {hint}"
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else f"{exc.filename}"
    return f"{where}: {reason} ({code or type(exc).__name__}); {hint}"


def command(name: str | None = None, **kwargs):
    """Register a command whose InparsError, or OSError from the user's files or disk, becomes one red line and exit
    code 2 (with --verbose the OSError's traceback is logged too)."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kw):
            try:
                return func(*args, **kw)
            except InparsError as exc:
                _fail(str(exc))
            except OSError as exc:
                line = os_error_line(exc)
                if line is None:
                    raise
                logging.getLogger(__name__).debug("where the error below was raised", exc_info=exc)
                _fail(line)
            except KeyboardInterrupt:
                typer.secho("interrupted; rerun the same command to resume", err=True)
                raise typer.Exit(130) from None

        return app.command(name, **kwargs)(wrapper)

    return decorate


def _setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
        handlers=[RichHandler(show_path=False, show_time=False)], force=True,
    )
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "transformers", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _flags(section: str, **values) -> list[str]:
    """Turn command-line flags that were given into ``section.key=value`` overrides."""
    out = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        out.append(f"{section}.{key}={value}")
    return out


def _config(recipe: Path | None, overrides: list[str] | None, flags: list[str], dataset: str | None = None):
    from inpars.config import load_pipeline_config
    from inpars.datasets import check_dataset_name

    if dataset is not None:  # an empty --dataset is refused, not taken for the recipe's dataset
        check_dataset_name(dataset)
    return load_pipeline_config(recipe, list(overrides or []) + flags + ([f"dataset={dataset}"] if dataset else []))


def _stage(
    name: str, cfg, folder: Path, *, dataset: bool = True, shard: int = 0, num_shards: int = 1, **fields
) -> dict:
    """Run the library's stage ``name`` (the one ``inpars run`` runs) on the user's files: ``inputs`` and ``outputs``
    in ``fields`` name them; the recipe's dataset is loaded (with its text repair) unless ``dataset`` is False. A stage
    that runs in shards runs ``shard`` of ``num_shards``."""
    from inpars.pipeline import stage_objects
    from inpars.stage import Context, load_context

    with contextlib.ExitStack() as held:
        # Each file the command writes is held until it is written: a second command writing it is refused at once.
        for path in dict(fields.get("outputs") or {}).values():
            held.enter_context(io.exclusive(path, "this output"))
        ctx = load_context(cfg, **fields) if dataset else Context(dataset=None, config=cfg, **fields)
        stage = stage_objects()[name]
        if stage.run_shard is not None:
            return stage.run_shard(ctx, cfg, folder, shard, num_shards)
        return stage.run(ctx, cfg, folder)


# ---------------------------------------------------------------------------------------------- datasets


@command("datasets")
def datasets_cmd(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Collections to describe instead of the list (a path, irds:<id>, ...); a path is read to count it."),
    ] = None,
    counts: Annotated[bool, typer.Option(help="Show document, query and judgement counts.")] = True,
    verbose: VerboseOpt = False,
) -> None:
    """List the datasets inpars can load, or describe the ones named: their counts and which parts they have (a
    collection of documents alone can generate, filter, mine negatives and train; testing needs queries and qrels)."""
    from rich.console import Console
    from rich.table import Column, Table

    from inpars.datasets import PARTS, dataset_counts, dataset_info, describe_parts, listing

    _setup_logging(verbose)

    infos = [dataset_info(name) for name in names] if names else listing()
    rows = [(info, dataset_counts(info.name) if counts else {}) for info in infos]
    # Names and counts stay whole on a narrow terminal (a name is what a user copies); the source wraps instead.
    headers = ("dataset", *PARTS)
    cells = [[info.name, *(f"{c[part]:,}" if c.get(part) is not None else "?" for part in PARTS)] for info, c in rows]
    widths = [max(len(row[i]) for row in [list(headers), *cells]) for i in range(len(headers))]
    table = Table(
        *(
            Column(header, no_wrap=True, min_width=width, justify="left" if header == "dataset" else "right")
            for header, width in zip(headers, widths, strict=True)
        ),
        "source",
    )
    for row, (info, _) in zip(cells, rows, strict=True):
        table.add_row(*row, info.source)
    Console().print(table)
    for info, c in rows:
        if c and not all(c.get(part) for part in PARTS):
            typer.echo(
                f"{info.name}: {describe_parts(c)}; generate, filter, negatives and train need only documents; retrieve "
                "and rerank need queries; evaluate needs qrels"
            )
    if not names:
        typer.echo(
            "A path works as --dataset PATH: a BEIR folder (corpus.jsonl; queries.jsonl and qrels/<split>.tsv optional), a "
            "folder of .txt/.md files, or a .jsonl, .csv or .tsv file of documents (id, title, text)."
        )
        typer.echo(
            "irds:<id> loads any ir_datasets collection, e.g. irds:msmarco-passage/trec-dl-2020/judged (downloaded on "
            "first use; 'inpars datasets irds:<id>' counts it from ir_datasets' metadata)."
        )


@command("export")
def export_cmd(
    dataset: Annotated[str, typer.Argument(help="faq-construction, beir/<name>[/<split>], or a local BEIR folder.")],
    folder: Annotated[Path, typer.Argument(help="The BEIR folder to write (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).")],
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split", help="A split and its share of the judged queries, e.g. --split train=0.5 (repeatable; default test=1)."
        ),
    ] = None,
    max_docs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Keep at most this many documents (a miniature): judged queries are kept while their relevant documents fit.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the query order.")] = 0,
    force: Annotated[
        bool, typer.Option(help="Replace FOLDER if it holds anything (the new folder is written first, then swapped in).")
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write a dataset as a BEIR folder, its judged queries divided into splits; with --max-docs, a miniature of it."""
    from inpars.datasets import check_export_target, check_splits, export_beir, load_dataset

    _setup_logging(verbose)

    shares: dict[str, float] = {}
    for item in split or ["test=1"]:
        name, equals, share = item.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = None
        if not equals or value is None:
            raise InparsError(f"--split {item}: write NAME=SHARE, e.g. --split train=0.5")
        if name.strip() in shares:
            raise InparsError(f"--split {item}: the split '{name.strip()}' is given twice; give each split once")
        shares[name.strip()] = value
    check_splits(shares)
    check_export_target(folder, force)  # before loading, which may download the dataset
    counts = export_beir(load_dataset(dataset), folder, shares, max_docs=max_docs, seed=seed, force=force)
    typer.echo(f"{folder}: " + ", ".join(f"{count} {what}" for what, count in counts.items()))


# ---------------------------------------------------------------------------------------------- stages


@command("generate")
def generate_cmd(
    dataset: DatasetOpt = None,
    output: OutputOpt = Path("queries.jsonl"),
    model: Annotated[
        str | None,
        typer.Option(
            help=(
                "embedded:smollm2-135m, embedded:gemma3-270m, a Hugging Face id, a local folder, a .gguf file (llamacpp) or "
                "a served model name (openai)."
            )
        ),
    ] = None,
    backend: Annotated[str | None, typer.Option(help=f"Generator backend: {_one_of(generators.names())}.")] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            help="A built-in prompt (inpars, inpars-gbq, promptagator-<dataset>), published:<name>, or a YAML template file."
        ),
    ] = None,
    num_docs: Annotated[int | None, typer.Option(help="Documents sampled with the seed (default: all).")] = None,
    queries_per_doc: Annotated[int | None, typer.Option(help="Queries per document (needs --temperature > 0 above 1).")] = None,
    max_new_tokens: Annotated[int | None, typer.Option()] = None,
    max_doc_tokens: Annotated[int | None, typer.Option(help="Documents are truncated to this many tokens.")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 decodes greedily.")] = None,
    top_p: Annotated[float | None, typer.Option()] = None,
    chat: Annotated[
        bool | None,
        typer.Option("--chat/--no-chat", help="Send each prompt through the model's chat template (instruction-tuned models)."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:1, ...")] = None,
    num_examples: Annotated[int | None, typer.Option(help="Few-shot examples from the dataset (promptagator-* prompts).")] = None,
    context_length: Annotated[int | None, typer.Option(help="The model's context in tokens; longer prompts are skipped.")] = None,
    api_base: Annotated[str | None, typer.Option(help="openai backend: the server's URL, e.g. http://localhost:8000/v1.")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="openai backend: the environment variable holding the API key.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="openai backend: requests in flight at once.")] = None,
    shard: Annotated[int, typer.Option(help="Generate only this shard of the sampled documents (0-based).")] = 0,
    num_shards: Annotated[int, typer.Option(help="Split the sampled documents into this many shards (by document id hash).")] = 1,
    restart: Annotated[bool, typer.Option(help="Discard the rows of an interrupted run instead of resuming it.")] = False,
    config: RecipeOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write queries for documents with a language model (rerun the same command to resume)."""
    from inpars import io

    _setup_logging(verbose)
    io.check_output(output)
    cfg = _config(
        config,
        set_,
        _flags(
            "generate", model=model, backend=backend, prompt=prompt, num_docs=num_docs, queries_per_doc=queries_per_doc,
            max_new_tokens=max_new_tokens, max_doc_tokens=max_doc_tokens, temperature=temperature, top_p=top_p,
            chat=chat, batch_size=batch_size, seed=seed, device=device, num_examples=num_examples, context_length=context_length,
        )
        + _flags("generate.openai", api_base=api_base, api_key_env=api_key_env, concurrency=concurrency),
        dataset,
    )
    summary = _stage(
        "generate", cfg, output.parent, shard=shard, num_shards=num_shards, outputs={"queries.jsonl": output}, restart=restart
    )
    typer.echo(
        f"{summary['generated']} queries for {summary['documents']} documents -> {output} ({summary['empty']} empty, "
        f"{summary['unfinished']} cut at max_new_tokens, "
        f"{summary['skipped_too_long']} skipped as too long, {summary['resumed']} resumed, {summary['seconds']:.1f}s)"
    )


@command("merge")
def merge_cmd(
    shards: Annotated[list[Path], typer.Argument(help="The outputs of every shard of one 'inpars generate --num-shards N' run.")],
    output: OutputOpt = Path("queries.jsonl"),
    verbose: VerboseOpt = False,
) -> None:
    """Join shard outputs into one file, checking that no shard is missing and no query repeats."""
    from inpars import io
    from inpars.generate import merge_shards

    _setup_logging(verbose)
    io.check_output(output)
    summary = merge_shards(shards, output)
    typer.echo(f"{summary.generated} queries for {summary.documents} documents from {len(shards)} shards -> {output}")


@command("filter")
def filter_cmd(
    queries: Annotated[Path, typer.Argument(help="Synthetic queries (JSONL from 'inpars generate').")],
    output: OutputOpt = Path("kept.jsonl"),
    method: Annotated[str | None, typer.Option(help=f"Shorthand for one LM-score step: {_one_of(SCORES)}.")] = None,
    top_k: Annotated[int | None, typer.Option(help="With the shorthand: keep the best k (default: all non-empty).")] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", "-d", help="The queries' collection, for filters that read documents (consistency, reranker, copied)."
        ),
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Where dropped.jsonl, summary.json and scores.png go (default: <output>-report/).")
    ] = None,
    config: RecipeOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Keep the best synthetic queries: the recipe's filter steps in order (LM score, reranker, consistency, hygiene)."""
    from inpars import io
    from inpars.filter import needs_docs

    _setup_logging(verbose)
    io.check_output(output)
    cfg = _config(config, set_, _flags("filter", method=method, top_k=top_k), dataset)
    if dataset is None and config is None and needs_docs(cfg.filter):
        raise InparsError(
            "a filter step reads the documents (consistency, reranker or copied); give the collection with --dataset"
        )
    report_dir = io.check_output(report_dir or output.with_name(f"{output.stem}-report"), folder=True)
    summary = _stage(
        "filter", cfg, report_dir, dataset=needs_docs(cfg.filter),
        inputs={"generate/queries.jsonl": queries}, outputs={"kept.jsonl": output},
    )
    dropped = ", ".join(f"{step}: {n}" for step, n in summary["dropped"].items() if n) or "none"
    typer.echo(f"kept {summary['kept']} of {summary['input']} -> {output} (dropped by {dropped}; report in {report_dir})")


@command("negatives")
def negatives_cmd(
    queries: Annotated[Path, typer.Argument(help="Synthetic queries (JSONL).")],
    dataset: DatasetOpt = None,
    output: OutputOpt = Path("train.jsonl"),
    depth: Annotated[int | None, typer.Option(help="Draw from the BM25 top-N.")] = None,
    num_negatives: Annotated[int | None, typer.Option()] = None,
    strategy: Annotated[str | None, typer.Option(help=f"{_one_of(NEGATIVE_STRATEGIES)}.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    dense_negatives: Annotated[
        int | None, typer.Option(help="Further negatives per query from a bi-encoder's top-N (negatives.dense_model).")
    ] = None,
    config: RecipeOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Mine BM25 (and optionally dense) negatives and write training examples (query, document, label)."""
    from inpars import io

    _setup_logging(verbose)
    io.check_output(output)
    cfg = _config(
        config,
        set_,
        _flags(
            "negatives", depth=depth, num_negatives=num_negatives, strategy=strategy, seed=seed, dense_negatives=dense_negatives
        ),
        dataset,
    )
    # With select.validation > 0 the held-out queries go beside the output, as the select stage of 'inpars run' reads them.
    held = io.check_output(output.with_name(f"{output.stem}-validation.jsonl"))
    summary = _stage(
        "negatives", cfg, output.parent, inputs={"filter/kept.jsonl": queries},
        outputs={"train.jsonl": output, "validation.jsonl": held},
    )
    held_out = f"; {summary['held_out']} queries held out for select" if "held_out" in summary else ""
    typer.echo(f"{summary['examples']} training examples -> {output}{held_out}")


@command("train")
def train_cmd(
    examples: Annotated[Path, typer.Argument(help="Training examples (JSONL from 'inpars negatives').")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the trained model.")] = Path("reranker"),
    reranker: RerankerOpt = None,
    model: Annotated[
        str | None, typer.Option(help="Starting checkpoint: embedded:minilm-l6, a Hugging Face id or a folder.")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help=f"A named training recipe that fills the fields left unset: {_one_of(TRAIN_PRESETS)}.")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimiser steps (replaces epochs).")] = None,
    epochs: Annotated[float | None, typer.Option()] = None,
    learning_rate: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    config: RecipeOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fine-tune a reranker on synthetic training examples (on N GPUs: torchrun --nproc_per_node N -m inpars.cli train ...)."""
    from inpars import io
    from inpars.rerank.training import leave_process_group

    _setup_logging(verbose)
    io.check_output(output, folder=True)
    cfg = _config(
        config,
        set_,
        _flags(
            "train", reranker=reranker, model=model, preset=preset, max_steps=max_steps, epochs=epochs,
            learning_rate=learning_rate, batch_size=batch_size, seed=seed,
        ),
    )
    summary = _stage("train", cfg, output, dataset=False, inputs={"negatives/train.jsonl": examples})
    leave_process_group()
    typer.echo(f"model -> {summary['model']}")


@command("retrieve")
def retrieve_cmd(
    dataset: DatasetOpt = None,
    output: OutputOpt = Path("bm25.trec"),
    backend: Annotated[
        str | None,
        typer.Option(help=f"Retriever backend: {_one_of(retrievers.names())} (pyserini is Lucene's BM25 and needs Java)."),
    ] = None,
    top_k: Annotated[int | None, typer.Option()] = None,
    config: RecipeOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Retrieve the dataset's test queries with the first stage (BM25 unless --backend says otherwise) and write a TREC run;
    a first stage that is not BM25 also writes BM25's run (the baseline) beside it, as <output>-bm25.trec."""
    from inpars import io
    from inpars.stage import BM25_BACKENDS

    _setup_logging(verbose)
    io.check_output(output)
    cfg = _config(config, set_, _flags("retrieve", backend=backend, top_k=top_k), dataset)
    bm25 = output.with_name(f"{output.stem}-bm25.trec")
    summary = _stage("retrieve", cfg, output.parent, outputs={"run.trec": output, "bm25.trec": bm25})
    baseline = f" (BM25 baseline -> {bm25})" if cfg.retrieve.backend not in BM25_BACKENDS else ""
    typer.echo(f"{summary['queries']} queries -> {output}{baseline}")


@command("rerank")
def rerank_cmd(
    run: Annotated[Path, typer.Argument(help="First-stage TREC run.")],
    model: Annotated[
        str | None, typer.Option(help="A trained reranker folder or a Hugging Face id (default: the recipe's rerank.model).")
    ] = None,
    dataset: DatasetOpt = None,
    output: OutputOpt = Path("reranked.trec"),
    reranker: RerankerOpt = None,
    top_k: Annotated[int | None, typer.Option(help="Rerank this many per query.")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    shard: Annotated[
        int,
        typer.Option(
            help="Rerank only this shard (0-based) of the run's queries; the shards' outputs, concatenated, are the whole run's."
        ),
    ] = 0,
    num_shards: Annotated[
        int, typer.Option(help="Split the run's queries into this many shards (by a hash of the query id).")
    ] = 1,
    config: RecipeOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Rerank the top-k of a run; deeper documents keep their first-stage order."""
    from inpars import io
    from inpars.models import check as check_model

    _setup_logging(verbose)
    io.check_output(output)
    cfg = _config(
        config, set_, _flags("rerank", top_k=top_k, batch_size=batch_size, reranker=reranker, model=model), dataset
    )
    if cfg.rerank.model is None:
        raise InparsError("no reranker to rerank with: give --model (a trained reranker folder or a Hugging Face id)")
    check_model(cfg.rerank.model)
    # The stage checks the run against the dataset before the model loads: a bad run costs no model time.
    summary = _stage(
        "rerank", cfg, output.parent, shard=shard, num_shards=num_shards, stages=frozenset({"retrieve"}),
        inputs={"retrieve/run.trec": run}, outputs={"run.trec": output}, model=cfg.rerank.model,
    )
    typer.echo(f"{summary['queries']} queries -> {output}")


@command("evaluate")
def evaluate_cmd(
    runs: Annotated[list[Path], typer.Argument(help="One or more TREC runs of the same queries.")],
    dataset: DatasetOpt = None,
    qrels: Annotated[Path | None, typer.Option(help="A qrels file (BEIR .tsv or TREC) instead of the dataset's.")] = None,
    measure: Annotated[
        list[str] | None, typer.Option("--measure", "-m", help="ir_measures names (repeatable); default nDCG@10, RR@10, R@100.")
    ] = None,
    exclude_fewshot: Annotated[
        Path | None, typer.Option(help="The folder of an 'inpars generate' output: its few-shot example queries are left out.")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="With two or more runs: the run the others are tested against (default: the first).")
    ] = None,
    resamples: Annotated[int, typer.Option(help="Resamples of the randomization test and of the bootstrap interval.")] = 10000,
    confidence: Annotated[float, typer.Option(help="Level of the bootstrap interval of each run's mean.")] = 0.95,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the table as JSON (mean, interval, p-values per run and measure)."),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Score runs with ir_measures (queries missing from a run count as zero). With two or more runs: a bootstrap interval
    of each mean, and per measure a paired t-test and a randomization test against the baseline, Holm-corrected."""
    from rich.console import Console
    from rich.table import Table

    from inpars import io
    from inpars.config import EvaluateConfig
    from inpars.datasets import load_dataset
    from inpars.evaluate import DEFAULT_MEASURES, compare, per_query

    _setup_logging(verbose)
    measures = measure or list(DEFAULT_MEASURES)
    try:
        settings = EvaluateConfig(measures=tuple(measures), resamples=resamples, confidence=confidence)
    except InparsError as exc:
        raise InparsError(f"--{getattr(exc, 'key', 'option')}: {exc}") from None
    if output is not None:
        io.check_output(output)
    if baseline is not None and baseline not in runs:
        raise InparsError(f"--baseline {baseline} is not one of the runs given; add it to the runs or name one of them")
    if qrels:
        judgements = io.read_qrels(qrels)
    else:
        from inpars.datasets import require_part

        data = load_dataset("faq-construction" if dataset is None else dataset)
        require_part(data, "qrels", "evaluate")
        judgements = data.qrels
    if exclude_fewshot:
        from inpars.generate.fewshot import without_fewshot_queries

        judgements = without_fewshot_queries(judgements, exclude_fewshot)
    # Every run is read and checked before any is scored, so that a bad file stops the command with no table.
    loaded = {path: io.read_trec_run(path) for path in runs}
    for path, run in loaded.items():
        if not set(run) & set(judgements):
            raise InputError(
                path, None, f"none of its {len(run)} queries has judgements (e.g. {next(iter(run))!r})",
                "evaluate a run against its own dataset's qrels",
            )
    if len(set(runs)) < len(runs):
        raise InparsError("a run is given twice; give each run once")
    names = {path: str(path) for path in runs}
    scores = {names[path]: [per_query(run, judgements, measures)] for path, run in loaded.items()}
    if len(runs) == 1:
        table = Table("run", *measures)
        (name,) = scores
        table.add_row(name, *(f"{sum(v.values()) / len(v):.4f}" for v in scores[name][0].values()))
        Console().print(table)
        if output is not None:
            io.write_json(output, {name: {m: sum(v.values()) / len(v) for m, v in scores[name][0].items()}})
        return
    reference = names[baseline or runs[0]]
    stats = compare(scores, reference, settings.resamples, settings.confidence, settings.seed)
    level = f"{settings.confidence:.0%}"
    table = Table("run", *(column for m in measures for column in (f"{m} [{level}]", f"{m} Δ", f"{m} p (t / rand., Holm)")),
                  title=f"{len(next(iter(scores[reference][0].values())))} queries; tests against {reference}")
    for name, by_measure in stats.items():
        cells = []
        for m in measures:
            s = by_measure[m]
            cells.append(f"{s.mean:.4f} [{s.ci_low:.4f}, {s.ci_high:.4f}]")
            cells.append("baseline" if s.diff is None else f"{s.diff:+.4f}")
            cells.append("" if s.p_t_holm is None else f"{s.p_t_holm:.3g} / {s.p_randomization_holm:.3g}")
        table.add_row(name, *cells)
    Console().print(table)
    if output is not None:
        io.write_json(
            output,
            {
                "baseline": reference,
                "confidence": settings.confidence,
                "resamples": settings.resamples,
                "runs": {name: {m: s.as_dict() for m, s in by_measure.items()} for name, by_measure in stats.items()},
            },
        )


# ---------------------------------------------------------------------------------------------- recipes


@command("search")
def search_cmd(
    target: Annotated[
        str, typer.Argument(metavar="RUN_OR_MODEL", help="A run folder (runs/<name>), or a model folder with --dataset.")
    ],
    question: Annotated[str | None, typer.Argument(help="The question to search for.")] = None,
    queries: Annotated[
        Path | None, typer.Option(help="A file of questions instead: one a line, or BEIR queries (.jsonl, _id and text).")
    ] = None,
    top_k: Annotated[int, typer.Option(help="Hits shown per question.")] = 10,
    dataset: DatasetOpt = None,
    reranker: RerankerOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Search a collection with a run's final system (its first stage, then the reranker it trained, as its select stage
    chose), or with a model folder over BM25's candidates (--dataset, and --reranker unless inpars trained it)."""
    import json
    import sys

    from rich.console import Console
    from rich.logging import RichHandler

    from inpars.search import load_queries, search

    _setup_logging(verbose)
    # stdout holds the hits alone (JSON, or lines to pipe on): the log goes to stderr.
    logging.getLogger().handlers = [RichHandler(console=Console(stderr=True), show_path=False, show_time=False)]
    result = search(target, load_queries(question, queries), top_k=top_k, dataset=dataset, reranker=reranker)
    if json_:
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        _print_hits(result, table=sys.stdout.isatty())


def _print_hits(result, table: bool) -> None:
    """Each question's hits: a table on a terminal, else tab-separated lines (rank, doc_id, score, snippet) under it."""
    from rich.console import Console
    from rich.table import Table

    for qid, query in result.queries.items():
        hits = result.hits[qid]
        if not table:
            typer.echo(f"# {qid}\t{query.text}")
            for hit in hits:
                typer.echo(f"{hit.rank}\t{hit.doc_id}\t{hit.score:.4f}\t{hit.snippet}")
            continue
        shown = Table("#", "doc_id", "score", "document", title=query.text, title_justify="left")
        for hit in hits:
            text = f"{hit.title}: {hit.snippet}" if hit.title else hit.snippet
            shown.add_row(str(hit.rank), hit.doc_id, f"{hit.score:.4f}", text)
        Console().print(shown)


def _print_result(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not result.metrics:
        _print_stages(console, result)
        written = result.run_dir / ("rerank" if any(s.name.startswith("rerank") for s in result.stages) else "retrieve")
        console.print(f"nothing scored (the queries have no judgements); run -> {written / 'run.trec'}")
        return
    measures = list(next(iter(result.metrics.values())))
    seeds = f"seeds {', '.join(map(str, result.seeds))}; " if len(result.seeds) > 1 else ""
    if result.judged_on == "select":
        scored = f"{io.read_json(result.run_dir / 'metrics.json')['queries']} held-out synthetic queries"
    else:
        scored = f"{result.counts['queries']} test queries"
    table = Table(
        "system",
        *measures,
        title=f"{result.run_dir}  ({scored}, {result.counts['docs']} documents)",
        caption=(
            f"{seeds}mean{' ± std over seeds' if seeds else ''} [95% bootstrap interval] p: randomization test against the "
            "first stage, Holm-corrected"
        ),
    )
    for system, by_measure in result.statistics.items():
        table.add_row(system, *(format_stats(by_measure[m]) for m in measures))
    console.print(table)
    _print_stages(console, result)
    console.print(f"metrics -> {result.run_dir / 'metrics.json'}")


def _print_stages(console, result) -> None:
    from rich.table import Table

    stages = Table("stage", "seconds", "summary", title="stages")
    for stage in result.stages:
        summary = (
            ", ".join(f"{k}={v}" for k, v in stage.summary.items() if not isinstance(v, dict))
            if not stage.name.startswith("evaluate")
            else ""
        )
        stages.add_row(stage.name + (" (cached)" if stage.skipped else ""), f"{stage.seconds:.1f}", summary)
    console.print(stages)


SeedsOpt = Annotated[
    list[str] | None,
    typer.Option("--seeds", help="Run the recipe once per seed (0,1,2 or repeated) and report mean ± std over them."),
]


def _seeds(values: list[str] | None) -> list[int] | None:
    if not values:
        return None
    try:
        return [int(item) for value in values for item in value.split(",") if item.strip()]
    except ValueError:
        raise InparsError(f"--seeds {' '.join(values)}: give whole numbers, e.g. --seeds 0,1,2") from None


def _run(config, force: bool, seeds: list[int] | None) -> None:
    from inpars.pipeline import run_pipeline, run_seeds

    _print_result(run_seeds(config, seeds, force=force) if seeds else run_pipeline(config, force=force))


@command("run")
def run_cmd(
    recipe: Annotated[Path, typer.Argument(help="A recipe YAML (see inpars/recipes/).")],
    set_: SetOpt = None,
    seeds: SeedsOpt = None,
    force: Annotated[bool, typer.Option(help="Recompute every stage even if its output is up to date.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run a whole recipe; stages whose output exists for the same config are skipped."""
    from inpars.config import load_pipeline_config

    chosen = _seeds(seeds)
    _setup_logging(verbose)
    _run(load_pipeline_config(recipe, list(set_ or [])), force, chosen)


@command("demo")
def demo_cmd(
    output_dir: Annotated[Path | None, typer.Option(help="Parent folder of the run folder (default: runs/).")] = None,
    set_: SetOpt = None,
    seeds: SeedsOpt = None,
    force: Annotated[bool, typer.Option(help="Recompute every stage.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the bundled offline recipe on faq-construction with the embedded models."""
    from inpars.config import load_pipeline_config

    chosen = _seeds(seeds)
    _setup_logging(verbose)
    text = resources.files("inpars.recipes").joinpath("demo.yaml").read_text(encoding="utf-8")
    overrides = ([f"output_dir={output_dir}"] if output_dir else []) + list(set_ or [])
    _run(load_pipeline_config(text=text, overrides=overrides), force, chosen)


@command("reproduce")
def reproduce_cmd(
    datasets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Datasets of the tables (see --list), e.g. scifact or faq-construction; several with --plan or --slurm."
        ),
    ] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option("--condition", "-C", help="A condition of the tables (repeatable); default: every runnable one."),
    ] = None,
    from_released: Annotated[
        str | None,
        typer.Option(
            help=(
                "Start from what the authors released: 'data' (their synthetic queries) or 'checkpoint' (their fine-tuned "
                "model)."
            )
        ),
    ] = None,
    output_dir: Annotated[
        Path, typer.Option(help="Run folders go to OUTPUT_DIR/DATASET/CONDITION, the report to OUTPUT_DIR/DATASET/.")
    ] = Path("runs/reproduce"),
    tables: Annotated[
        Path | None,
        typer.Option(help="The tables folder or file (default: reproduce/ of the source, or $INPARS_REPRODUCE_TABLES)."),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the datasets and their conditions, then exit.")] = False,
    set_: SetOpt = None,
    force: Annotated[bool, typer.Option(help="Recompute every stage.")] = False,
    stage: Annotated[
        str | None,
        typer.Option(
            help=f"Run one stage of one condition (what a cluster job runs): {_one_of(STAGES)}; the stages it reads must be done."
        ),
    ] = None,
    shard: Annotated[
        int | None, typer.Option(help=f"With --stage {_one_of(SHARDED)}: run this shard (0-based) of --num-shards.")
    ] = None,
    num_shards: Annotated[
        int,
        typer.Option(help=f"With --stage {_one_of(SHARDED)}: the number of shards; without --shard, merge the finished shards."),
    ] = 1,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the plan without running anything: steps, commands, downloads, GPU-hour estimates, what is done.",
        ),
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="With --plan: the plan as JSON.")] = False,
    rates: Annotated[
        Path | None,
        typer.Option(
            help=(
                "With --plan: GPU rates measured by 'make gpu-rehearsal' (its JSON) instead of the rates the tables quote; "
                "each estimate names the rate it used."
            )
        ),
    ] = None,
    slurm: Annotated[
        bool,
        typer.Option(
            "--slurm",
            help="Submit the plan as SLURM jobs (sbatch; afterok dependencies); submitting again runs only what is not done.",
        ),
    ] = False,
    slurm_dry_run: Annotated[
        bool, typer.Option("--slurm-dry-run", help="Write the job scripts (OUTPUT_DIR/DATASET/slurm/) without submitting them.")
    ] = False,
    shards: Annotated[int, typer.Option(help="--plan/--slurm: generation runs as an array of this many shards.")] = 1,
    rerank_shards: Annotated[
        int, typer.Option(help="--plan/--slurm: reranking runs as an array of this many shards of the test queries.")
    ] = 1,
    partition: Annotated[str | None, typer.Option(help="--slurm: the partition of every job.")] = None,
    account: Annotated[str | None, typer.Option(help="--slurm: the account every job is charged to.")] = None,
    gpus_per_task: Annotated[
        int | None, typer.Option(help="--slurm: GPUs of each job of a GPU step (generate, model filters, train, rerank).")
    ] = None,
    cpus_per_task: Annotated[int | None, typer.Option(help="--slurm: CPUs of each job.")] = None,
    time: Annotated[str | None, typer.Option(help="--slurm: the time limit of each job (SLURM's format, e.g. 12:00:00).")] = None,
    sbatch: Annotated[
        list[str] | None,
        typer.Option(help="--slurm: a further #SBATCH option for every job, e.g. --sbatch=--qos=high (repeatable)."),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run a paper's condition, compare every cell with the expected score, write a report; exit 1 on any FAIL.

    With --plan, print what a run would do; with --slurm, submit it to a SLURM cluster as jobs.
    """
    from inpars.reproduce import listing, load_tables

    loaded = load_tables(tables)
    if list_:
        typer.echo("\n".join(listing(loaded)))
        return
    if not datasets:
        raise InparsError(f"name a dataset: inpars reproduce DATASET; runnable: {', '.join(loaded.runnable_datasets())}")
    if rates is not None and not plan:
        raise InparsError("--rates changes the GPU-hour estimates of the plan: give it with --plan")
    if plan or slurm or slurm_dry_run:
        from inpars.plan import PlanOptions, build_plan, default_command

        if stage is not None:
            raise InparsError("--stage runs one stage; --plan and --slurm cover every stage: give one or the other")
        options = PlanOptions(
            tuple(condition or ()), from_released, output_dir, tuple(set_ or ()), tables, shards, rerank_shards,
            default_command(), rates,
        )
        _setup_logging(verbose)
        _plan_or_submit(
            build_plan(loaded, datasets, options), json_, slurm or slurm_dry_run, slurm_dry_run, partition, account,
            gpus_per_task, cpus_per_task, time, sbatch,
        )
        return
    if len(datasets) > 1:
        raise InparsError(
            f"one dataset per run ({', '.join(datasets)} given); several go with --plan or --slurm, or run them one after another"
        )
    _setup_logging(verbose)
    _reproduce(loaded, datasets[0], condition, from_released, output_dir, force, set_, stage, shard, num_shards)


def _reproduce(
    loaded, dataset: str, condition, from_released, output_dir: Path, force: bool, set_, stage, shard, num_shards: int
) -> None:
    from rich.console import Console

    from inpars.pipeline import Selection
    from inpars.reproduce import reproduce, result_table, write_report

    if stage is None and (shard is not None or num_shards != 1):
        raise InparsError("--shard and --num-shards go with --stage generate or --stage rerank")
    only = Selection(stage, shard, num_shards) if stage is not None else None
    result = reproduce(loaded, dataset, condition or (), from_released, output_dir, force, set_ or (), only)
    if only is not None:
        what = (
            f"shard {shard} of {num_shards} of " if shard is not None else "the merge of the shards of " if num_shards > 1 else ""
        )
        typer.echo(f"{what}stage {stage} done -> {result.runs[0].run_dir}")
        return
    console = Console()
    console.print(result_table(result))
    console.print(f"report -> {write_report(result, output_dir / dataset)}")
    if not result.ok:
        failed = sum(1 for check in result.checks if not check.ok)
        typer.secho(
            f"FAIL: {failed} of {len(result.checks)} checks failed (a cell outside its tolerance, or a gain not shown)",
            fg=typer.colors.RED, err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"OK: {len(result.checks)} cells within their tolerance")


def _plan_or_submit(
    built, json_: bool, submit_: bool, dry_run: bool, partition, account, gpus_per_task, cpus_per_task, time, sbatch
) -> None:
    import json

    from inpars.plan import render
    from inpars.slurm import SlurmOptions, submit

    if not submit_:
        typer.echo(json.dumps(built.as_dict(), indent=2) if json_ else render(built), nl=not json_)
        return
    options = SlurmOptions(partition, account, gpus_per_task, cpus_per_task, time, None, tuple(sbatch or ()))
    submitted = submit(built, options, dry_run=dry_run)
    for item in submitted:
        state = (
            "done"
            if item.job_id is None and not item.tasks
            else "to submit"
            if item.job_id is None
            else f"queued earlier as job {item.job_id}"
            if item.reused
            else f"job {item.job_id}"
        )
        tasks = f" tasks {','.join(map(str, item.tasks))}" if len(item.tasks) > 1 or (item.tasks and item.tasks != (0,)) else ""
        typer.echo(f"{item.step}: {state}{tasks}  ({item.script})")
    if not any(item.tasks for item in submitted):
        typer.echo("nothing to do: every step is done")


def main() -> None:
    import sys

    from typer.exceptions import TyperException

    # Before any command imports torch: its OpenMP reads the wait policy once, when it loads.
    threads.configure()
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except TyperException as exc:  # click's errors, as typer vendors them: a usage error or a bad option value
        if type(exc).__name__ == "NoArgsIsHelpError":  # 'inpars' alone: the help, as click prints it
            typer.echo(exc.format_message())
            sys.exit(exc.exit_code)
        # A bad option or argument is one line too, as every other bad input is (click prints three).
        context = getattr(exc, "ctx", None)
        where = f"; see '{context.command_path} --help'" if context is not None else ""
        typer.secho(f"error: {exc.format_message()}{where}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
