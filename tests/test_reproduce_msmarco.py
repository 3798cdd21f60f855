"""The MS MARCO passage rows (reproduce/msmarco.yaml): the dev set scored by RR@10 and TREC-DL 2020 by nDCG@10, both
loaded through ir_datasets ids; their sanity counts come from ir_datasets' shipped metadata and their plan prints
without downloading anything (an ir_datasets home that starts empty stays without a file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inpars.evaluate import parse_measures
from inpars.reproduce import condition_config, load_tables, plan, runnable_cell

ROOT = Path(__file__).resolve().parent.parent
MSMARCO = ROOT / "reproduce" / "msmarco.yaml"
DATASETS = {
    "msmarco-dev": ("irds:msmarco-passage/dev/small", "RR@10"),
    "trec-dl-2020": ("irds:msmarco-passage/trec-dl-2020/judged", "nDCG@10"),
}
# Any request through a proxy goes to a closed local port: a download attempt fails at once instead of passing.
NO_NETWORK = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
    "HF_HUB_OFFLINE": "1",
}


@pytest.fixture(scope="module")
def tables():
    return load_tables(ROOT / "reproduce")


def _offline(home: Path, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``argv`` in a fresh interpreter (ir_datasets fixes its folders when it is first imported) whose ir_datasets home
    is ``home`` and whose network requests go nowhere."""
    env = {**os.environ, **NO_NETWORK, "IR_DATASETS_HOME": str(home)}
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*") if p.is_file()) if home.exists() else []


def test_the_msmarco_file_loads_on_its_own_and_with_the_others(tables):
    alone = load_tables(MSMARCO)
    assert set(alone.datasets) == set(DATASETS) and list(alone.conditions) == ["bm25-msmarco"]
    for name, (dataset, _) in DATASETS.items():
        entry = tables.dataset(name)
        assert entry.dataset == dataset and entry == alone.dataset(name)
        assert entry.counts_source == "ir-datasets-msmarco" and "metadata" in tables.sources[entry.counts_source]
        assert entry.released_data == "msmarco"  # msmarco_synthetic_queries_100k.jsonl, for the InPars-v1 rows to come
    assert set(DATASETS) <= set(tables.runnable_datasets())


def test_each_row_scores_the_measure_its_paper_uses(tables, tmp_path):
    condition = tables.condition("bm25-msmarco")
    assert condition.kind == "retrieval" and condition.system == "bm25" and condition.reference is None
    for name, (_, measure) in DATASETS.items():
        cell = condition.cell(name)
        assert list(cell.scores) == [measure]
        # MRR@10, as the papers write it, is ir_measures' RR@10: the name the cell keeps is the one evaluate reports.
        assert [str(m) for m in parse_measures([measure])] == [measure]
        config, source, _ = condition_config(tables.dataset(name), condition, cell, "full", tmp_path)
        assert source == "inpars/recipes/bm25-flat.yaml" and config.evaluate.measures == (measure,)
        assert config.dataset == DATASETS[name][0]
        retrieve = config.retrieve
        assert (retrieve.backend, retrieve.prebuilt_index) == ("pyserini", "msmarco-v1-passage")
        assert (retrieve.k1, retrieve.b) == (0.82, 0.68)  # pyserini's own for this index
        # MS MARCO query and passage ids share one number range: a passage named like the query is another passage.
        assert retrieve.top_k == 1000 and retrieve.remove_query is False
        assert config.run_dir == tmp_path / name / "bm25-msmarco"
    assert [str(m) for m in parse_measures(["MRR@10"])] == ["RR@10"]
    assert condition.cell("msmarco-dev").scores == {"RR@10": 0.1875}
    assert condition.cell("trec-dl-2020").scores == {"nDCG@10": 0.4876}
    tolerance = condition.tolerance["full"]
    assert tolerance.value == 0.0005 and "tie order" in tolerance.reason
    assert plan(tables, "msmarco-dev") == [("bm25-msmarco", "full")]
    assert runnable_cell(tables, "trec-dl-2020", "bm25-msmarco")[2].scores == {"nDCG@10": 0.4876}


def test_the_bm25_cells_are_pyserini_s_own_regression_values(tables):
    """The cells against the copy of pyserini's 2CR table that the installed pyserini ships, and the prebuilt index's
    document count against the dataset's (both offline)."""
    pytest.importorskip("pyserini")
    from importlib import resources

    import yaml
    from pyserini.prebuilt_index_info import TF_INDEX_INFO

    text = resources.files("pyserini").joinpath("2cr", "msmarco-v1-passage.yaml").read_text(encoding="utf-8")
    tuned = next(c for c in yaml.safe_load(text)["conditions"] if c["name"] == "bm25-tuned")
    assert "--index msmarco-v1-passage" in tuned["command"] and "--k1" not in tuned["command"]  # pyserini's 0.82 / 0.68
    scores = {t["topic_key"]: t["scores"][0] for t in tuned["topics"]}

    def topic(*keys):  # pyserini 0.22 and 1.x name the same topics differently
        return next(scores[key] for key in keys if key in scores)

    condition = tables.condition("bm25-msmarco")
    dev = topic("msmarco-passage-dev-subset", "msmarco-v1-passage.dev")
    dl20 = topic("dl20", "dl20-passage")
    assert condition.cell("msmarco-dev").scores["RR@10"] == dev["MRR@10"]
    assert condition.cell("trec-dl-2020").scores["nDCG@10"] == dl20["nDCG@10"]
    for name in DATASETS:
        assert TF_INDEX_INFO["msmarco-v1-passage"]["documents"] == tables.dataset(name).counts["docs"]


def test_the_sanity_counts_are_ir_datasets_metadata_read_offline(tables, tmp_path):
    home = tmp_path / "ir_datasets"
    home.mkdir()
    script = (
        "import json, sys\n"
        "from inpars.datasets import dataset_counts\n"
        "print(json.dumps({name: dataset_counts(name) for name in sys.argv[1:]}))\n"
    )
    ids = [dataset for dataset, _ in DATASETS.values()]
    done = _offline(home, "-c", script, *ids)
    assert done.returncode == 0, done.stderr
    counted = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (dataset, _) in DATASETS.items():
        assert counted[dataset] == tables.dataset(name).counts, name
    assert counted["irds:msmarco-passage/dev/small"] == {"docs": 8_841_823, "queries": 6_980, "qrels": 7_437}
    assert counted["irds:msmarco-passage/trec-dl-2020/judged"] == {"docs": 8_841_823, "queries": 54, "qrels": 11_386}
    assert _files(home) == []


def test_list_and_plan_name_the_rows_without_downloading(tmp_path):
    home = tmp_path / "ir_datasets"
    home.mkdir()
    listed = _offline(home, "-m", "inpars.cli", "reproduce", "--list", "--tables", str(ROOT / "reproduce"))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "msmarco-dev bm25-msmarco" in lines and "trec-dl-2020 bm25-msmarco" in lines
    output = tmp_path / "runs"
    planned = _offline(
        home, "-m", "inpars.cli", "reproduce", *DATASETS, "--plan", "--tables", str(MSMARCO), "--output-dir", str(output),
        cwd=tmp_path,
    )
    assert planned.returncode == 0, planned.stderr
    text = planned.stdout
    for name, (dataset, _) in DATASETS.items():
        assert f"{name} / bm25-msmarco  ({output / name / 'bm25-msmarco'})" in text
        assert f"downloads: {dataset}, msmarco-v1-passage" in text
        for stage in ("retrieve", "evaluate"):
            assert f"reproduce {name} --condition bm25-msmarco --output-dir {output} --tables {MSMARCO} --stage {stage}" in text
    assert text.count("index          msmarco-v1-passage: ") == 1  # one download for both datasets
    assert "GPU hours left (estimated): 0.00" in text  # BM25 runs on CPUs
    as_json = _offline(
        home, "-m", "inpars.cli", "reproduce", "trec-dl-2020", "--plan", "--json", "--tables", str(MSMARCO),
        "--output-dir", str(output), cwd=tmp_path,
    )
    assert as_json.returncode == 0, as_json.stderr
    steps = [step["key"] for step in json.loads(as_json.stdout)["steps"]]
    assert steps == ["trec-dl-2020/bm25-msmarco/retrieve", "trec-dl-2020/bm25-msmarco/evaluate", "trec-dl-2020/report"]
    assert _files(home) == [] and not output.exists()


@pytest.mark.slow
@pytest.mark.network
def test_bm25_reproduces_pyserini_on_trec_dl_2020(tables, tmp_path):
    """The runnable row end to end: the MS MARCO passages through ir_datasets (about 1 GB) and pyserini's prebuilt
    index (2.2 GB), 54 queries searched; needs Java and inpars[pyserini]."""
    pytest.importorskip("pyserini")
    from inpars.reproduce import reproduce

    result = reproduce(tables, "trec-dl-2020", ["bm25-msmarco"], output_dir=tmp_path)
    assert result.ok, [(c.metric, c.expected, c.obtained) for c in result.checks]
