"""Index, manifest and running readers agree: after writes killed at each step, leftovers, a full
disk, writers in other processes, and two corpora on one Chroma server (real Chroma, real model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rag import journal
from rag.chunking import split
from rag.config import Settings, build_settings
from rag.errors import StaleIndexError, StoreError
from rag.indexer import Indexer
from rag.loaders import load
from rag.manifest import Manifest
from rag.store import Store, collection_name
from tests.helpers import REPO

DOCS = {
    "steel.txt": "Henry Bessemer's converter blew air through molten pig iron to make cheap steel in 1856.",
    "silk.md": "The Tomioka Silk Mill opened in Gunma Prefecture in 1872 with French reeling machines.",
    "plan.txt": "Gosplan drew up the targets of the first Five-Year Plan, adopted in 1928.",
}
GHOST = ("ghost.txt", "The Quokkaville tramway carried zinc ore to the smelter from 1911 onwards.")


def write_corpus(folder: Path, docs: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")


def held(settings: Settings) -> dict[str, set[str]]:
    return Store(settings).sources()


def manifest_of(settings: Settings) -> Manifest:
    return Manifest.load(settings.data_dir / "manifest.json", collection=collection_name(settings))


def clean_build(settings: Settings, embedder, tmp_path: Path) -> dict[str, set[str]]:
    """What a fresh index of the same corpus holds (chunk ids depend on source, offset and text only)."""
    clean = settings.with_updates(data_dir=tmp_path / "clean-data")
    Indexer(clean, embedder=embedder).sync()
    return held(clean)


def assert_agrees_with_clean_build(settings: Settings, embedder, tmp_path: Path) -> None:
    got = held(settings)
    assert got == clean_build(settings, embedder, tmp_path)
    assert {s: set(e.chunk_ids) for s, e in manifest_of(settings).entries.items()} == got
    assert journal.pending_sources(settings.data_dir) == {}


def write_chunks_of(settings: Settings, indexer: Indexer, embedder, name: str) -> list[str]:
    """Write a file's chunks to the store exactly as a commit does before its manifest save."""
    path = settings.corpus_dir / name
    chunks = split(load(path, source=name, max_bytes=10**6), indexer.splitter)
    Store(settings).upsert([str(c.id) for c in chunks], [c.page_content for c in chunks],
                           [c.metadata for c in chunks], embedder.embed([c.page_content for c in chunks]))
    return [str(c.id) for c in chunks]


@pytest.fixture
def indexed(settings: Settings, embedder) -> Indexer:
    write_corpus(settings.corpus_dir, DOCS)
    indexer = Indexer(settings, embedder=embedder)
    indexer.sync()
    return indexer


# -- ghost chunks: written, then killed before the manifest save, then the file deleted -----------
@pytest.mark.parametrize("journaled", [True, False], ids=["journaled", "older-crash-without-journal"])
def test_ghost_chunks_of_a_killed_write_are_removed_from_chroma_and_bm25(
        indexed, settings, embedder, tmp_path, journaled):
    write_corpus(settings.corpus_dir, dict([GHOST]))
    if journaled:
        journal.begin(settings.data_dir, "write", [GHOST[0]])
    ghost_ids = write_chunks_of(settings, indexed, embedder, GHOST[0])
    (settings.corpus_dir / GHOST[0]).unlink()  # the user deletes the file before the next run
    assert Store(settings).keyword_search("Quokkaville tramway", k=3)

    report = indexed.sync()

    assert report.chunks_embedded == 0
    assert Store(settings).get(ghost_ids) == []
    assert Store(settings).keyword_search("Quokkaville tramway", k=3) == []
    assert_agrees_with_clean_build(settings, embedder, tmp_path)


def test_killed_update_is_finished_without_embedding_again(indexed, settings, embedder, tmp_path):
    (settings.corpus_dir / "plan.txt").write_text(DOCS["plan.txt"] + " Its targets were raised in 1929.")
    journal.begin(settings.data_dir, "write", ["plan.txt"])
    write_chunks_of(settings, indexed, embedder, "plan.txt")  # killed here: old and new chunks both stored

    report = indexed.sync()

    assert report.updated == ["plan.txt"] and report.chunks_embedded == 0
    assert_agrees_with_clean_build(settings, embedder, tmp_path)


# -- listed but unsearchable: a removal killed between its steps ----------------------------------
def test_removal_killed_after_deleting_chunks_is_finished_by_the_next_run(indexed, settings, embedder, tmp_path):
    store = Store(settings)
    journal.begin(settings.data_dir, "remove", ["silk.md"])
    store.delete([c.id for c in store.chunks_of("silk.md")])  # killed here: file and entry remain

    report = indexed.sync()

    assert "silk.md" not in manifest_of(settings).entries and report.unchanged != []
    assert not (settings.corpus_dir / "silk.md").exists()
    assert_agrees_with_clean_build(settings, embedder, tmp_path)


def test_document_listed_without_chunks_is_indexed_again_not_unchanged_forever(indexed, settings, embedder, tmp_path):
    store = Store(settings)
    store.delete([c.id for c in store.chunks_of("silk.md")])  # lost without any journal

    report = indexed.sync()

    assert report.updated == ["silk.md"] and "silk.md" not in report.unchanged
    assert [i for i, _ in Store(settings).keyword_search("Tomioka silk", k=1)]
    assert_agrees_with_clean_build(settings, embedder, tmp_path)


def test_removing_a_ghost_document_finds_nothing_to_remove_once_repaired(indexed, settings, embedder):
    write_corpus(settings.corpus_dir, dict([GHOST]))
    write_chunks_of(settings, indexed, embedder, GHOST[0])

    report = indexed.remove([GHOST[0]])  # the manifest never listed it: the next full sync repairs

    assert report.removed == [] and "not in the index" in report.failed[0][1]
    indexed.sync()
    assert GHOST[0] in manifest_of(settings).entries  # its file is still there: indexed properly now


# -- a real kill at a chosen step ----------------------------------------------------------------
KILLED_SYNC = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rag.config import build_settings
    from rag.indexer import Indexer

    class SignalThenWait:
        def files(self, total): pass
        def chunks(self, total): pass
        def file_done(self, source): pass
        def embedded(self, n):  # vectors computed, about to be written: the parent kills us here
            Path(sys.argv[3]).write_text("embedded")
            time.sleep(120)

    settings = build_settings(corpus_dir=sys.argv[1], data_dir=sys.argv[2])
    Indexer(settings, progress=SignalThenWait()).sync()
""")


def test_sync_killed_while_writing_is_repaired_by_the_next_run(indexed, settings, embedder, tmp_path):
    write_corpus(settings.corpus_dir, dict([GHOST]))
    (settings.corpus_dir / "steel.txt").write_text(DOCS["steel.txt"] + " Sheffield adopted it slowly.")
    script, signal = tmp_path / "killed.py", tmp_path / "step"
    script.write_text(KILLED_SYNC)
    child = subprocess.Popen([sys.executable, str(script), str(settings.corpus_dir), str(settings.data_dir),
                              str(signal)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        deadline = time.monotonic() + 300
        while not signal.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert signal.exists(), "the ingest never reached the embedding step"
    finally:
        child.kill()
        child.wait()
    assert journal.pending_sources(settings.data_dir)  # the kill left a journaled write

    report = indexed.sync()

    assert sorted(report.added + report.updated) == [GHOST[0], "steel.txt"]
    assert_agrees_with_clean_build(settings, embedder, tmp_path)


# -- leftovers -------------------------------------------------------------------------------------
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_killed_writers_are_cleaned_at_start(indexed, settings):
    pid = dead_pid()
    keyword_dir = Store(settings).keywords.folder
    leftovers = [settings.corpus_dir / ".report.txt.part", settings.corpus_dir / f".notes.md.{pid}.part",
                 settings.data_dir / ".manifest.x1y2z3.tmp",
                 keyword_dir.with_name(f".{keyword_dir.name}.{pid}.abcdef"),
                 keyword_dir.with_name(f".{keyword_dir.name}.old.{pid}.abcdef")]
    for path in leftovers:
        if path.name.endswith((".part", ".tmp")):
            path.write_text("half")
        else:
            path.mkdir()
    live = keyword_dir.with_name(f".{keyword_dir.name}.{os.getpid()}.fedcba")  # ours, still busy
    live.mkdir()

    indexed.sync()

    assert [p for p in leftovers if p.exists()] == []
    assert live.exists()
    assert sorted(manifest_of(settings).entries) == sorted(DOCS)


# -- reports and messages --------------------------------------------------------------------------
def test_add_reports_the_seconds_it_took(indexed, settings, tmp_path):
    outside = tmp_path / "incoming" / "rail.txt"
    outside.parent.mkdir()
    outside.write_text("The Turksib railway linking Turkestan and Siberia was completed in 1930.")

    report = indexed.add([str(outside)])

    assert report.added == ["rail.txt"]
    assert report.to_dict()["seconds"] > 0


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield mount
    finally:
        from rag.chroma_client import close_all

        close_all()
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError:
            pass
    return filler


def test_full_disk_says_the_disk_is_full_and_the_next_run_repairs(small_disk, settings, embedder, tmp_path):
    disk = settings.with_updates(data_dir=small_disk / "data")
    write_corpus(disk.corpus_dir, DOCS)
    indexer = Indexer(disk, embedder=embedder)
    indexer.sync()
    write_corpus(disk.corpus_dir, {"long.txt": " ".join(f"Plan clause {i} set a quota." for i in range(4000))})
    filler = fill(small_disk)

    with pytest.raises(StoreError, match=r"disk holding .* is full"):
        indexer.sync()
    filler.unlink()
    indexer.sync()

    assert_agrees_with_clean_build(disk, embedder, tmp_path)


# -- readers in other processes ----------------------------------------------------------------
SERVING_APP = textwrap.dedent("""
    import json, sys, threading, time
    from pathlib import Path
    from rag.config import build_settings
    from rag.pipeline import retrieve_passages

    settings = build_settings(corpus_dir=sys.argv[1], data_dir=sys.argv[2])
    ready, stop = Path(sys.argv[3]), Path(sys.argv[4])
    errors, asked = [], [0]

    def serve(question):
        while not stop.exists():
            try:
                retrieve_passages(question, settings=settings, k=3)
                asked[0] += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            ready.write_text("serving")

    threads = [threading.Thread(target=serve, args=(q,)) for q in
               ("Who invented the converter?", "When did the silk mill open?", "What did Gosplan plan?")]
    for t in threads: t.start()
    for t in threads: t.join()
    top = retrieve_passages("Which railway linked Turkestan and Siberia?", settings=settings, k=1).passages
    gone = retrieve_passages("Tomioka Silk Mill Gunma", settings=settings, k=5).passages
    print(json.dumps({"errors": errors, "asked": asked[0], "top": top[0].source if top else None,
                      "silk_left": [p.source for p in gone if p.source == "silk.md"]}))
""")


@pytest.mark.slow
def test_app_process_sees_documents_added_and_removed_by_another_process_without_errors(
        indexed, settings, tmp_path):
    script, ready, stop = tmp_path / "serve.py", tmp_path / "ready", tmp_path / "stop"
    script.write_text(SERVING_APP)
    app = subprocess.Popen([sys.executable, str(script), str(settings.corpus_dir), str(settings.data_dir),
                            str(ready), str(stop)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and app.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), "the serving process never answered"
        outside = tmp_path / "incoming" / "rail.txt"
        outside.parent.mkdir()
        outside.write_text("The Turksib railway linking Turkestan and Siberia was completed in 1930.")
        cli = [sys.executable, "ingest.py", "--corpus", str(settings.corpus_dir), "--data-dir", str(settings.data_dir)]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for command in (["add", str(outside)], ["remove", "silk.md"]):
            done = subprocess.run(cli + command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
    finally:
        stop.write_text("stop")
        out, _ = app.communicate(timeout=300)
    result = json.loads(out.strip().splitlines()[-1])

    assert result["errors"] == []
    assert result["asked"] > 0
    assert result["top"] == "rail.txt"
    assert result["silk_left"] == []


# -- the tokenizer is not shared -------------------------------------------------------------------
def test_chunking_while_embedding_in_other_threads_never_fails(indexed, embedder):
    text = " ".join(f"Sentence {i} of the long upload mentions the Magnitogorsk steel works." for i in range(600))
    errors: list[str] = []

    def run(work) -> None:
        try:
            for _ in range(3):
                work()
        except Exception as exc:  # anything: the point is that nothing is raised
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(lambda: indexed.splitter.split_text(text),)),
               threading.Thread(target=run, args=(lambda: embedder.embed([text[:3000], "short", text[:900]]),)),
               threading.Thread(target=run, args=(lambda: embedder.embed(["another short one", text[:2000]]),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []


# -- index identity ---------------------------------------------------------------------------------
def test_moving_to_another_corpus_folder_is_a_stale_index_naming_both(indexed, settings, tmp_path):
    other = settings.with_updates(corpus_dir=tmp_path / "elsewhere")
    write_corpus(other.corpus_dir, DOCS)

    with pytest.raises(StaleIndexError, match=r"corpus folder .*corpus, not .*elsewhere.*--rebuild"):
        Indexer(other).sync()


def test_index_name_follows_the_data_folder_and_corpus_and_survives_copying_both(indexed, settings, tmp_path):
    second = settings.with_updates(data_dir=tmp_path / "second-data")
    Store(second, create=True)
    shutil.copytree(tmp_path, tmp_path.parent / f"{tmp_path.name}-copy", ignore=shutil.ignore_patterns("*.lock"))
    copied = settings.with_updates(corpus_dir=tmp_path.parent / f"{tmp_path.name}-copy" / "corpus",
                                   data_dir=tmp_path.parent / f"{tmp_path.name}-copy" / "data")

    assert collection_name(second) != collection_name(settings)  # same corpus, another data folder
    assert collection_name(copied) == collection_name(settings)
    assert sorted(e.source for e in Indexer(copied).documents()) == sorted(DOCS)
    assert 3 <= len(collection_name(settings)) <= 63


@pytest.mark.slow
def test_two_data_folders_on_one_chroma_server_keep_separate_collections(empty_chroma_server, tmp_path, embedder):
    first = build_settings(corpus_dir=tmp_path / "c1", data_dir=tmp_path / "d1", chroma_url=empty_chroma_server)
    second = build_settings(corpus_dir=tmp_path / "c2", data_dir=tmp_path / "d2", chroma_url=empty_chroma_server)
    write_corpus(first.corpus_dir, {"steel.txt": DOCS["steel.txt"]})
    write_corpus(second.corpus_dir, {"silk.md": DOCS["silk.md"]})

    Indexer(first, embedder=embedder).sync()
    Indexer(second, embedder=embedder).sync()
    Indexer(first, embedder=embedder).sync()  # must not treat the other corpus as stale or remove it

    assert collection_name(first) != collection_name(second)
    assert list(held(first)) == ["steel.txt"]
    assert list(held(second)) == ["silk.md"]
