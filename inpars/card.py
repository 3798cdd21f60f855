"""A model card for the model a run trained: ``README.md`` in the Hugging Face hub's format, beside the weights.

The card is made from what the run folder holds and nothing else: the recipe (``config.json``), the collection's record
(``dataset.json``), the stages' ``stage.json`` summaries, the model's ``inpars-reranker.json``, the select stage's
choice (``select/selection.json``) and the test scores (``metrics.json``) where the run has them. The folder it lies in
then loads with the model's own library (sentence-transformers or transformers) and uploads to the hub as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from inpars import io
from inpars.errors import InparsError
from inpars.models import MINILM

logger = logging.getLogger(__name__)

CARD = "README.md"

LIBRARIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "cross-encoder": ("sentence-transformers", "text-ranking", ("sentence-transformers", "cross-encoder")),
    "bi-encoder": ("sentence-transformers", "sentence-similarity", ("sentence-transformers", "feature-extraction")),
    "monot5": ("transformers", "text2text-generation", ("t5", "monot5")),
    "flan-t5": ("transformers", "text2text-generation", ("t5", "flan-t5")),
}
"""Per reranker kind: the library that loads the saved folder, the hub's pipeline tag and further tags."""

HUB_IDS = {MINILM: "sentence-transformers/all-MiniLM-L6-v2"}
"""The hub id of an embedded model a run may start from (the random T5 stand-in has none)."""


def write_model_card(run_dir: Path) -> Path:
    """Write ``train/model/README.md`` of the run in ``run_dir``; returns its path.

    The card is written only when its text changed. It is not part of what the train stage wrote: where the train
    stage's ``stage.json`` recorded the model folder as it was before the card, the record is brought up to date, so
    that the next run of the same recipe still finds the stage done (a model changed otherwise is still retrained).
    """
    run_dir = Path(run_dir)
    model_dir = run_dir / "train" / "model"
    if not model_dir.is_dir():
        raise InparsError(
            f"{run_dir} has no trained model ({model_dir} is missing); a model card describes a model the run trained: "
            "finish the run first (inpars run)"
        )
    path = model_dir / CARD
    with io.exclusive(run_dir / "train", "the train stage's folder"):
        text = str(model_card(run_dir))
        if path.is_file() and io.read_text(path, "model card") == text:
            return path
        before = io.tree_sha256(model_dir)
        with io.atomic_write(path) as handle:
            handle.write(text)
        _refresh_train_record(run_dir / "train", before, io.tree_sha256(model_dir))
    logger.info("model card -> %s", path)
    return path


def _refresh_train_record(folder: Path, before: str, after: str) -> None:
    from inpars.pipeline import read_manifest

    record = read_manifest(folder)
    outputs = record.get("outputs") if record is not None and record.get("status") == "done" else None
    if isinstance(outputs, dict) and outputs.get("model") == before:
        outputs["model"] = after
        io.write_json(folder / "stage.json", record)


def _optional_json(path: Path) -> Any:
    return io.read_json(path) if path.is_file() else None


def _summary(run_dir: Path, stage: str) -> dict:
    """A finished stage's summary, or ``{}``."""
    from inpars.pipeline import read_manifest

    record = read_manifest(run_dir / stage)
    if record is None or record.get("status") != "done":
        return {}
    return record.get("summary") or {}


def model_card(run_dir: Path):
    """The card (a ``huggingface_hub.ModelCard``) of the model the run in ``run_dir`` trained."""
    from huggingface_hub import ModelCard, ModelCardData

    run_dir = Path(run_dir)
    model_dir = run_dir / "train" / "model"
    config = io.read_json(run_dir / "config.json")
    metadata = _optional_json(model_dir / "inpars-reranker.json")
    if not isinstance(metadata, dict) or "reranker" not in metadata:
        raise InparsError(f"{model_dir} has no inpars-reranker.json naming its reranker kind; it was not trained by inpars")
    kind = metadata["reranker"]
    if kind not in LIBRARIES:
        raise InparsError(f"no model card is known for reranker kind '{kind}'; known: {', '.join(LIBRARIES)}")
    library, pipeline_tag, tags = LIBRARIES[kind]
    training = metadata.get("training") or {}
    base = (training.get("config") or {}).get("model") or config["train"]["model"]
    collection = _optional_json(run_dir / "dataset.json") or {}
    selected = config.get("select", {}).get("validation", 0) > 0
    selection = _optional_json(run_dir / "select" / "selection.json") if selected else None
    metrics = _optional_json(run_dir / "metrics.json")
    name = config["name"]
    data = ModelCardData(
        model_name=name,
        library_name=library,
        pipeline_tag=pipeline_tag,
        base_model=_hub_id(base),
        tags=["inpars", "synthetic-queries", "reranker", *tags],
        eval_results=_eval_results(metrics, selection, kind, config) or None,
    )
    summary = (
        f"# {name}\n\nA {kind} reranker for the collection `{collection.get('dataset', config['dataset'])}`, fine-tuned from "
        f"{_named(base)} by inpars on synthetic queries that a language model wrote for the collection's documents: no human "
        "relevance judgement was used in training."
    )
    sections = [
        summary,
        _usage(kind, metadata),
        _data_section(run_dir, config, collection),
        _training_section(kind, base, metadata, training, config),
        _selection_section(selection),
        _scores_section(metrics, config, kind, selection),
        "## Recipe\n\nThe resolved configuration of the run (`inpars run` takes it as a recipe):\n\n```yaml\n"
        + _yaml(config)
        + "```",
        _provenance(run_dir),
    ]
    body = "\n\n".join(part for part in sections if part) + "\n"
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _named(model: str) -> str:
    """A model name in the card's text, with its hub id where it is an embedded name that has one."""
    return f"`{model}` ({HUB_IDS[model]})" if model in HUB_IDS else f"`{model}`"


def _hub_id(name: str) -> str | None:
    """``name`` as the hub's ``base_model`` takes it: a hub id, or None for a local folder or a model without one."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name in HUB_IDS:
        return HUB_IDS[name]
    if name.startswith("embedded:") or "/" not in name or Path(name).expanduser().exists():
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _usage(kind: str, metadata: dict) -> str:
    """How the folder loads and scores with its library alone, as inpars scores it."""
    length = metadata.get("max_length")
    if kind == "cross-encoder":
        code = (
            "from sentence_transformers import CrossEncoder\n\n"
            'model = CrossEncoder("path/to/this/folder")\n'
            'scores = model.predict([("how long is a building permit valid?", "A building permit expires after ...")])\n'
        )
        note = (
            "A score is the model's logit (higher is more relevant), as inpars scores it; the folder sets the CrossEncoder's "
            f"activation to the identity and its max_length to {length}."
        )
    elif kind == "bi-encoder":
        code = (
            "from sentence_transformers import SentenceTransformer\n\n"
            'model = SentenceTransformer("path/to/this/folder")\n'
            'queries = model.encode(["how long is a building permit valid?"], normalize_embeddings=True)\n'
            'documents = model.encode(["A building permit expires after ..."], normalize_embeddings=True)\n'
            "scores = (queries * documents).sum(axis=1)  # cosine similarity\n"
        )
        note = "A score is the cosine of the query's and the document's embeddings, as inpars scores it."
    else:
        template = metadata.get("template", "")
        true_token, false_token = metadata.get("true_token"), metadata.get("false_token")
        code = (
            "import torch\n"
            "from transformers import AutoTokenizer, T5ForConditionalGeneration\n\n"
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")\n'
            'model = T5ForConditionalGeneration.from_pretrained("path/to/this/folder").eval()\n'
            f"template = {template!r}\n"
            'text = template.replace("{query}", "how long is a building permit valid?").replace(\n'
            '    "{document}", "A building permit expires after ..."\n'
            ")\n"
            'inputs = tokenizer([text], return_tensors="pt")\n'
            f"true_id, false_id = tokenizer.convert_tokens_to_ids([{true_token!r}, {false_token!r}])\n"
            "start = torch.full((1, 1), model.config.decoder_start_token_id)\n"
            "with torch.no_grad():\n"
            "    logits = model(**inputs, decoder_input_ids=start).logits[:, 0, [true_id, false_id]]\n"
            "score = torch.log_softmax(logits, dim=-1)[:, 0]  # log P(true)\n"
        )
        note = (
            f"A score is log P({true_token}) against {false_token} at the first decoder step, as inpars scores it. inpars "
            f"cuts a long input to {length} tokens by shortening the document only, so the text after it survives: do the "
            "same for long documents."
        )
    return f"## Usage\n\nThe folder loads with {LIBRARIES[kind][0]} alone:\n\n```python\n{code}```\n\n{note}"


def _data_section(run_dir: Path, config: dict, collection: dict) -> str:
    generate = config["generate"]
    made = _summary(run_dir, "generate")
    kept = _summary(run_dir, "filter")
    examples = _summary(run_dir, "negatives")
    lines = ["## Training data", ""]
    if collection:
        counts = ", ".join(f"{value} {key}" for key, value in (collection.get("counts") or {}).items())
        lines.append(f"- Collection: `{collection.get('dataset')}` ({counts}), fingerprint `{collection.get('fingerprint')}`")
    else:
        lines.append(f"- Collection: `{config['dataset']}` (the run recorded no fingerprint)")
    if "imported" in made:
        lines.append(f"- Synthetic queries: {made['imported']} imported from `{made.get('source')}` (not generated by this run)")
    else:
        lines.append(f"- Generator: `{generate['model']}` ({generate['backend']}), prompt `{generate['prompt']}`")
        if made:
            lines.append(f"- Synthetic queries generated: {made.get('generated')} for {made.get('documents')} documents")
    if kept:
        lines.append(f"- Kept by the filter: {kept.get('kept')} of {kept.get('input')}")
    if examples:
        held = f", {examples['held_out']} held out for selection" if "held_out" in examples else ""
        lines.append(
            f"- Training examples: {examples.get('examples')} from {examples.get('queries')} queries (positives and mined "
            f"negatives){held}"
        )
    return "\n".join(lines)


def _training_section(kind: str, base: str, metadata: dict, training: dict, config: dict) -> str:
    plan = training.get("plan") or {}
    settings = training.get("config") or {}
    lines = ["## Training", "", f"- Reranker: {kind}, from {_named(base)}"]
    if plan:
        lines.append(
            f"- {plan.get('steps')} steps at an effective batch of {plan.get('effective_batch_size')} "
            f"({plan.get('examples')} examples), learning rate {settings.get('learning_rate')}, "
            f"{settings.get('lr_scheduler')} schedule, {settings.get('optimizer')}, {training.get('precision')}"
        )
    if training.get("train_loss") is not None:
        lines.append(f"- Final training loss: {training['train_loss']:.4f}")
    if metadata.get("max_length") is not None:
        lines.append(f"- Max length: {metadata['max_length']} tokens")
        reranked = (config.get("rerank") or {}).get("max_length")
        if reranked is not None and reranked != metadata["max_length"]:
            lines.append(f"- The run reranked with a max length of {reranked} tokens (rerank.max_length)")
    if metadata.get("template"):
        lines.append(f"- Input: `{metadata['template']}`, answered `{metadata['true_token']}` or `{metadata['false_token']}`")
    return "\n".join(lines)


def _choice(source: str, weight: float) -> str:
    if source == "first-stage":
        what = "the first stage (this model not used)"
    elif "@" in source:
        step = source.partition("@")[2]
        what = f"the snapshot of this training at {step} (train/snapshots/{step}), not this final model"
    else:
        what = "this model"
    return what if weight == 0 else f"{what} fused with BM25 at weight {weight:g}"


def _selection_section(selection: dict | None) -> str:
    if not selection:
        return ""
    measure = selection["measure"]
    chosen = _choice(selection["source"], selection["bm25_weight"])
    intro = (
        f"The final system was chosen on {selection['queries']} synthetic queries held out of training (each query's "
        f"source document counts as its one relevant document): **{chosen}**."
    )
    lines = [
        "## Selection",
        "",
        intro,
        "",
        f"| source | BM25 weight | {measure} |",
        "|---|---|---|",
    ]
    lines += [f"| {row['source']} | {row['bm25_weight']:g} | {row[measure]:.4f} |" for row in selection.get("candidates", [])]
    gate = selection.get("gate")
    if gate:
        verdict = "so BM25 could be fused" if gate["fusion"] else "so BM25 was not fused"
        lines += ["", f"BM25 alone scored {gate['bm25']:.4f}, the first stage alone {gate['first_stage']:.4f}, {verdict}."]
    return "\n".join(lines)


def _final_system(metrics: dict, config: dict, kind: str) -> str:
    """The row of metrics.json that is the run's final system: named after the reranker kind where the test queries are
    scored (the evaluate stage's name), ``selected`` where the select stage's held-out queries are."""
    return (config["rerank"].get("reranker") or kind) if _on_test_queries(metrics) else "selected"


def _on_test_queries(metrics: dict) -> bool:
    """Whether metrics.json scores the collection's judged test queries, not the synthetic queries held out of training
    (what a run on a collection without judgements is scored on)."""
    from inpars.pipeline import JUDGED_ON

    return metrics.get("judged_on", JUDGED_ON["evaluate"]) == JUDGED_ON["evaluate"]


def _scores_section(metrics: dict | None, config: dict, kind: str, selection: dict | None) -> str:
    if not metrics:
        return ""
    from inpars.pipeline import JUDGED_ON

    systems = metrics["systems"]
    measures = list(next(iter(systems.values())))
    test = _on_test_queries(metrics)
    judged_on = metrics.get("judged_on", JUDGED_ON["evaluate"])
    intro = (
        f"Scored on {judged_on}: {metrics['queries']} queries of `{config['dataset']}` (mean, {metrics['confidence']:.0%} "
        f"bootstrap interval; p: paired randomization test against `{metrics['baseline']}`, Holm-adjusted). The row "
        f"`{_final_system(metrics, config, kind)}` is the run's final system{' (chosen above)' if selection else ''}."
    )
    if not test:
        intro += (
            " The collection has no judged test queries: these are the queries the final system was chosen on, so its "
            "score is optimistic."
        )
    lines = ["## Test scores" if test else "## Scores on held-out synthetic queries", "", intro, ""]
    leakage = metrics.get("leakage")
    if test and leakage:
        repeated = (
            f"{leakage['duplicates']} test queries are repeated and {leakage['near_duplicates']} nearly repeated by a kept "
            f"synthetic query (of {leakage['test_queries']})."
        )
        lines += [repeated, ""]
    lines += ["| system | " + " | ".join(measures) + " |", "|---" * (len(measures) + 1) + "|"]
    for system, scores in systems.items():
        cells = []
        for measure in measures:
            s = scores[measure]
            cell = f"{s['mean']:.4f} [{s['ci'][0]:.4f}, {s['ci'][1]:.4f}]"
            if s.get("p_randomization_holm") is not None:
                cell += f" p={s['p_randomization_holm']:.3g}"
            cells.append(cell)
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _eval_results(metrics: dict | None, selection: dict | None, kind: str, config: dict) -> list:
    """The final system's test scores as the hub's ``model-index`` holds them, where that system is this model (alone or
    fused with BM25) and the scores are on judged test queries: none where the select stage chose the first stage or a
    snapshot, or where the run had no test judgements."""
    from huggingface_hub import EvalResult

    if not metrics or not _on_test_queries(metrics):
        return []
    source, weight = (selection["source"], selection["bm25_weight"]) if selection else ("reranker", 0)
    scores = metrics["systems"].get(_final_system(metrics, config, kind))
    if not scores or source != "reranker":
        return []
    fused = f" (fused with BM25 at weight {weight:g})" if weight else ""
    return [
        EvalResult(
            task_type="text-ranking",
            dataset_type=config["dataset"],
            dataset_name=config["dataset"],
            metric_type=measure.lower().replace("@", "_at_"),
            metric_name=f"{measure}{fused}",
            metric_value=round(float(s["mean"]), 4),
        )
        for measure, s in scores.items()
    ]


def _provenance(run_dir: Path) -> str:
    from inpars.pipeline import read_manifest

    record = read_manifest(run_dir / "train") or {}
    versions = record.get("versions") or {}
    parts = [f"{package} {version}" for package, version in versions.items() if version]
    lines = ["## Provenance", ""]
    if parts:
        lines.append(f"- Trained with {', '.join(parts)}")
    if record.get("git_commit"):
        lines.append(f"- inpars commit `{record['git_commit']}`")
    if record.get("fingerprint"):
        lines.append(f"- Train stage fingerprint `{record['fingerprint']}`")
    return "\n".join(lines) if len(lines) > 2 else ""
