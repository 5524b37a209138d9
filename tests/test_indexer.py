"""The indexer on real files, the real model and real Chroma: incremental sync, bad input, crashes, locks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag.chunking import split
from rag.config import Settings, build_settings
from rag.errors import IngestError, StaleIndexError, StoreError
from rag.indexer import COMMIT_CHUNKS, Indexer
from rag.loaders import load
from rag.manifest import Entry, Manifest, ingest_lock
from rag.store import Store, collection_name
from tests.helpers import REPO, SEED, make_docx, make_pdf

FIXTURE_SOURCES = ["bessemer-process.txt", "gosplan.html", "meiji-industrialisation.md", "zollverein.txt"]


def manifest_of(settings: Settings) -> Manifest:
    return Manifest.load(settings.data_dir / "manifest.json", collection=collection_name(settings))


def assert_consistent(settings: Settings) -> Manifest:
    """Chroma holds exactly the chunks the manifest lists, each once, under the right source."""
    manifest = manifest_of(settings)
    store = Store(settings)
    got = store.collection.get(include=["metadatas"])
    stored = dict(zip(got["ids"], (m["source"] for m in got["metadatas"])))
    listed = {cid: e.source for e in manifest.entries.values() for cid in e.chunk_ids}
    assert stored == listed
    assert store.count() == sum(e.chunks for e in manifest.entries.values())
    assert all(e.chunks == len(e.chunk_ids) == len(set(e.chunk_ids)) for e in manifest.entries.values())
    return manifest


@pytest.fixture
def indexer(settings, embedder) -> Indexer:
    return Indexer(settings, embedder=embedder)


@pytest.fixture
def synced(indexer, fixture_corpus):
    """The fixture corpus, indexed once."""
    report = indexer.sync()
    assert report.failed == []
    return report


# -- first sync and incremental behaviour ----------------------------------------------------
def test_first_sync_indexes_every_fixture_file(synced, settings):
    assert sorted(synced.added) == FIXTURE_SOURCES
    assert synced.chunks_embedded == synced.chunks_total > 0
    manifest = assert_consistent(settings)
    assert sorted(manifest.entries) == FIXTURE_SOURCES
    meiji = manifest.entries["meiji-industrialisation.md"]
    assert meiji.title == "Industrialisation in Meiji Japan" and meiji.authors == "Aiko Tanaka"
    assert meiji.type == "md" and meiji.added == meiji.updated


def test_stored_chunks_carry_source_offsets_and_text(synced, settings):
    store = Store(settings)

    chunks = store.chunks_of("gosplan.html")

    assert chunks
    assert any("founded in February 1921" in c.text for c in chunks)
    for c in chunks:
        assert c.metadata["title"] == "Gosplan and the Five-Year Plans"
        assert c.metadata["end"] - c.metadata["start"] == len(c.text)


def test_ingest_twice_embeds_nothing(synced, indexer, settings):
    count = Store(settings).count()

    again = indexer.sync()

    assert again.chunks_embedded == 0
    assert sorted(again.unchanged) == FIXTURE_SOURCES
    assert again.added == again.updated == again.removed == again.failed == []
    assert again.chunks_total == count


def test_unchanged_corpus_does_not_load_the_model(synced, settings):
    fresh = Indexer(settings)  # no embedder given: loading one would show in _embedder

    report = fresh.sync()

    assert report.chunks_embedded == 0
    assert fresh._embedder is None


def test_unchanged_sync_does_not_rewrite_the_manifest(synced, indexer, settings):
    path = settings.data_dir / "manifest.json"
    before = path.stat()  # every save writes a new file and renames it over the old one

    indexer.sync()

    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_changing_one_file_reembeds_only_that_file(synced, indexer, settings, fixture_corpus):
    zollverein = settings.corpus_dir / "zollverein.txt"
    zollverein.write_text(zollverein.read_text() + "\nAustria stayed outside the Zollverein.\n")
    before = manifest_of(settings).entries

    report = indexer.sync()

    assert report.updated == ["zollverein.txt"]
    assert sorted(report.unchanged) == sorted(set(FIXTURE_SOURCES) - {"zollverein.txt"})
    after = assert_consistent(settings).entries
    assert 0 < report.chunks_embedded <= after["zollverein.txt"].chunks
    for source in set(FIXTURE_SOURCES) - {"zollverein.txt"}:
        assert after[source].chunk_ids == before[source].chunk_ids
    assert after["zollverein.txt"].added == before["zollverein.txt"].added
    assert any("Austria stayed outside" in c.text for c in Store(settings).chunks_of("zollverein.txt"))


def test_editing_one_paragraph_reuses_vectors_of_unchanged_passages(indexer, settings):
    seed = settings.corpus_dir / SEED.name
    seed.write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    small = settings.with_updates(**{"chunking.chunk_tokens": 64, "chunking.overlap_tokens": 0})
    indexer = Indexer(small, embedder=indexer.embedder)
    first = indexer.sync()
    total = first.chunks_total
    assert total > 5
    text = seed.read_text(encoding="utf-8")
    seed.write_text(text.replace("Madison's numbers of GDP/capita", "Maddison's estimates of GDP per head"),
                    encoding="utf-8")

    report = indexer.sync()

    assert report.updated == [SEED.name]
    assert 0 < report.chunks_embedded < total
    assert report.chunks_reused > 0
    assert report.chunks_embedded + report.chunks_reused == manifest_of(small).entries[SEED.name].chunks
    assert_consistent(small)


def test_deleting_a_file_removes_its_chunks(synced, indexer, settings):
    store = Store(settings)
    before = store.count()
    gone = manifest_of(settings).entries["bessemer-process.txt"].chunks
    (settings.corpus_dir / "bessemer-process.txt").unlink()

    report = indexer.sync()

    assert report.removed == ["bessemer-process.txt"]
    assert store.count() == before - gone == report.chunks_total
    assert store.chunks_of("bessemer-process.txt") == []
    assert "bessemer-process.txt" not in assert_consistent(settings).entries


def test_updates_leave_no_duplicate_chunks(synced, indexer, settings):
    meiji = settings.corpus_dir / "meiji-industrialisation.md"
    original = meiji.read_text()
    for version in range(3):
        meiji.write_text(original.replace("in 1872", f"in {1872 + version}"))
        indexer.sync()
    meiji.write_text(original)

    indexer.sync()

    assert_consistent(settings)
    assert Store(settings).count() == synced.chunks_total


def test_renamed_file_is_indexed_under_its_new_name_only(synced, indexer, settings):
    old, new = settings.corpus_dir / "zollverein.txt", settings.corpus_dir / "customs-union.txt"
    old.rename(new)

    report = indexer.sync()

    assert report.added == ["customs-union.txt"] and report.removed == ["zollverein.txt"]
    assert Store(settings).chunks_of("zollverein.txt") == []
    assert sorted(assert_consistent(settings).entries) == sorted(
        set(FIXTURE_SOURCES) - {"zollverein.txt"} | {"customs-union.txt"})


def test_rebuild_reembeds_everything(synced, indexer, settings):
    report = indexer.sync(rebuild=True)

    assert sorted(report.added) == FIXTURE_SOURCES
    assert report.chunks_embedded == synced.chunks_total == report.chunks_total
    assert_consistent(settings)


def test_sync_of_only_some_files_keeps_the_others(synced, indexer, settings):
    extra = settings.corpus_dir / "nep.txt"
    extra.write_text("The New Economic Policy allowed small private trade from 1921.")

    report = indexer.sync(only=[extra])

    assert report.added == ["nep.txt"] and report.removed == []
    assert sorted(assert_consistent(settings).entries) == sorted(FIXTURE_SOURCES + ["nep.txt"])


def test_json_summary_has_the_documented_keys(synced):
    data = synced.to_dict()

    required = {"added", "updated", "unchanged", "removed", "failed", "chunks_embedded", "chunks_total",
                "seconds"}
    assert required <= set(data) <= required | {"chunks_reused"}
    assert data["added"] == 4 and data["failed"] == []
    json.dumps(data)


# -- all file types and awkward names ----------------------------------------------------------
def test_every_supported_type_is_indexed(indexer, settings):
    root = settings.corpus_dir
    make_pdf(root / "dnieper.pdf", ["The Dnieper dam opened in 1932.", "Magnitogorsk was built in the Urals."],
             title="Soviet Projects")
    make_docx(root / "turksib.docx", ["The Turksib railway was finished in 1930."], title="Turksib")
    (root / "a.htm").write_text("<html><body><article><p>The Stalingrad Tractor Plant opened in 1930."
                                "</p></article></body></html>")
    (root / "notes.markdown").write_text("# Kolkhoz\n\nCollective farms spread after 1929.")

    report = indexer.sync()

    assert report.failed == []
    entries = assert_consistent(settings).entries
    assert {s: e.type for s, e in entries.items()} == {
        "dnieper.pdf": "pdf", "turksib.docx": "docx", "a.htm": "html", "notes.markdown": "md"}
    pages = {c.metadata["page"] for c in Store(settings).chunks_of("dnieper.pdf")}
    assert pages == {1, 2}


def test_file_names_with_spaces_quotes_and_accents_are_indexed(indexer, settings):
    names = ["l'économie \"planifiée\" 1928.txt", "with  two spaces.md", "日本の工業化.txt", "sub dir/ü.txt"]
    for n, name in enumerate(names):
        path = settings.corpus_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"Document number {n} about planning.", encoding="utf-8")

    report = indexer.sync()

    assert report.failed == []
    assert sorted(report.added) == sorted(names)
    store = Store(settings)
    for name in names:
        assert len(store.chunks_of(name)) == 1
    assert indexer.sync().chunks_embedded == 0


def test_latin1_and_cp1252_files_are_indexed_with_their_characters(indexer, settings):
    (settings.corpus_dir / "latin1.txt").write_bytes("Un café près de l'usine.".encode("latin-1"))
    (settings.corpus_dir / "cp1252.txt").write_bytes("The \u201cplan\u201d cost 5 \u20ac.".encode("cp1252"))

    report = indexer.sync()

    assert report.failed == []
    store = Store(settings)
    assert store.chunks_of("latin1.txt")[0].text == "Un café près de l'usine."
    assert store.chunks_of("cp1252.txt")[0].text == "The \u201cplan\u201d cost 5 \u20ac."


# -- bad input: one error per file, the others still indexed -----------------------------------
def make_bad_files(root: Path) -> dict[str, str]:
    """Write one file per kind of bad input; return source -> expected reason."""
    (root / "empty.txt").write_bytes(b"")
    (root / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n")
    make_pdf(root / "scan.pdf", [""])
    (root / "huge.txt").write_text("Planned economy. " * 1500)  # 25.5 kB
    (root / "data.xyz").write_text("unsupported")
    (root / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    return {
        "empty.txt": "file is empty",
        "photo.txt": "looks like a binary file",
        "broken.pdf": "corrupt or unreadable PDF",
        "scan.pdf": "no text layer",
        "huge.txt": "over the 0.02 MB limit",
        "data.xyz": "unsupported file type '.xyz'",
        "broken.docx": "corrupt or unreadable Word file",
    }


def test_bad_files_each_fail_cleanly_and_the_rest_is_indexed(settings, embedder, fixture_corpus):
    expected = make_bad_files(settings.corpus_dir)
    indexer = Indexer(settings.with_updates(max_file_mb=0.02), embedder=embedder)

    report = indexer.sync()

    failed = dict(report.failed)
    assert set(failed) == set(expected)
    for source, reason in expected.items():
        assert failed[source].startswith(f"{source}: ")
        assert reason in failed[source]
        assert "\n" not in failed[source]
    assert sorted(report.added) == FIXTURE_SOURCES
    assert sorted(assert_consistent(settings).entries) == FIXTURE_SOURCES


def test_size_limit_comes_from_the_environment(monkeypatch, tmp_path, embedder):
    monkeypatch.setenv("FOOTNOTE_MAX_FILE_MB", "0.001")
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "small.txt").write_text("Gosplan set targets.")
    (corpus_dir / "big.txt").write_text("Gosplan set targets. " * 100)
    settings = build_settings(corpus_dir=corpus_dir)

    report = Indexer(settings, embedder=embedder).sync()

    assert report.added == ["small.txt"]
    assert [s for s, _ in report.failed] == ["big.txt"]
    assert "over the 0.001 MB limit" in report.failed[0][1]


def test_a_file_that_failed_is_indexed_once_fixed(indexer, settings):
    bad = settings.corpus_dir / "later.txt"
    bad.write_bytes(b"")
    assert [s for s, _ in indexer.sync().failed] == ["later.txt"]
    bad.write_text("Now it has text about the Turksib.")

    report = indexer.sync()

    assert report.added == ["later.txt"] and report.failed == []


class DeleteNextFile:
    """A Progress that deletes the next corpus file as soon as one is done, as a user might."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.deleted: list[str] = []

    def files(self, total: int) -> None:
        pass

    def file_done(self, source: str) -> None:
        if not self.deleted:
            names = [p.name for p in self.paths]
            victim = self.paths[names.index(source) + 1]
            victim.unlink()
            self.deleted.append(victim.name)

    def chunks(self, total: int) -> None:
        pass

    def embedded(self, n: int) -> None:
        pass


def test_file_vanishing_mid_run_is_a_clean_error(settings, embedder, fixture_corpus):
    progress = DeleteNextFile(sorted(fixture_corpus))

    report = Indexer(settings, embedder=embedder, progress=progress).sync()

    assert progress.deleted == ["gosplan.html"]
    assert report.failed == [("gosplan.html", "gosplan.html: file disappeared before it could be read.")]
    assert sorted(report.added) == sorted(set(FIXTURE_SOURCES) - {"gosplan.html"})
    assert_consistent(settings)


# -- index identity ------------------------------------------------------------------------------
def test_changed_chunk_size_is_a_stale_index_until_rebuilt(synced, settings, embedder):
    other = settings.with_updates(**{"chunking.chunk_tokens": 120})

    with pytest.raises(StaleIndexError, match=r"python ingest.py --rebuild"):
        Indexer(other, embedder=embedder).sync()
    report = Indexer(other, embedder=embedder).sync(rebuild=True)

    assert sorted(report.added) == FIXTURE_SOURCES
    assert_consistent(other)
    with pytest.raises(StaleIndexError):
        Store(settings)


# -- crash safety ----------------------------------------------------------------------------------
def test_leftover_manifest_temp_file_never_replaces_the_manifest_and_is_cleaned_up(synced, indexer, settings):
    leftover = settings.data_dir / ".manifest.abc123.tmp"
    leftover.write_text('{"collection": "half-writ')
    good = (settings.data_dir / "manifest.json").read_text()

    report = indexer.sync()

    assert report.chunks_embedded == 0 and sorted(report.unchanged) == FIXTURE_SOURCES
    assert json.loads((settings.data_dir / "manifest.json").read_text()) == json.loads(good)
    assert not leftover.exists()


def test_unreadable_manifest_says_to_rebuild_and_rebuild_recovers(synced, indexer, settings):
    (settings.data_dir / "manifest.json").write_text('{"collection": "footnote_')

    with pytest.raises(StoreError, match=r"manifest .* is unreadable.*python ingest.py --rebuild"):
        indexer.sync()
    report = indexer.sync(rebuild=True)

    assert sorted(report.added) == FIXTURE_SOURCES
    assert_consistent(settings)


def test_failed_manifest_write_keeps_the_old_manifest(tmp_path):
    path = tmp_path / "manifest.json"
    manifest = Manifest(path, "footnote_x")
    manifest.entries["a.txt"] = Entry("a.txt", "f", "c", "A", "txt", 1, "t0", "t0", chunk_ids=["id1"])
    manifest.save()
    before = path.read_text()
    manifest.entries["b.txt"] = Entry("b.txt", "f", "c", object(), "txt", 1, "t1", "t1")  # type: ignore[arg-type]

    with pytest.raises(TypeError):
        manifest.save()

    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
    assert list(Manifest.load(path, collection="footnote_x").entries) == ["a.txt"]


def test_chunks_written_without_manifest_record_are_cleaned_up(synced, indexer, settings, embedder):
    """A crash between Chroma writes and the manifest save leaves chunks the manifest does not list."""
    meiji = settings.corpus_dir / "meiji-industrialisation.md"
    meiji.write_text(meiji.read_text().replace("in 1901", "in 1901, after long delays,"))
    new_chunks = split(load(meiji, source=meiji.name, max_bytes=10**6), indexer.splitter)
    assert all(c.id for c in new_chunks)  # split() names every chunk
    ids = [str(c.id) for c in new_chunks]
    store = Store(settings)
    store.upsert(ids, [c.page_content for c in new_chunks],
                 [c.metadata for c in new_chunks], embedder.embed([c.page_content for c in new_chunks]))
    assert store.count() > sum(e.chunks for e in manifest_of(settings).entries.values())

    report = indexer.sync()

    assert report.updated == [meiji.name]
    assert report.chunks_embedded == 0  # the crashed run's vectors are reused
    assert_consistent(settings)


CRASHING_SYNC = textwrap.dedent("""
    import os, sys
    from rag.config import build_settings
    from rag.indexer import Indexer

    class CrashAfterFirstCommit:
        def files(self, total): pass
        def chunks(self, total): pass
        def embedded(self, n): pass
        def file_done(self, source):
            if source == "c-taiga.txt":  # a and b were committed as one group just before
                sys.stdout.write("crashing\\n"); sys.stdout.flush()
                os._exit(1)

    settings = build_settings(corpus_dir=sys.argv[1], data_dir=sys.argv[2],
                              chunking={"chunk_tokens": 16, "overlap_tokens": 0})
    Indexer(settings, progress=CrashAfterFirstCommit()).sync()
    print("finished")
""")


def crash_corpus(root: Path) -> None:
    """Two files of about COMMIT_CHUNKS/2 + 10 chunks each (16-token chunks), then a small one."""
    per_file = COMMIT_CHUNKS // 2 + 10
    for name, word in (("a-tundra.txt", "tundra"), ("b-steppe.txt", "steppe")):
        (root / name).write_text("\n".join(
            f"Line {i} of the {word} file: plan target number {i} was met early." for i in range(per_file)))
    (root / "c-taiga.txt").write_text("The taiga file mentions the Baikal-Amur Mainline.")


def run_crashing_sync(settings: Settings, tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_SYNC)
    result = subprocess.run([sys.executable, str(script), str(settings.corpus_dir), str(settings.data_dir)],
                            cwd=REPO, capture_output=True, text=True, timeout=180,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 1, result.stderr
    assert result.stdout == "crashing\n"


@pytest.mark.slow
def test_sync_after_a_crash_keeps_committed_work_and_ends_consistent_and_searchable(tmp_path, embedder):
    settings = build_settings(corpus_dir=tmp_path / "corpus", data_dir=tmp_path / "data",
                              chunking={"chunk_tokens": 16, "overlap_tokens": 0})
    settings.corpus_dir.mkdir()
    (settings.corpus_dir / "0-base.txt").write_text("The base file is about the Donbas coal basin.")
    Indexer(settings, embedder=embedder).sync()
    assert [cid for cid, _ in Store(settings).keyword_search("Donbas", k=5)]
    crash_corpus(settings.corpus_dir)

    run_crashing_sync(settings, tmp_path)

    crashed = assert_consistent(settings)
    assert sorted(crashed.entries) == ["0-base.txt", "a-tundra.txt", "b-steppe.txt"]
    (settings.corpus_dir / "c-taiga.txt").unlink()  # the one file the crashed run had not committed
    report = Indexer(settings, embedder=embedder).sync()
    assert report.chunks_embedded == 0 and report.added == []
    assert sorted(report.unchanged) == ["0-base.txt", "a-tundra.txt", "b-steppe.txt"]
    assert_consistent(settings)
    # The crashed run wrote chunks but never got to mark the index changed; keyword search
    # (BM25 rebuilt on a version change) must still see them.
    hits = Store(settings).keyword_search("tundra", k=5)
    assert hits
    assert {cid for cid, _ in hits} <= set(manifest_of(settings).entries["a-tundra.txt"].chunk_ids)


# -- lock -----------------------------------------------------------------------------------------
def test_second_ingest_waits_then_fails_while_the_lock_is_held(fixture_corpus, settings, embedder):
    impatient = Indexer(settings.with_updates(lock_timeout=1), embedder=embedder)

    with ingest_lock(settings.data_dir, timeout=0):
        started = time.monotonic()
        with pytest.raises(IngestError, match="Another ingest is running") as info:
            impatient.sync()
        waited = time.monotonic() - started

    assert 0.9 <= waited < 10
    assert str(settings.data_dir) in str(info.value)
    assert impatient.sync().added  # free again once the holder is done
