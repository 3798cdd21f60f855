"""Each filter on small hand-made inputs with exact expected outputs, their composition, reports and config errors."""

from __future__ import annotations

import json
import math

import pytest

from inpars.config import FilterConfig, RetrieveConfig, load_pipeline_config
from inpars.data import Doc, SyntheticQuery
from inpars.errors import InparsError, InputError
from inpars.filter import FilterContext, filter_queries, needs_docs, write_filter_outputs
from inpars.filter.consistency import ConsistencyConfig, source_rank
from inpars.filter.hygiene import (
    CopiedConfig,
    DedupConfig,
    MaxLengthConfig,
    MinLengthConfig,
    copied_overlap,
    count_words,
    normalise,
)
from inpars.filter.lm_score import LMScoreConfig
from inpars.filter.reranker import RerankerFilterConfig


def sq(query_id: str, text: str | None = None, log_probs: tuple[float, ...] = (-0.5,), doc_id: str = "d1") -> SyntheticQuery:
    return SyntheticQuery(
        query_id=query_id, doc_id=doc_id, text=f"query {query_id}" if text is None else text, log_probs=log_probs
    )


def run(queries, *steps, **context):
    return filter_queries(queries, FilterConfig(steps=tuple(steps)), FilterContext(**context))


def ids(queries) -> list[str]:
    return [q.query_id for q in queries]


# ---------------------------------------------------------------------------------------------- LM score

# sum / mean log-prob / mean prob:
# q1 -0.2 / -0.1  / 0.905    q2 -1.0 / -1.0 / 0.368    q3 -1.2 / -0.3 / 0.741
# q4 -0.5 / -0.05 / 0.951    q5 -3.0 / -1.5 / 0.525
LM = [
    sq("q1", log_probs=(-0.1, -0.1)),
    sq("q2", log_probs=(-1.0,)),
    sq("q3", log_probs=(-0.3, -0.3, -0.3, -0.3)),
    sq("q4", log_probs=(-0.05,) * 10),
    sq("q5", log_probs=(0.0, -3.0)),
]


@pytest.mark.parametrize(
    "method, top_k, kept",
    [
        ("sum_log_probs", 2, ["q1", "q4"]),
        ("sum_log_probs", 3, ["q1", "q2", "q4"]),
        ("mean_log_probs", 3, ["q1", "q3", "q4"]),
        ("mean_log_probs", 4, ["q1", "q2", "q3", "q4"]),
        ("mean_probs", 4, ["q1", "q3", "q4", "q5"]),
        ("mean_probs", None, ["q1", "q2", "q3", "q4", "q5"]),
    ],
)
def test_lm_score_top_k_by_each_method(method, top_k, kept):
    result = run(LM, LMScoreConfig(method=method, top_k=top_k))
    assert ids(result.kept) == kept  # input order is kept
    assert sorted(ids(d.query for d in result.dropped)) == sorted(set(ids(LM)) - set(kept))


def test_lm_score_threshold_then_top_k_with_reasons():
    result = run(LM, LMScoreConfig(method="mean_log_probs", threshold=-1.2, top_k=3))
    assert ids(result.kept) == ["q1", "q3", "q4"]
    assert [(d.query.query_id, d.step, d.reason, d.detail) for d in result.dropped] == [
        ("q5", "lm_score", "below threshold", "mean_log_probs -1.5 < -1.2"),
        ("q2", "lm_score", "below top k", "rank 4 > 3 by mean_log_probs (-1)"),
    ]
    step = result.steps[-1]
    assert step.cutoff == pytest.approx(-0.3)
    assert step.scores["q4"] == pytest.approx(-0.05)
    assert result.kept[0].extra["filter_scores"] == {"lm_score": pytest.approx(-0.1)}


def test_lm_score_ties_break_by_query_id():
    queries = [sq("b", log_probs=(-1.0,)), sq("a", log_probs=(-1.0,)), sq("c", log_probs=(-1.0,))]
    assert ids(run(queries, LMScoreConfig(top_k=2)).kept) == ["b", "a"]


def test_shorthand_drops_empty_outputs_then_keeps_top_k():
    queries = [*LM, sq("blank", text="  ", log_probs=()), sq("dots", text="...", log_probs=(-0.01,))]
    result = filter_queries(queries, FilterConfig(method="sum_log_probs", top_k=2))
    assert ids(result.kept) == ["q1", "q4"]
    assert result.reasons() == {"empty": 2, "lm_score": 3}
    assert [s.label for s in result.steps] == ["empty", "lm_score"]


def test_default_config_keeps_every_non_empty_query():
    result = filter_queries([*LM, sq("e", text="")])
    assert ids(result.kept) == ids(LM)


def test_steps_given_as_plain_mappings_in_python():
    result = filter_queries(LM, FilterConfig(steps=({"name": "lm_score", "method": "sum_log_probs", "top_k": 2},)))
    assert ids(result.kept) == ["q1", "q4"]


def test_query_without_log_probs_has_no_lm_score():
    result = run([sq("n", log_probs=()), sq("y", log_probs=(-2.0,))], LMScoreConfig(top_k=1))
    assert ids(result.kept) == ["y"]
    assert result.dropped[0].query.extra["filter_scores"] == {"lm_score": None}


# ---------------------------------------------------------------------------------------------- hygiene


def test_empty_filter():
    queries = [sq("a", ""), sq("b", " \n"), sq("c", "?"), sq("d", "x"), sq("e", "¿qué?")]
    result = run(queries)
    assert ids(result.kept) == ["d", "e"]
    assert [d.reason for d in result.dropped] == ["empty"] * 3


def test_normalise_and_count_words():
    assert normalise("  What's the  PERMIT? ") == "what s the permit"
    assert normalise("Ｆｕｌｌ-width") == "full width"
    assert count_words("a one- or two-family house ?") == 5


DUPES = [
    sq("q1", "What is a permit?", doc_id="d1"),
    sq("q2", "what is a  permit", doc_id="d2"),
    sq("q3", "What is a permit?", doc_id="d1"),
    sq("q4", "How tall?", doc_id="d3"),
    sq("q5", "What is a permit?", doc_id="d2"),
]


def test_dedup_exact_and_normalised():
    result = run(DUPES, DedupConfig())
    assert ids(result.kept) == ["q1", "q4"]
    assert [(d.query.query_id, d.reason, d.detail) for d in result.dropped] == [
        ("q2", "normalised duplicate", "of q1"),
        ("q3", "exact duplicate", "of q1"),
        ("q5", "exact duplicate", "of q1"),
    ]
    assert result.steps[-1].reasons == {"normalised duplicate": 1, "exact duplicate": 2}


def test_dedup_exact_only():
    assert ids(run(DUPES, DedupConfig(normalised=False)).kept) == ["q1", "q2", "q4"]


def test_dedup_per_document():
    result = run(DUPES, DedupConfig(scope="document"))
    assert ids(result.kept) == ["q1", "q2", "q4"]
    assert [(d.query.query_id, d.reason, d.detail) for d in result.dropped] == [
        ("q3", "exact duplicate", "of q1"),
        ("q5", "normalised duplicate", "of q2"),
    ]


def test_min_and_max_length_in_words_and_generated_tokens():
    queries = [
        sq("two", "how tall", (-1.0,) * 2), sq("four", "how tall is it", (-1.0,) * 5),
        sq("six", "how tall is the tower there", (-1.0,) * 7),
    ]
    assert ids(run(queries, MinLengthConfig(min_words=3)).kept) == ["four", "six"]
    assert ids(run(queries, MinLengthConfig(min_tokens=6)).kept) == ["six"]
    assert ids(run(queries, MaxLengthConfig(max_words=4)).kept) == ["two", "four"]
    result = run(queries, MinLengthConfig(min_words=3), MaxLengthConfig(max_tokens=6))
    assert ids(result.kept) == ["four"]
    assert [(d.step, d.reason, d.detail) for d in result.dropped] == [
        ("min_length", "too short", "2 words < 3"),
        ("max_length", "too long", "7 tokens > 6"),
    ]


def test_token_length_without_log_probs_asks_for_a_tokenizer():
    with pytest.raises(InparsError, match="has no per-token log-probs to count its tokens; name a tokenizer"):
        run([sq("x", "some query", ())], MinLengthConfig(min_tokens=2))


def test_token_length_with_a_named_tokenizer():
    queries = [sq("a", "heat pump", ()), sq("b", "what does a heat pump cost", ())]
    assert ids(run(queries, MinLengthConfig(min_tokens=3, tokenizer="embedded:minilm-l6")).kept) == ["b"]


DOCS = {
    "d1": Doc("d1", "The permit is required for all buildings taller than ten metres.", title="Permits"),
    "d2": Doc("d2", "Heat pumps move heat from outside air into a house."),
}


def test_copied_overlap_values():
    doc = DOCS["d1"].full_text
    assert copied_overlap("the permit is required for all buildings", doc, 3) == 1.0
    assert copied_overlap("is a permit required", doc, 3) == 0.0
    assert copied_overlap("permit is required for tall towers", doc, 3) == 0.5
    assert copied_overlap("Permit!", doc, 3) == 1.0  # shorter than n: compared whole
    assert copied_overlap("permits", doc, 3) == 1.0  # the title is part of the document


def test_copied_filter():
    queries = [
        sq("all", "The permit is required for all buildings", doc_id="d1"),
        sq("half", "permit is required for tall towers", doc_id="d1"), sq("new", "is a permit required", doc_id="d1"),
    ]
    assert ids(run(queries, CopiedConfig(), docs=DOCS).kept) == ["half", "new"]
    result = run(queries, CopiedConfig(max_overlap=0.4), docs=DOCS)
    assert ids(result.kept) == ["new"]
    assert [d.detail for d in result.dropped] == ["1.00 of its 3-grams > 0.4", "0.50 of its 3-grams > 0.4"]


def test_filters_reading_documents_need_them():
    with pytest.raises(InparsError, match="the copied filter needs the documents; give the dataset"):
        run([sq("a")], CopiedConfig())
    with pytest.raises(InparsError, match="names document 'nope', which is not in the corpus"):
        run([sq("a", doc_id="nope")], CopiedConfig(), docs=DOCS)
    assert needs_docs(FilterConfig(steps=(DedupConfig(), CopiedConfig())))
    assert not needs_docs(FilterConfig(method="sum_log_probs"))


# ---------------------------------------------------------------------------------------------- reranker


class WordOverlapReranker:
    """A real (if simple) reranker: the number of distinct lower-cased words a query shares with the document."""

    def __init__(self, model: str, max_length: int = 512, batch_size: int = 32, device: str = "auto") -> None:
        self.calls = 0

    def score(self, pairs):
        self.calls += 1
        return [float(len(set(q.lower().split()) & set(d.lower().replace(".", "").split()))) for q, d in pairs]


def overlap_reranker(name, model, **options):
    return WordOverlapReranker(model, **options)


RERANK = [
    sq("r1", "heat pumps move heat", doc_id="d2"),  # heat, pumps, move: 3
    sq("r2", "permit for buildings", doc_id="d1"),  # permit, for, buildings: 3
    sq("r3", "what does it cost", doc_id="d2"),  # 0
    sq("r4", "the permit", doc_id="d1"),  # the, permit: 2
]


def test_reranker_filter_keeps_top_k_pairs():
    result = run(RERANK, RerankerFilterConfig(top_k=2), docs=DOCS, make_reranker=overlap_reranker)
    assert ids(result.kept) == ["r1", "r2"]
    assert result.steps[-1].scores == {"r1": 3.0, "r2": 3.0, "r3": 0.0, "r4": 2.0}
    assert [(d.query.query_id, d.reason) for d in result.dropped] == [("r4", "below top k"), ("r3", "below top k")]


def test_reranker_filter_threshold():
    assert ids(run(RERANK, RerankerFilterConfig(threshold=2.0), docs=DOCS, make_reranker=overlap_reranker).kept) == [
        "r1", "r2", "r4",
    ]


def test_reranker_scores_are_cached_and_resumed(tmp_path):
    made = []

    def make(name, model, **options):
        made.append(WordOverlapReranker(model, **options))
        return made[-1]

    first = run(RERANK, RerankerFilterConfig(top_k=2), docs=DOCS, make_reranker=make, cache_dir=tmp_path)
    assert len(made) == 1 and made[0].calls == 1
    # Another top_k reuses every cached score: no reranker is even loaded.
    second = run(RERANK, RerankerFilterConfig(top_k=3), docs=DOCS, make_reranker=make, cache_dir=tmp_path)
    assert len(made) == 1
    assert second.steps[-1].scores == first.steps[-1].scores
    assert ids(second.kept) == ["r1", "r2", "r4"]


def test_score_cache_survives_a_torn_line_and_keys_on_the_text(tmp_path):
    context = FilterContext(cache_dir=tmp_path)
    seen: list[str] = []

    def compute(chunk):
        seen.extend(q.query_id for q in chunk)
        return [float(len(q.text)) for q in chunk]

    queries = [sq("a", "x"), sq("b", "yy"), sq("c", "zzz")]
    assert context.cached_scores("s", {"v": 1}, queries, compute, chunk_size=2) == {"a": 1.0, "b": 2.0, "c": 3.0}
    (path,) = tmp_path.glob("s-*.scores.jsonl")
    path.write_bytes(path.read_bytes()[:-5])  # killed while writing the last row
    seen.clear()
    changed = [sq("a", "x"), sq("b", "changed"), sq("c", "zzz")]
    assert context.cached_scores("s", {"v": 1}, changed, compute, chunk_size=2) == {"a": 1.0, "b": 7.0, "c": 3.0}
    assert seen == ["b", "c"]
    seen.clear()
    context.cached_scores("s", {"v": 2}, queries, compute, chunk_size=2)  # another scoring config: another cache
    assert seen == ["a", "b", "c"]


def test_reranker_filter_through_the_registry_with_a_tiny_cross_encoder(tmp_path):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from inpars.models import resolve
    from inpars.rerank.cross_encoder import CrossEncoderReranker

    tokenizer = AutoTokenizer.from_pretrained(resolve("embedded:minilm-l6"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    scores = CrossEncoderReranker(str(tmp_path), device="cpu").score([(q.text, DOCS[q.doc_id].full_text) for q in RERANK])
    best = sorted(range(len(RERANK)), key=lambda i: -scores[i])[:2]
    result = run(RERANK, RerankerFilterConfig(reranker="cross-encoder", model=str(tmp_path), top_k=2, device="cpu"), docs=DOCS)
    assert ids(result.kept) == [RERANK[i].query_id for i in sorted(best)]
    assert [result.steps[-1].scores[q.query_id] for q in RERANK] == pytest.approx(scores, abs=1e-5)


# ---------------------------------------------------------------------------------------------- consistency

CORPUS = {
    "d1": Doc("d1", "The Eiffel Tower is in Paris and was built in 1889."),
    "d2": Doc("d2", "Heat pumps move heat from outside air into a house."),
    "d3": Doc("d3", "A building permit is needed before you build a garage."),
}
# BM25 (bm25s): q1 -> d1; q2 -> d1 only (its source d2 shares no word); q3 -> d3; q4 -> d2, then its source d1.
ROUND_TRIP = [
    sq("q1", "where is the eiffel tower", doc_id="d1"),
    sq("q2", "eiffel tower paris", doc_id="d2"),
    sq("q3", "building permit garage", doc_id="d3"),
    sq("q4", "heat pump in paris", doc_id="d1"),
]


def test_source_rank():
    assert source_rank({"a": 2.0, "b": 3.0, "c": 2.0}, "c") == 3
    assert source_rank({"a": 2.0, "b": 3.0, "c": 2.0}, "a") == 2
    assert source_rank({"a": 1.0}, "z") is None


def test_consistency_with_bm25_keeps_queries_whose_source_ranks_first():
    result = run(ROUND_TRIP, ConsistencyConfig(retriever="bm25s", k=1), docs=CORPUS)
    assert ids(result.kept) == ["q1", "q3"]
    assert [(d.query.query_id, d.reason, d.detail) for d in result.dropped] == [
        ("q2", "source not retrieved", "not in the top 100"),
        ("q4", "source not in top k", "rank 2 > 1"),
    ]
    assert result.steps[-1].scores == {"q1": 1.0, "q2": None, "q3": 1.0, "q4": 2.0}


def test_consistency_top_2():
    assert ids(run(ROUND_TRIP, ConsistencyConfig(k=2), docs=CORPUS).kept) == ["q1", "q3", "q4"]


def test_consistency_with_a_reranker_over_bm25():
    # Word overlap puts d1 ("in", "paris") above d2 ("heat") for q4.
    step = ConsistencyConfig(k=1, reranker="cross-encoder", reranker_model="overlap", depth=10)
    result = run(ROUND_TRIP, step, docs=CORPUS, make_reranker=overlap_reranker)
    assert ids(result.kept) == ["q1", "q3", "q4"]


def test_consistency_uses_the_recipe_bm25_settings():
    # Stemmed, "pumps" matches both documents and the one saying "pump" three times wins; unstemmed, only its source.
    docs = {"d1": Doc("d1", "pump pump pump"), "d2": Doc("d2", "pumps")}
    queries = [sq("q", "pumps", doc_id="d2")]
    assert run(queries, ConsistencyConfig(k=1), docs=docs).steps[-1].scores == {"q": 2.0}
    assert run(queries, ConsistencyConfig(k=1), docs=docs, retrieve=RetrieveConfig(stemmer="")).steps[-1].scores == {"q": 1.0}


def test_consistency_with_a_dense_bi_encoder():
    queries = [
        sq("e", "When was the Eiffel Tower built?", doc_id="d1"), sq("h", "How does a heat pump warm a home?", doc_id="d2"),
        sq("x", "How does a heat pump warm a home?", doc_id="d3"),
    ]
    result = run(queries, ConsistencyConfig(retriever="dense", model="embedded:minilm-l6"), docs=CORPUS)
    assert ids(result.kept) == ["e", "h"]
    assert result.steps[-1].scores["x"] > 1


# ---------------------------------------------------------------------------------------------- composition and reports


def test_steps_run_in_order_on_what_is_left():
    queries = [
        sq("a", "what is a permit", (-0.2,) * 4),
        sq("b", "What is a permit?", (-0.1,) * 4),  # a better LM score, but a duplicate of a
        sq("c", "permit", (-0.1,)),
        sq("d", "how tall can a fence be", (-0.9,) * 6),
        sq("e", "", ()),
    ]
    result = run(queries, DedupConfig(), MinLengthConfig(min_words=2), LMScoreConfig(top_k=1))
    assert ids(result.kept) == ["a"]
    assert [(s.label, s.input, s.kept) for s in result.steps] == [
        ("empty", 5, 4), ("dedup", 4, 3), ("min_length", 3, 2), ("lm_score", 2, 1),
    ]
    assert [(d.query.query_id, d.step) for d in result.dropped] == [
        ("e", "empty"), ("b", "dedup"), ("c", "min_length"), ("d", "lm_score"),
    ]


def test_a_filter_named_twice_gets_labels_by_position():
    result = run(LM, LMScoreConfig(method="sum_log_probs", top_k=4), LMScoreConfig(method="mean_log_probs", top_k=2))
    assert [s.label for s in result.steps] == ["empty", "lm_score@1", "lm_score@2"]
    assert ids(result.kept) == ["q1", "q4"]
    assert set(result.kept[0].extra["filter_scores"]) == {"lm_score@1", "lm_score@2"}


def test_outputs_summary_and_histogram(tmp_path):
    from inpars import io

    queries = [*LM, sq("dup", "query q2", (-9.0,)), sq("e", "", ())]
    result = run(queries, DedupConfig(normalised=False, scope="document"), LMScoreConfig(top_k=3))
    summary = write_filter_outputs(result, tmp_path / "kept.jsonl", tmp_path / "report")
    png = (tmp_path / "report" / "scores.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert summary["histogram"] == "scores.png"
    assert json.loads((tmp_path / "report" / "summary.json").read_text()) == summary
    assert (summary["input"], summary["kept"], summary["dropped"]) == (7, 3, {"empty": 1, "dedup": 1, "lm_score": 2})
    lm = summary["steps"][-1]
    assert lm["score"] == "mean_log_probs" and lm["cutoff"] == pytest.approx(-0.3)
    assert lm["scores"]["count"] == 5 and lm["scores"]["max"] == pytest.approx(-0.05)
    assert ids(io.read_synthetic(tmp_path / "kept.jsonl")) == ["q1", "q3", "q4"]
    dropped = [json.loads(line) for line in (tmp_path / "report" / "dropped.jsonl").read_text().splitlines()]
    assert [(r["query_id"], r["step"], r["reason"]) for r in dropped] == [
        ("e", "empty", "empty"), ("dup", "dedup", "exact duplicate"), ("q2", "lm_score", "below top k"),
        ("q5", "lm_score", "below top k"),
    ]


def test_histogram_without_a_scoring_step_shows_the_lm_score(tmp_path):
    result = run(LM, DedupConfig())
    summary = write_filter_outputs(result, tmp_path / "kept.jsonl", tmp_path)
    assert summary["histogram"] == "scores.png" and (tmp_path / "scores.png").stat().st_size > 5000


def test_no_histogram_without_any_score(tmp_path):
    summary = write_filter_outputs(run([sq("a", "x", ())], DedupConfig()), tmp_path / "kept.jsonl", tmp_path)
    assert "histogram" not in summary and not (tmp_path / "scores.png").exists()


def test_a_rank_histogram_has_one_bar_per_rank(tmp_path):
    queries = [sq(f"q{i}", doc_id="d1") for i in range(40)]
    from inpars.filter.base import FilterResult, StepReport
    from inpars.filter.report import plot_scores

    result = FilterResult(kept=queries[:5], input=40)
    result.steps.append(
        StepReport(
            "consistency", {}, 40, 5, {}, {q.query_id: float(i + 1) for i, q in enumerate(queries)}, "rank", 1.0,
            set(ids(queries[:5])),
        )
    )
    figure = plot_scores(result)
    (ax,) = figure.axes
    assert len(ax.patches) == 2 * 21  # kept and dropped bars for ranks 1..20 and the tail shown at 21
    assert "ranks above 21 shown at 21" in ax.get_title()


# ---------------------------------------------------------------------------------------------- recipes


RECIPE = """\
name: x
filter:
  steps:
    - name: dedup
    - name: min_length
      min_words: 3
    - name: consistency
      retriever: bm25s
      k: 1
    - name: lm_score
      method: mean_log_probs
      top_k: 10000
"""


def test_recipe_steps_load_as_frozen_configs():
    config = load_pipeline_config(text=RECIPE)
    assert config.filter.steps == (
        DedupConfig(), MinLengthConfig(min_words=3), ConsistencyConfig(retriever="bm25s", k=1), LMScoreConfig(top_k=10000),
    )
    with pytest.raises(AttributeError):
        config.filter.steps[1].min_words = 4  # type: ignore[misc]


def test_dumped_recipe_loads_back():
    from inpars.config import dump_yaml

    config = load_pipeline_config(text=RECIPE)
    assert load_pipeline_config(text=dump_yaml(config)) == config


def test_shorthand_and_overrides_still_work():
    config = load_pipeline_config(text="filter:\n  method: sum_log_probs\n  top_k: 5\n", overrides=["filter.top_k=7"])
    assert (config.filter.method, config.filter.top_k, config.filter.steps) == ("sum_log_probs", 7, ())
    steps = load_pipeline_config(overrides=["filter.steps=[{name: dedup}, {name: lm_score, top_k: 3}]"]).filter.steps
    assert steps == (DedupConfig(), LMScoreConfig(top_k=3))


def test_bundled_demo_recipe_loads():
    from importlib import resources

    load_pipeline_config(text=resources.files("inpars.recipes").joinpath("demo.yaml").read_text())


@pytest.mark.parametrize(
    "steps, message",
    [
        (
            "    - name: dedupe\n",
            "<recipe>:4: unknown filter 'dedupe'; did you mean 'dedup'? available: consistency, copied, dedup",
        ),
        (
            "    - name: dedup\n    - name: min_length\n      min_word: 3\n",
            "<recipe>:6: unknown key 'filter.steps.1.min_word'; did you mean 'min_words'?",
        ),
        ("    - name: lm_score\n      top_k: many\n", "<recipe>:5: 'filter.steps.0.top_k' should be int, got 'many'"),
        (
            "    - name: lm_score\n      method: median\n",
            (
                "<recipe>:5: 'filter.steps.0.method' is 'median', an unknown LM score; available: sum_log_probs, mean_log_probs, "
                "mean_probs"
            ),
        ),
        ("    - name: lm_score\n      top_k: 0\n", "<recipe>:5: 'filter.steps.0.top_k' is 0; it must be at least 1"),
        ("    - name: reranker\n      top_k: -3\n", "<recipe>:5: 'filter.steps.0.top_k' is -3; it must be at least 1"),
        ("    - method: sum_log_probs\n", "<recipe>:4: step 0 of 'filter.steps' has no name; give it one of: consistency"),
        ("    - name: min_length\n", "<recipe>:4: filter.steps.0: min_length needs min_words or min_tokens"),
        (
            "    - name: dedup\n      scope: corpus\n",
            "<recipe>:4: filter.steps.0: dedup scope must be 'all' or 'document', got 'corpus'",
        ),
        (
            "    - name: copied\n      max_overlap: 2\n",
            "<recipe>:4: filter.steps.0: max_overlap is a share between 0 and 1, got 2.0",
        ),
        (
            "    - name: consistency\n      retriever: bm25\n",
            (
                "<recipe>:5: 'filter.steps.0.retriever' is 'bm25', an unknown retriever; did you mean 'bm25s'? available: bm25s, "
                "dense, pyserini"
            ),
        ),
        ("    - name: consistency\n      k: 5\n      depth: 3\n", "<recipe>:4: filter.steps.0: depth (3) must be at least k (5)"),
        (
            "    - name: consistency\n      reranker: cross-encoder\n",
            "<recipe>:4: filter.steps.0: a consistency step with a reranker needs reranker_model",
        ),
        (
            "    - name: consistency\n      reranker_model: m\n",
            "<recipe>:4: filter.steps.0: reranker_model is set but reranker is not",
        ),
        (
            "    - name: reranker\n      reranker: monoT5\n",
            "<recipe>:5: 'filter.steps.0.reranker' is 'monoT5', an unknown reranker; did you mean 'monot5'?",
        ),
    ],
)
def test_step_errors_name_the_line(steps, message):
    with pytest.raises(InputError) as info:
        load_pipeline_config(text=f"name: x\nfilter:\n  steps:\n{steps}")
    assert str(info.value).startswith(message)


def test_steps_must_be_a_list():
    with pytest.raises(InputError, match=r"<recipe>:3: 'filter.steps' should be a list of steps"):
        load_pipeline_config(text="name: x\nfilter:\n  steps:\n    name: dedup\n")


def test_shorthand_and_steps_together_is_an_error():
    with pytest.raises(InputError, match=r"<recipe>:1: filter: give either filter.method/top_k or filter.steps, not both"):
        load_pipeline_config(text="filter:\n  method: sum_log_probs\n  steps:\n    - name: dedup\n")


def test_recipe_file_errors_name_the_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("filter:\n  steps:\n    - name: lm_score\n      methd: sum_log_probs\n")
    with pytest.raises(InputError, match=rf"^{path}:4: unknown key 'filter.steps.0.methd'; did you mean 'method'\?"):
        load_pipeline_config(path)


def test_infinite_scores_are_written_as_null(tmp_path):
    result = run([sq("a", "x", ())], LMScoreConfig())
    write_filter_outputs(result, tmp_path / "kept.jsonl", tmp_path)
    row = json.loads((tmp_path / "kept.jsonl").read_text())
    assert row["filter_scores"] == {"lm_score": None}
    assert math.isinf(result.steps[-1].scores["a"])
