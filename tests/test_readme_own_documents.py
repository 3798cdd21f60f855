"""The README's "Your own documents" commands, as written there, on a folder of text files made here."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent


def _readme_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Your own documents", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("inpars ")]


def test_the_readme_commands_take_a_folder_of_text_files_to_a_search(tmp_path, faq):
    commands = _readme_commands()
    assert [c.split()[1] for c in commands] == ["run", "search"], commands
    docs = tmp_path / "my-docs"
    for i, doc in enumerate(list(faq.docs.values())[:64]):
        folder = docs / ("permits" if i % 2 else "contracts")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"answer {i}.{'md' if i % 3 == 0 else 'txt'}").write_text(doc.text)
    recipe = str(ROOT / "inpars" / "recipes" / "demo.yaml")
    inpars = [sys.executable, "-c", "from inpars.cli import main; main()"]
    run = commands[0].replace("inpars/recipes/demo.yaml", recipe).split()[1:]
    done = subprocess.run([*inpars, *run], cwd=tmp_path, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "runs" / "mydocs" / "metrics.json").read_text())
    assert metrics["judged_on"].startswith("synthetic queries held out") and "selected" in metrics["systems"]
    assert (tmp_path / "runs" / "mydocs" / "train" / "model" / "README.md").is_file()  # the model card

    question = re.search(r'"([^"]+)"', commands[1]).group(1)
    found = subprocess.run(
        [*inpars, "search", "runs/mydocs", question, "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert found.returncode == 0, found.stderr[-3000:]
    hits = json.loads(found.stdout)
    ids = {hit["doc_id"] for query in hits["queries"] for hit in query["hits"]}
    assert ids, found.stdout[:2000]
    assert all(re.fullmatch(r"(permits|contracts)/answer_\d+\.(md|txt)", doc_id) for doc_id in ids), ids
