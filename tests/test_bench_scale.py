"""bench/scale.py at a small size, every stage through the library (CI runs this size; bench/README.md's table is 10k
to 1M)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lucene_support
import pytest

from inpars.data import Dataset, Doc, Query

lucene = lucene_support.lucene

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scale.py"


@pytest.mark.slow
def test_every_stage_runs_at_a_small_size(tmp_path, lucene):
    output = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "1500,3000", "--generated", "1000", "--mine", "400,1000", "--work",
         str(tmp_path / "work"), "--output", str(output)],
        capture_output=True, text=True, timeout=900, check=False, env={**os.environ, "INPARS_CACHE": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(output.read_text())["results"]
    failed = [(r["stage"], r["size"], r["error"][-300:]) for r in results if "error" in r]
    assert not failed
    stages = {r["stage"] for r in results}
    assert stages == {
        "load", "fix_text", "sample", "generate", "generate-resume", "generate-shards", "bm25s-index", "bm25s-search",
        "lucene-index", "lucene-search", "filter", "negatives-400", "negatives-1,000", "retrieve", "rerank", "evaluate",
    }
    by = {(r["stage"], r["size"]): r for r in results}
    # The stand-in generator wrote one query per sampled document; the resumed run took over what the killed one wrote.
    assert by["generate", 3000]["generated"] == 1000
    assert 0 < by["generate-resume", 3000]["resumed"] < 1000
    assert by["negatives-1,000", 3000]["queries"] == 1000
    assert by["retrieve", 3000]["queries"] == 1000
    assert 0 < by["evaluate", 3000]["bm25"]["nDCG@10"] <= 1 and 0 < by["evaluate", 3000]["stand-in"]["nDCG@10"] <= 1
    assert all(r["peak_kb"] >= r["before_kb"] > 0 and r["seconds"] >= 0 for r in results)
    # The table has every stage with its two slopes.
    table = done.stdout[done.stdout.index("| stage |") :]
    assert table.count("\n| ") == len(stages) and "slope (time)" in table


def test_the_collection_is_deterministic_and_judged(tmp_path):
    sys.path.insert(0, str(BENCH.parent))
    try:
        import scale
    finally:
        sys.path.remove(str(BENCH.parent))
    from inpars.datasets import load_dataset

    scale.write_collection(tmp_path / "a", 300)
    scale.write_collection(tmp_path / "b", 300)
    assert (tmp_path / "a" / "corpus.jsonl").read_bytes() == (tmp_path / "b" / "corpus.jsonl").read_bytes()
    data = load_dataset(str(tmp_path / "a"))
    assert len(data.docs) == 300 and len(data.queries) == 300
    lengths = [len(d.text.split()) for d in data.docs.values()]
    assert 60 < sum(lengths) / len(lengths) < 110  # the log-normal's mean is 84.8 words
    for qid, judged in data.qrels.items():
        (doc_id,) = judged
        assert set(data.queries[qid].text.split()) <= set(data.docs[doc_id].text.lower().strip(".").split())


def test_text_repair_keeps_what_needs_none():
    data = Dataset("x", {"a": Doc("a", "caf\u00c3\u00a9"), "b": Doc("b", "plain", "title")}, {"q": Query("q", "fine")}, {})
    fixed = data.with_fixed_text()
    assert fixed.docs["a"].text == "café"
    assert fixed.docs["b"] is data.docs["b"] and fixed.queries["q"] is data.queries["q"]
