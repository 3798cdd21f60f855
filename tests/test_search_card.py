"""A trained model to take away: its folder loads with its own library and scores as inpars does, its card holds what
the run knew, and 'inpars search' ranks your questions as the run ranks its test queries."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from inpars import io
from inpars.card import LIBRARIES, write_model_card
from inpars.cli import app
from inpars.config import TrainConfig, load_pipeline_config
from inpars.data import Query, SyntheticQuery, TrainingExample
from inpars.errors import InparsError
from inpars.models import MINILM
from inpars.rerank import rerankers
from inpars.search import load_queries, search

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # two shared cores: one torch thread keeps tiny models quick


def examples(n: int = 8) -> list[TrainingExample]:
    """Relevant documents say 'approved', the others 'rejected'."""
    rng = random.Random(0)
    words = ["house", "roof", "wall", "permit", "tax", "garden", "window", "door", "floor", "stairs"]
    rows = []
    for i in range(n):
        query = " ".join(rng.sample(words, 3))
        rows.append(TrainingExample(f"q{i}", query, f"p{i}", f"approved: the {query} work is approved", 1))
        rows.append(TrainingExample(f"q{i}", query, f"n{i}", f"rejected: the {' '.join(rng.sample(words, 3))} work", 0))
    return rows


PAIRS = [
    ("roof permit", "approved: the roof permit work is approved"),
    ("garden tax", "rejected: the wall door work"),
    ("who pays the tax on a garden house?", " ".join(["The owner of the house pays the property tax every year."] * 20)),
]
"""The last document is longer than the models' max_length: both sides must cut it the same way."""

MAX_LENGTH = 48

CARD_PAIR = ("how long is a building permit valid?", "A building permit expires after ...")
"""The example the card's usage code scores."""


def card_code(kind: str, metadata: dict) -> str:
    """The Python code of the usage section of a card for a model of ``kind``."""
    from inpars.card import _usage

    return _usage(kind, metadata).split("```python\n", 1)[1].split("```", 1)[0]

LOAD_ALONE = textwrap.dedent(
    """
    import json, sys
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    torch.set_num_threads(1)
    task = json.loads(sys.stdin.read())
    pairs = [tuple(p) for p in task["pairs"]]
    out = {}
    out["cross-encoder"] = CrossEncoder(task["cross-encoder"], device="cpu").predict(pairs).tolist()
    model = SentenceTransformer(task["bi-encoder"], device="cpu")
    q = model.encode([a for a, _ in pairs], normalize_embeddings=True, convert_to_tensor=True)
    d = model.encode([b for _, b in pairs], normalize_embeddings=True, convert_to_tensor=True)
    out["bi-encoder"] = (q * d).sum(dim=1).tolist()
    folder, meta = task["monot5"], task["monot5-meta"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    t5 = T5ForConditionalGeneration.from_pretrained(folder).eval()
    true_id, false_id = tokenizer.convert_tokens_to_ids([meta["true_token"], meta["false_token"]])
    scores = []
    for query, document in pairs[:2]:
        text = meta["template"].replace("{query}", query).replace("{document}", document)
        inputs = tokenizer([text], return_tensors="pt")
        start = torch.full((1, 1), t5.config.decoder_start_token_id)
        with torch.no_grad():
            logits = t5(**inputs, decoder_input_ids=start).logits[:, 0, [true_id, false_id]]
        scores.append(torch.log_softmax(logits, dim=-1)[0, 0].item())
    out["monot5"] = scores
    for kind, code in task["snippets"].items():
        namespace = {}
        exec(code, namespace)
        found = namespace["scores"] if "scores" in namespace else namespace["score"]
        out[f"card {kind}"] = [float(x) for x in found]
    out["inpars imported"] = any(name == "inpars" or name.startswith("inpars.") for name in sys.modules)
    print(json.dumps(out))
    """
)


def test_every_reranker_kind_has_a_card():
    assert set(LIBRARIES) == set(rerankers.names())


def test_saved_models_load_with_their_own_library_and_score_as_inpars(tiny_t5, tmp_path):
    """Each kind, trained two steps, loads in a process that never imports inpars and gives inpars' scores."""
    folders = {}
    for kind, model in (("cross-encoder", MINILM), ("bi-encoder", MINILM), ("monot5", str(tiny_t5))):
        config = TrainConfig(
            reranker=kind, model=model, max_steps=2, batch_size=4, learning_rate=1e-3, max_length=MAX_LENGTH, warmup_ratio=0.0
        )
        folders[kind] = rerankers.get(kind).train(examples(), config, tmp_path / kind, device="cpu")
    expected = {
        kind: rerankers.get(kind)(str(folder), max_length=MAX_LENGTH, batch_size=4, device="cpu").score(
            PAIRS if kind != "monot5" else PAIRS[:2]
        )
        for kind, folder in folders.items()
    }
    task = {kind: str(folder) for kind, folder in folders.items()}
    task["monot5-meta"] = io.read_json(folders["monot5"] / "inpars-reranker.json")
    task["pairs"] = PAIRS
    # The usage code each card shows, run as it stands (with the folder's path): it must score as inpars does.
    task["snippets"] = {
        kind: card_code(kind, io.read_json(folder / "inpars-reranker.json")).replace("path/to/this/folder", str(folder))
        for kind, folder in folders.items()
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ALONE], input=json.dumps(task), capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    alone = json.loads(done.stdout.strip().splitlines()[-1])
    assert alone.pop("inpars imported") is False
    for kind, scores in expected.items():
        assert alone[kind] == pytest.approx(scores, abs=1e-5), kind
        reranker = rerankers.get(kind)(str(folders[kind]), max_length=MAX_LENGTH, device="cpu")
        assert alone[f"card {kind}"] == pytest.approx(reranker.score([CARD_PAIR]), abs=1e-5), kind
    # A CrossEncoder's default for one label is the logit's sigmoid: the folder asks for the logit itself.
    settings = io.read_json(folders["cross-encoder"] / "config_sentence_transformers.json")
    assert settings["activation_fn"] == "torch.nn.modules.linear.Identity"


# ---------------------------------------------------------------------------------------------- a finished run


RECIPE = """
name: taken
train: {model: embedded:minilm-l6, max_steps: 2, batch_size: 4, max_length: 64, learning_rate: 1.0e-4, warmup_ratio: 0.0}
negatives: {depth: 10, num_negatives: 1}
retrieve: {top_k: 10}
rerank: {top_k: 3, batch_size: 16, max_length: 64}
select: {validation: 0.25, sources: [reranker], bm25_weights: [0.3], bm25_gate: false}
evaluate: {resamples: 500}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory, faq_slice):
    """A whole run on the faq-construction slice as a local BEIR folder, with imported synthetic queries: a two-step
    cross-encoder whose select stage chose it fused with BM25 at 0.3."""
    import torch

    from inpars.pipeline import run_pipeline

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # set up before the per-test thread limit applies
    root = tmp_path_factory.mktemp("search")
    collection = root / "faq-slice"
    io.write_beir_folder(collection, faq_slice.docs.values(), faq_slice.queries.values(), faq_slice.qrels)
    queries = root / "queries.jsonl"
    io.write_synthetic(
        queries,
        [SyntheticQuery(f"s{doc_id}", doc_id, " ".join(doc.text.split()[:8]), (-1.0,)) for doc_id, doc in faq_slice.docs.items()],
    )
    config = load_pipeline_config(text=RECIPE, overrides=[f"output_dir={root / 'runs'}", f"dataset={collection}"])
    try:
        run_pipeline(config, queries=queries)
    finally:
        torch.set_num_threads(threads)
    return root / "runs" / "taken", collection


def test_search_ranks_a_test_query_as_the_run_ranked_it(finished, faq_slice):
    run_dir, _ = finished
    reranked = io.read_trec_run(run_dir / "rerank" / "run.trec")
    ids = sorted(faq_slice.queries)[:3]
    result = search(run_dir, {qid: faq_slice.queries[qid] for qid in ids}, top_k=5)
    assert result.system["source"] == "reranker" and result.system["bm25_weight"] == 0.3
    assert result.system["reranker"] == "cross-encoder" and result.system["model"] == str(run_dir / "train" / "model")
    for qid in ids:
        expected = sorted(reranked[qid].items(), key=lambda item: (item[1], item[0]), reverse=True)[:5]
        hits = result.hits[qid]
        assert [h.doc_id for h in hits] == [doc_id for doc_id, _ in expected]
        assert [h.score for h in hits] == pytest.approx([score for _, score in expected], abs=1e-6)
        assert [h.rank for h in hits] == list(range(1, len(expected) + 1))
        assert all(h.snippet and len(h.snippet) <= 160 for h in hits)


def test_search_command_prints_hits_and_json(finished):
    run_dir, _ = finished
    question = "Do I need a building permit for a new roof?"
    result = runner.invoke(app, ["search", str(run_dir), question, "--top-k", "4"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"# 1\t{question}" and len(lines) == 5
    assert [line.split("\t")[0] for line in lines[1:]] == ["1", "2", "3", "4"]

    as_json = runner.invoke(app, ["search", str(run_dir), question, "--top-k", "4", "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    (found,) = data["queries"]
    assert found["query"] == question and [h["rank"] for h in found["hits"]] == [1, 2, 3, 4]
    assert [h["doc_id"] for h in found["hits"]] == [line.split("\t")[1] for line in lines[1:]]
    assert data["system"]["source"] == "reranker" and data["system"]["bm25_weight"] == 0.3


def test_hits_print_as_a_table_on_a_terminal(finished, capsys):
    from inpars.cli import _print_hits

    run_dir, _ = finished
    result = search(run_dir, load_queries("Who decides on a building permit?"), top_k=3)
    _print_hits(result, table=True)
    shown = capsys.readouterr().out
    assert "Who decides on a building permit?" in shown and "┃ doc_id" in shown
    assert len(result.hits["1"]) == 3 and all(hit.doc_id in shown for hit in result.hits["1"])


def test_search_command_takes_a_file_of_questions(finished, tmp_path):
    run_dir, _ = finished
    questions = tmp_path / "questions.txt"
    questions.write_text("Who decides on a building permit?\n\n  What does a roof cost?  \n", encoding="utf-8")
    result = runner.invoke(app, ["search", str(run_dir), "--queries", str(questions), "--top-k", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(q["query_id"], q["query"]) for q in data["queries"]] == [
        ("1", "Who decides on a building permit?"), ("3", "What does a roof cost?"),
    ]
    assert all(len(q["hits"]) == 2 for q in data["queries"])


def test_the_trained_model_folder_searches_alone(finished, faq_slice):
    """The model folder without its run: the collection is named, the kind read from the folder, BM25 the first stage."""
    run_dir, collection = finished
    model = run_dir / "train" / "model"
    qid = min(faq_slice.queries)
    query = faq_slice.queries[qid]
    result = search(model, {qid: query}, top_k=3, dataset=str(collection))
    assert result.system["first_stage"] == "bm25s" and result.system["reranker"] == "cross-encoder"
    hits = result.hits[qid]
    scorer = rerankers.get("cross-encoder")(str(model), max_length=64, device="cpu")
    assert [h.score for h in hits] == pytest.approx(
        scorer.score([(query.text, faq_slice.docs[h.doc_id].full_text) for h in hits]), abs=1e-5
    )
    missing = runner.invoke(app, ["search", str(model), "a question"])
    assert missing.exit_code == 2
    assert missing.output.strip() == f"error: {model} is a model, not a run folder: give the collection to search with --dataset"


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_search_errors_are_one_line(finished, tmp_path):
    run_dir, collection = finished
    missing = tmp_path / "runs" / "nothing"
    assert one_line(runner.invoke(app, ["search", str(missing), "a question"])) == (
        f"error: {missing}: no such run folder; give a run folder (runs/<name>) or a model folder with --dataset and --reranker"
    )
    started = tmp_path / "started"
    started.mkdir()
    shutil.copy(run_dir / "config.json", started / "config.json")
    assert one_line(runner.invoke(app, ["search", str(started), "a question"])) == (
        f"error: {started} has no trained model ({started / 'train' / 'model'} is missing): finish the run first (inpars run), "
        "or search a model folder with --dataset and --reranker"
    )
    assert one_line(runner.invoke(app, ["search", str(run_dir), "  "])) == (
        'error: the query is empty; ask a question, e.g. inpars search runs/demo "who needs a building permit?"'
    )
    assert "drop --dataset and --reranker" in one_line(
        runner.invoke(app, ["search", str(run_dir), "a question", "--dataset", str(collection)])
    )
    assert "--top-k is 0" in one_line(runner.invoke(app, ["search", str(run_dir), "a question", "--top-k", "0"]))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    assert one_line(runner.invoke(app, ["search", str(run_dir), "--queries", str(empty)])) == (
        f"error: {empty}: holds no queries; write one question a line"
    )


def test_queries_from_one_question_or_a_beir_file(tmp_path):
    assert load_queries("  who   pays the tax? ") == {"1": Query("1", "who pays the tax?")}
    path = tmp_path / "queries.jsonl"
    io.write_jsonl(path, [{"_id": "a", "text": " what  is a permit? "}, {"_id": "b", "text": "roof"}])
    assert load_queries(path=path) == {"a": Query("a", "what is a permit?"), "b": Query("b", "roof")}
    with pytest.raises(InparsError, match="not both"):
        load_queries("roof", path)
    io.write_jsonl(path, [{"_id": "a", "text": "roof"}, {"_id": "b", "text": "  "}])
    with pytest.raises(InparsError, match=f"^{path}: query 'b' has no text; give every query a text$"):
        load_queries(path=path)


# ---------------------------------------------------------------------------------------------- the model card


def test_model_card_parses_back_and_holds_the_run(finished):
    from huggingface_hub import ModelCard

    from inpars.pipeline import read_manifest, stage_done

    run_dir, collection = finished
    path = write_model_card(run_dir)
    assert path == run_dir / "train" / "model" / "README.md"
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["library_name"] == "sentence-transformers" and data["pipeline_tag"] == "text-ranking"
    assert data["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert {"inpars", "cross-encoder"} <= set(data["tags"])
    recorded = io.read_json(run_dir / "dataset.json")
    metrics = io.read_json(run_dir / "metrics.json")["systems"]["cross-encoder"]
    assert {r.metric_name: r.metric_value for r in card.data.eval_results} == {
        f"{measure} (fused with BM25 at weight 0.3)": round(s["mean"], 4) for measure, s in metrics.items()
    }
    assert {r.dataset_name for r in card.data.eval_results} == {str(collection)}
    text = card.text
    assert f"fingerprint `{recorded['fingerprint']}`" in text and "40 docs" in text
    assert "- Synthetic queries: 40 imported from" in text
    generated = io.read_json(run_dir / "filter" / "stage.json")["summary"]
    assert f"- Kept by the filter: {generated['kept']} of {generated['input']}" in text
    assert "**this model fused with BM25 at weight 0.3**" in text and "| reranker | 0.3 |" in text
    assert "## Test scores" in text and "| bm25 |" in text and "| cross-encoder |" in text
    assert "The row `cross-encoder` is the run's final system (chosen above)" in text
    assert "max_steps: 2" in text and f"dataset: {collection}" in text  # the recipe, resolved
    assert 'CrossEncoder("path/to/this/folder")' in text and "its max_length to 64" in text
    assert "fine-tuned from `embedded:minilm-l6` (sentence-transformers/all-MiniLM-L6-v2)" in text

    # The card is not part of what the train stage wrote: the stage is still done, and an unchanged card is not rewritten.
    train = read_manifest(run_dir / "train")
    assert stage_done(run_dir / "train", train["fingerprint"], ["model"]) is not None
    written = path.stat().st_mtime_ns
    assert write_model_card(run_dir) == path and path.stat().st_mtime_ns == written


def test_model_card_of_a_run_without_selection_or_scores(finished, tmp_path):
    """Only what the run folder holds: no select stage and no metrics.json leave those sections out."""
    from huggingface_hub import ModelCard

    from inpars.pipeline import JUDGED_ON

    run_dir, _ = finished
    partial = tmp_path / "partial"
    (partial / "train" / "model").mkdir(parents=True)
    config = io.read_json(run_dir / "config.json")
    config["select"]["validation"] = 0.0
    io.write_json(partial / "config.json", config)
    shutil.copy(run_dir / "dataset.json", partial / "dataset.json")
    shutil.copy(run_dir / "train" / "model" / "inpars-reranker.json", partial / "train" / "model" / "inpars-reranker.json")
    # The train stage's record of another model folder (the whole one): the card must not make it look done here.
    shutil.copy(run_dir / "train" / "stage.json", partial / "train" / "stage.json")
    recorded = io.read_json(partial / "train" / "stage.json")["outputs"]["model"]
    io.write_json(
        partial / "generate" / "stage.json",
        {"stage": "generate", "status": "done", "fingerprint": "0" * 16, "summary": {"documents": 12, "generated": 12}},
    )
    card = ModelCard.load(write_model_card(partial))
    assert card.data.eval_results is None
    assert "## Selection" not in card.text and "## Test scores" not in card.text and "## Training" in card.text
    assert "- Generator: `embedded:smollm2-135m` (hf), prompt `inpars`" in card.text
    assert "- Synthetic queries generated: 12 for 12 documents" in card.text
    assert io.read_json(partial / "train" / "stage.json")["outputs"]["model"] == recorded

    # A collection without judgements is scored on the held-out synthetic queries: no test scores for the hub.
    metrics = io.read_json(run_dir / "metrics.json")
    systems = metrics["systems"]
    metrics.update(judged_on=JUDGED_ON["select"], systems={"bm25": systems["bm25"], "selected": systems["cross-encoder"]})
    io.write_json(partial / "metrics.json", metrics)
    card = ModelCard.load(write_model_card(partial))
    assert card.data.eval_results is None and "## Test scores" not in card.text
    assert "## Scores on held-out synthetic queries" in card.text and "The row `selected` is the run's final system" in card.text
    with pytest.raises(InparsError, match="has no trained model"):
        write_model_card(tmp_path / "nothing")
