"""Indexes cached by corpus and parameters, and built atomically."""

from __future__ import annotations

import pytest

from inpars import io
from inpars.data import Doc
from inpars.retrieve.cache import MANIFEST, cached_index, corpus_fingerprint

DOCS = [Doc("a", "first text", title="One"), Doc("b", "second text")]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INPARS_CACHE", str(tmp_path / "cache"))


def test_fingerprint_covers_ids_texts_order_and_parameters():
    base = corpus_fingerprint(DOCS, {"k1": 0.9})
    assert corpus_fingerprint(list(DOCS), {"k1": 0.9}) == base
    variants = [
        corpus_fingerprint([Doc("a", "first text", title="One"), Doc("c", "second text")], {"k1": 0.9}),
        corpus_fingerprint([Doc("a", "first text", title="Two"), DOCS[1]], {"k1": 0.9}),
        corpus_fingerprint(DOCS[::-1], {"k1": 0.9}),
        corpus_fingerprint(DOCS, {"k1": 1.2}),
        corpus_fingerprint([Doc("ab", "x"), Doc("c", "y")], {}),
        corpus_fingerprint([Doc("a", "x"), Doc("bc", "y")], {}),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_an_index_is_built_once(tmp_path):
    calls = []

    def build(folder):
        calls.append(folder)
        io.write_json(folder / "payload.json", {"docs": len(DOCS)})

    first = cached_index("toy", DOCS, {"k1": 0.9}, build)
    second = cached_index("toy", DOCS, {"k1": 0.9}, build)
    assert first == second and len(calls) == 1
    assert calls[0] != first  # built in a staging folder, then renamed into place
    assert first.parent == tmp_path / "cache" / "indexes" and first.name.startswith("toy-")
    assert io.read_json(first / MANIFEST) == {
        "backend": "toy",
        "fingerprint": first.name[len("toy-") :],
        "documents": 2,
        "params": {"k1": 0.9},
    }
    assert io.read_json(first / "payload.json") == {"docs": 2}


def test_a_failed_build_leaves_nothing_and_is_retried(tmp_path):
    def broken(folder):
        (folder / "half-written").write_text("x")
        raise RuntimeError("indexer crashed")

    with pytest.raises(RuntimeError, match="indexer crashed"):
        cached_index("toy", DOCS, {}, broken)
    assert list((tmp_path / "cache" / "indexes").iterdir()) == []
    folder = cached_index("toy", DOCS, {}, lambda f: (f / "ok").write_text("y"))
    assert (folder / "ok").is_file()


def test_a_folder_without_manifest_is_rebuilt(tmp_path):
    folder = cached_index("toy", DOCS, {}, lambda f: (f / "ok").write_text("y"))
    (folder / MANIFEST).unlink()
    rebuilt = cached_index("toy", DOCS, {}, lambda f: (f / "fresh").write_text("z"))
    assert rebuilt == folder
    assert (rebuilt / "fresh").is_file() and not (rebuilt / "ok").exists()


def test_atomic_directory_keeps_the_first_complete_writer(tmp_path):
    target = tmp_path / "index"
    with io.atomic_directory(target) as staging:
        (staging / "mine").write_text("1")
        # Another process completes the same folder while this one is still writing.
        with io.atomic_directory(target) as other:
            (other / "theirs").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["index"]
