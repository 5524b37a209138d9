"""Hostile and broken files: one bad file is one clear error, never a crash of a sync, an app
start or the other files of a command; zip bombs, page floods and unusable data folders."""

from __future__ import annotations

import io
import logging
import os
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from rag import corpus
from rag.cli import ingest_main
from rag.config import Settings
from rag.errors import FootnoteError, IngestError, StoreError
from rag.indexer import Indexer
from rag.limits import LoadLimits
from rag.loaders import load
from rag.store import Store
from tests.helpers import make_docx, make_pdf

MB = 1_000_000
GOOD = {
    "bessemer.txt": "Henry Bessemer patented his converter in 1856; it blew air through molten iron.",
    "turksib.md": "# Turksib\n\nThe Turkestan-Siberia railway was completed in 1930.",
}


def write_good(root: Path) -> list[str]:
    for name, text in GOOD.items():
        (root / name).write_text(text, encoding="utf-8")
    return sorted(GOOD)


def broken_xml_docx(path: Path) -> Path:
    """A real Word file whose word/document.xml is cut off mid-element (lxml XMLSyntaxError)."""
    good = make_docx(path.with_name("template-" + path.name), ["The Dnieper dam opened in 1932."])
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            data = source.read(entry.filename)
            if entry.filename == "word/document.xml":
                data = data[: len(data) // 2]
            target.writestr(entry, data)
    good.unlink()
    return path


def zip_bomb_docx(path: Path, *, megabytes: int, level: int = 1) -> Path:
    """A valid Word file whose document.xml is padded with ``megabytes`` MB of deflated spaces
    (level 1 compresses about 200:1 and fast; level 9 about 1000:1)."""
    good = make_docx(path.with_name("template-" + path.name), ["Padding follows this paragraph."])
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as target:
        for entry in source.infolist():
            data = source.read(entry.filename)
            if entry.filename != "word/document.xml":
                target.writestr(entry.filename, data)
                continue
            head, tail = data.split(b"</w:body>")
            with target.open("word/document.xml", "w", force_zip64=True) as handle:
                handle.write(head)
                block = b" " * (1 << 20)
                for _ in range(megabytes):
                    handle.write(block)
                handle.write(b"</w:body>" + tail)
    good.unlink()
    return path


@pytest.fixture
def indexer(settings: Settings, embedder) -> Indexer:
    return Indexer(settings, embedder=embedder)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``ingest_main`` here; put back the logging handlers it installs. Returns code, out, err."""
    monkeypatch.setenv("COLUMNS", "300")
    names = ["rag", "httpx", "chromadb", "sentence_transformers", "transformers", "bm25s", "pypdf"]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}

    def call(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = ingest_main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield call
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)


def stored_sources(settings: Settings) -> set[str]:
    got = Store(settings).collection.get(include=["metadatas"])
    return {m["source"] for m in got["metadatas"]}


# -- a malformed Word file -----------------------------------------------------------------------
def test_malformed_xml_docx_is_a_clean_error_with_the_parser_error_as_cause(tmp_path):
    path = broken_xml_docx(tmp_path / "broken.docx")

    with pytest.raises(IngestError, match=r"^broken\.docx: corrupt or unreadable Word file") as info:
        load(path, source="broken.docx", max_bytes=20 * MB)

    assert "\n" not in str(info.value)
    assert type(info.value.__cause__).__name__ == "XMLSyntaxError"


def test_malformed_docx_fails_alone_is_remembered_and_can_be_removed(indexer, settings, embedder):
    good = write_good(settings.corpus_dir)
    broken_xml_docx(settings.corpus_dir / "broken.docx")

    report = indexer.sync()

    assert sorted(report.added) == good
    assert [s for s, _ in report.failed] == ["broken.docx"]
    reason = report.failed[0][1]
    assert reason.startswith("broken.docx: corrupt or unreadable Word file") and "\n" not in reason
    # The next app start (a full sync by a fresh Indexer) neither raises nor forgets the failure.
    again = Indexer(settings, embedder=embedder)
    assert again.sync().failed == [("broken.docx", reason)]
    assert again.failures() == {"broken.docx": reason}
    assert [e.source for e in again.documents()] == good

    removed = again.remove(["broken.docx"])

    assert removed.removed == ["broken.docx"] and removed.failed == []
    assert not (settings.corpus_dir / "broken.docx").exists()
    assert again.failures() == {}
    assert again.sync().failed == []
    assert stored_sources(settings) == set(good)


def test_failure_record_is_cleared_when_the_file_is_fixed_or_deleted(indexer, settings):
    broken_xml_docx(settings.corpus_dir / "a.docx")
    broken_xml_docx(settings.corpus_dir / "b.docx")
    indexer.sync()
    assert set(indexer.failures()) == {"a.docx", "b.docx"}

    make_docx(settings.corpus_dir / "a.docx", ["Magnitogorsk was built in the Urals."])
    (settings.corpus_dir / "b.docx").unlink()
    report = indexer.sync()

    assert report.added == ["a.docx"] and report.failed == []
    assert indexer.failures() == {}


def test_failed_file_added_through_add_is_taken_out_and_not_remembered(indexer, settings, tmp_path):
    upload = broken_xml_docx(tmp_path / "upload" / "broken.docx")

    report = indexer.add([str(upload)])

    assert [s for s, _ in report.failed] == ["broken.docx"]
    assert not (settings.corpus_dir / "broken.docx").exists()
    assert indexer.failures() == {}


def test_list_command_shows_failed_files_with_their_reason(indexer, settings, cli):
    write_good(settings.corpus_dir)
    broken_xml_docx(settings.corpus_dir / "broken.docx")
    indexer.sync()

    code, out, _ = cli("list", "--corpus", str(settings.corpus_dir), "--data-dir", str(settings.data_dir))

    assert code == 0
    assert "2 documents indexed" in out and "1 files not indexed" in out
    row = next(line for line in out.splitlines() if "broken.docx" in line)
    assert "corrupt or unreadable Word file" in row


# -- links and names -------------------------------------------------------------------------------
def test_symlink_out_of_the_corpus_is_refused_and_never_read(indexer, settings, tmp_path):
    good = write_good(settings.corpus_dir)
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("The vault code is ocelot-4417.")
    (settings.corpus_dir / "link.txt").symlink_to(secret)
    (settings.corpus_dir / "inner.txt").symlink_to(settings.corpus_dir / "bessemer.txt")

    report = indexer.sync()

    failed = dict(report.failed)
    assert list(failed) == ["link.txt"]
    assert "symbolic link to a file outside the corpus" in failed["link.txt"]
    assert sorted(report.added) == sorted([*good, "inner.txt"])
    texts = Store(settings).collection.get()["documents"]
    assert not any("ocelot-4417" in t for t in texts)
    assert indexer.failures() == failed

    indexer.remove(["link.txt"])

    assert not (settings.corpus_dir / "link.txt").is_symlink() and secret.exists()


def test_thousand_character_path_is_one_error_and_the_other_files_are_added(indexer, settings, tmp_path):
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("The Dnieper dam opened in 1932.")
    second.write_text("Magnitogorsk was built in the Urals.")
    long_name = str(tmp_path / ("x" * 1000 + ".txt"))

    report = indexer.add([str(first), long_name, str(second)])

    assert sorted(report.added) == ["first.txt", "second.txt"]
    assert len(report.failed) == 1
    item, message = report.failed[0]
    assert item == long_name and "File name too long" in message and len(message) < 200


@pytest.mark.parametrize("name", [
    "../../escape.txt", "/etc/passwd.txt", "nul\x00byte.txt", "y" * 1000 + ".txt",
    "é" * 1000 + ".txt", "\U0001F600" * 1000 + ".txt", "../" * 400 + "deep.txt",
], ids=["dotdot", "absolute", "nul", "1000-ascii", "1000-accented", "1000-emoji", "1000-dotdot"])
def test_hostile_upload_names_land_inside_the_corpus_under_safe_names(tmp_path, name):
    upload = tmp_path / "upload.bin"
    upload.write_text("The Bessemer converter blew air through molten iron.")
    root = tmp_path / "corpus"

    target = corpus.copy_in(upload, root, name=name, max_bytes=MB)

    assert target.parent == root and target.exists()
    assert len(target.name.encode()) <= 255 and "\x00" not in target.name and target.suffix == ".txt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "upload.bin"]


def test_hostile_paths_given_to_add_land_inside_the_corpus_or_fail_cleanly(indexer, settings, tmp_path):
    real = tmp_path / "uploads" / "plan.txt"
    real.parent.mkdir()
    real.write_text("Gosplan drew up the first Five-Year Plan in 1928.")
    items = [str(real.parent / ".." / "uploads" / "plan.txt"), "nul\x00byte.txt", "z" * 1000 + ".txt",
             "../" * 400 + "etc/passwd.txt"]

    report = indexer.add(items)

    assert report.added == ["plan.txt"]
    assert [item for item, _ in report.failed] == items[1:]
    assert all("\n" not in message for _, message in report.failed)
    assert [p.name for p in settings.corpus_dir.iterdir()] == ["plan.txt"]


# -- archives and PDFs -----------------------------------------------------------------------------
def test_zip_bomb_docx_is_refused_before_unpacking_with_bounded_memory(indexer, settings):
    write_good(settings.corpus_dir)
    bomb = zip_bomb_docx(settings.corpus_dir / "bomb.docx", megabytes=256)
    assert bomb.stat().st_size < 2 * MB

    tracemalloc.start()
    try:
        with pytest.raises(IngestError, match=r"^bomb\.docx: Word file would unpack to 2\d\d\.?\d* MB, "
                                              r"over the 200 MB limit") as info:
            load(bomb, source="bomb.docx", max_bytes=20 * MB, limits=LoadLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 10 * MB
    assert "FOOTNOTE_LIMITS__MAX_UNZIPPED_MB" in str(info.value)
    assert [s for s, _ in indexer.sync().failed] == ["bomb.docx"]


def test_docx_with_too_many_entries_is_refused(tmp_path):
    path = make_docx(tmp_path / "many.docx", ["A normal paragraph."])
    with zipfile.ZipFile(path, "a") as archive:
        for n in range(60):
            archive.writestr(f"customXml/extra{n}.xml", "<x/>")

    with pytest.raises(IngestError, match=r"^many\.docx: Word file holds \d+ archive entries, over the 50-entry limit"):
        load(path, source="many.docx", max_bytes=MB, limits=LoadLimits(max_archive_entries=50))
    assert load(path, source="many.docx", max_bytes=MB)  # the default limit lets it through


def test_highly_compressed_entry_is_refused_even_under_the_total_limit(tmp_path):
    path = zip_bomb_docx(tmp_path / "dense.docx", megabytes=30, level=9)

    with pytest.raises(IngestError, match=r"^dense\.docx: Word file entry 'word/document\.xml' expands [\d,]+ times"):
        load(path, source="dense.docx", max_bytes=MB)


def test_pdf_over_the_page_cap_is_refused_and_the_rest_indexed(settings, embedder):
    write_good(settings.corpus_dir)
    make_pdf(settings.corpus_dir / "long.pdf", [f"Page {n} of the plan." for n in range(1, 6)])
    capped = settings.with_updates(**{"limits.max_pdf_pages": 3})

    report = Indexer(capped, embedder=embedder).sync()

    assert dict(report.failed) == {"long.pdf": "long.pdf: PDF has 5 pages, over the 3-page limit. "
                                   "Split it into smaller files, or raise FOOTNOTE_LIMITS__MAX_PDF_PAGES."}
    assert sorted(report.added) == sorted(GOOD)


def test_pdf_page_text_is_cut_at_the_page_character_cap(tmp_path, caplog):
    words = " ".join(f"word{n}" for n in range(400))  # about 3,000 characters
    path = make_pdf(tmp_path / "dense.pdf", [words, "A short second page."])

    docs = load(path, source="dense.pdf", max_bytes=MB, limits=LoadLimits(max_page_chars=1000))

    assert len(docs[0].page_content) == 1000 and docs[0].page_content.startswith("word0 word1")
    assert docs[1].page_content.strip() == "A short second page."
    assert "page 1 has" in caplog.text and "kept the first 1000" in caplog.text


# -- text encodings and size messages --------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_text_with_a_utf16_or_utf32_byte_order_mark_is_indexed(indexer, settings, encoding):
    text = "Le plan quinquennal: l'acier de Magnitogorsk, 1932 \u2014 \u65e5\u672c."
    data = text.encode(encoding)
    if not encoding.endswith("-be"):  # "utf-16"/"utf-32" write a BOM themselves
        assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    else:
        data = ("\ufeff" + text).encode(encoding)
    (settings.corpus_dir / "wide.txt").write_bytes(data)

    report = indexer.sync()

    assert report.failed == [] and report.added == ["wide.txt"]
    assert Store(settings).chunks_of("wide.txt")[0].text == text


def test_size_message_never_shows_the_limit_as_the_size(tmp_path):
    path = tmp_path / "just-over.txt"
    path.write_text("x" * 20_000_001)

    with pytest.raises(IngestError) as info:
        load(path, source="just-over.txt", max_bytes=20 * MB)

    message = str(info.value)
    assert "over the 20 MB limit" in message
    shown = float(message.split("file is ")[1].split(" MB")[0])
    assert shown > 20


# -- the data folder -----------------------------------------------------------------------------
def test_missing_data_folder_is_created(settings, embedder):
    write_good(settings.corpus_dir)
    deep = settings.with_updates(data_dir=settings.data_dir / "not" / "yet" / "there")

    report = Indexer(deep, embedder=embedder).sync()

    assert sorted(report.added) == sorted(GOOD)
    assert (deep.data_dir / "manifest.json").is_file()


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_unusable_data_folder_is_one_clean_error_naming_it(settings, embedder, tmp_path, where):
    write_good(settings.corpus_dir)
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a folder should be")
    data_dir = blocker / "data" if where == "under-a-file" else blocker
    bad = settings.with_updates(data_dir=data_dir)

    with pytest.raises(StoreError, match=r"^Cannot use the data folder .*blocker.*FOOTNOTE_DATA_DIR"):
        Indexer(bad, embedder=embedder).sync()
    with pytest.raises(FootnoteError):
        Indexer(bad, embedder=embedder).failures()


def test_unusable_data_folder_makes_the_cli_print_one_error_line(settings, tmp_path, cli):
    write_good(settings.corpus_dir)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")

    code, _, err = cli("--corpus", str(settings.corpus_dir), "--data-dir", str(blocker / "data"), "-q")

    assert code == 1
    assert err.startswith("error: Cannot use the data folder ") and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_data_folder_is_one_clean_error(settings, embedder):
    write_good(settings.corpus_dir)
    settings.data_dir.mkdir()
    settings.data_dir.chmod(0o500)
    try:
        with pytest.raises(StoreError, match=r"^Cannot use the data folder .*Permission denied"):
            Indexer(settings, embedder=embedder).sync()
    finally:
        settings.data_dir.chmod(0o700)


def test_corrupt_zip_named_docx_names_the_archive_problem(tmp_path):
    path = tmp_path / "fake.docx"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a Word file")
    path.write_bytes(buffer.getvalue())

    with pytest.raises(IngestError, match=r"^fake\.docx: corrupt or unreadable Word file \(\w+"):
        load(path, source="fake.docx", max_bytes=MB)


def test_file_name_that_is_not_utf8_is_one_clean_error(indexer, settings):
    good = write_good(settings.corpus_dir)
    raw = os.fsencode(settings.corpus_dir) + b"/caf\xe9-latin1.txt"
    with open(raw, "wb") as handle:
        handle.write(b"The Dnieper dam opened in 1932.")

    report = indexer.sync()

    assert sorted(report.added) == good
    assert len(report.failed) == 1 and "not valid UTF-8" in report.failed[0][1]
    assert "caf\\udce9-latin1.txt" in report.failed[0][1]
    report.failed[0][1].encode("utf-8")
