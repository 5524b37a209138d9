"""`python ingest.py` as users run it (subprocesses), plus `rag.cli.ingest_main` in-process."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.cli import ingest_main
from rag.loaders import SUPPORTED_SUFFIXES
from rag.manifest import ingest_lock
from rag.store import Store
from tests.helpers import SEED, copy_fixture_corpus, error_lines, free_port, make_pdf, run_ingest
from tests.plugins.core import serve_loopback

CORPUS_SOURCES = ["bessemer-process.txt", "gosplan.html", "meiji-industrialisation.md",
                  SEED.name, "zollverein.txt"]
SUMMARY_KEYS = {"added", "updated", "unchanged", "removed", "failed", "chunks_embedded",
                "chunks_total", "seconds"}


def indexed_sources(data: Path) -> list[str]:
    return sorted(json.loads((data / "manifest.json").read_text(encoding="utf-8"))["documents"])


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory):
    """The fixture corpus plus the seed, indexed once by `python ingest.py --quiet`."""
    root = tmp_path_factory.mktemp("cli")
    corpus, data = root / "corpus", root / "data"
    copy_fixture_corpus(corpus)
    shutil.copy(SEED, corpus / SEED.name)
    result = run_ingest("--quiet", corpus=corpus, data=data)
    return SimpleNamespace(corpus=corpus, data=data, first=result)


@pytest.fixture
def restore_logging():
    """ingest_main installs a handler on the `rag` logger; put the previous state back afterwards."""
    names = ["rag", "httpx", "chromadb", "sentence_transformers", "transformers", "bm25s", "pypdf"]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def main(capsys, monkeypatch, restore_logging):
    """Call ``ingest_main`` in this process; returns code, stdout and stderr."""
    monkeypatch.setenv("COLUMNS", "200")

    def call(*argv: str) -> SimpleNamespace:
        code = ingest_main(list(argv))
        out, err = capsys.readouterr()
        return SimpleNamespace(code=code, out=out, err=err)

    return call


def in_index(index: SimpleNamespace) -> list[str]:
    return ["--corpus", str(index.corpus), "--data-dir", str(index.data)]


# -- sync, summary, list -----------------------------------------------------------------------
@pytest.mark.slow
def test_quiet_sync_prints_nothing_and_exits_0(cli_index):
    assert cli_index.first.returncode == 0
    assert cli_index.first.stdout == ""
    assert cli_index.first.stderr == ""
    assert indexed_sources(cli_index.data) == CORPUS_SOURCES


@pytest.mark.slow
def test_second_run_json_summary_shows_nothing_embedded(cli_index, main):
    result = main("--json", *in_index(cli_index))

    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert SUMMARY_KEYS <= set(summary) <= SUMMARY_KEYS | {"chunks_reused"}
    assert summary["chunks_embedded"] == 0
    assert summary["unchanged"] == len(CORPUS_SOURCES)
    assert summary["added"] == summary["updated"] == summary["removed"] == 0
    assert summary["failed"] == []
    assert summary["chunks_total"] > len(CORPUS_SOURCES)
    assert isinstance(summary["seconds"], float)


@pytest.mark.slow
def test_default_output_is_a_summary_table_on_stderr(cli_index, main):
    result = main("sync", *in_index(cli_index))

    assert result.code == 0
    assert result.out == ""
    assert "Ingest summary" in result.err
    assert "unchanged" in result.err and "chunks in index" in result.err


@pytest.mark.slow
def test_list_prints_a_table_of_documents(cli_index, main):
    result = main("list", *in_index(cli_index))

    assert result.code == 0, result.err
    header = next(line for line in result.out.splitlines() if "source" in line)
    for column in ("source", "title", "type", "chunks", "added"):
        assert column in header
    assert f"{len(CORPUS_SOURCES)} documents indexed" in result.out
    row = next(line for line in result.out.splitlines() if "meiji-industrialisation.md" in line)
    assert "Industrialisation in Meiji Japan" in row and " md " in row


@pytest.mark.slow
def test_list_json_gives_one_object_per_document(cli_index, main):
    result = main("list", "--json", *in_index(cli_index))

    assert result.code == 0, result.err
    documents = json.loads(result.out)
    assert [d["source"] for d in documents] == CORPUS_SOURCES
    seed = next(d for d in documents if d["source"] == SEED.name)
    assert "BeingAndSlime" in seed["authors"] and "histomat" in seed["authors"]
    assert all(d["chunks"] > 0 and d["added"] for d in documents)


@pytest.mark.slow
def test_changed_chunk_size_is_one_error_line_and_exit_1(cli_index, main, monkeypatch):
    monkeypatch.setenv("FOOTNOTE_CHUNKING__CHUNK_TOKENS", "150")

    result = main(*in_index(cli_index))

    assert result.code == 1
    assert len(result.err.splitlines()) == 1
    assert result.err == ("error: The index was built with 200/40-token chunks, but the settings now say "
                          "150/40. Run `python ingest.py --rebuild` to re-index with the new settings.\n")


@pytest.mark.slow
def test_index_built_with_torch_needs_the_backend_set_back_or_a_rebuild(tmp_path, main, monkeypatch,
                                                                         torch_embedder):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    monkeypatch.setenv("FOOTNOTE_EMBEDDING_BACKEND", "torch")
    assert main("--quiet", "--corpus", str(corpus), "--data-dir", str(data)).code == 0
    monkeypatch.delenv("FOOTNOTE_EMBEDDING_BACKEND")  # the default again: onnx-int8

    stale = main("--corpus", str(corpus), "--data-dir", str(data))
    monkeypatch.setenv("FOOTNOTE_EMBEDDING_BACKEND", "torch")
    kept = main("--json", "--corpus", str(corpus), "--data-dir", str(data))

    assert stale.code == 1
    assert error_lines(stale.err) == [
        "error: The index was built with the torch embedding backend, but the settings now say onnx-int8 "
        "(the default). Run `python ingest.py --rebuild` to re-index with the new settings, or set "
        "FOOTNOTE_EMBEDDING_BACKEND=torch to use the index as it is."]
    assert kept.code == 0, kept.err
    assert json.loads(kept.out)["unchanged"] == 1 and json.loads(kept.out)["chunks_embedded"] == 0


@pytest.mark.slow
def test_ingest_while_another_holds_the_lock_exits_1(cli_index):
    with ingest_lock(cli_index.data, timeout=0):
        result = run_ingest(corpus=cli_index.corpus, data=cli_index.data,
                            env={"FOOTNOTE_LOCK_TIMEOUT": "1"})

    assert result.returncode == 1
    assert result.stderr.startswith("error: Another ingest is running on ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.slow
def test_removing_an_unknown_source_exits_1(cli_index, main):
    result = main("remove", "no-such-file.txt", "--quiet", *in_index(cli_index))

    assert result.code == 1
    assert result.err.splitlines() == [
        "error: no-such-file.txt: not in the index; `python ingest.py list` shows what is."]
    assert indexed_sources(cli_index.data) == CORPUS_SOURCES


# -- usage and settings errors --------------------------------------------------------------------
@pytest.mark.slow
def test_unknown_flag_is_a_usage_error_exit_2(tmp_path):
    result = run_ingest("--frobnicate", corpus=tmp_path / "corpus", data=tmp_path / "data")

    assert result.returncode == 2
    assert result.stderr.startswith("usage: ingest.py")
    assert "unrecognized arguments: --frobnicate" in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("argv,complaint", [
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["add"], "the following arguments are required"),
    (["remove"], "the following arguments are required"),
    (["--max-file-mb", "lots"], "invalid float value: 'lots'"),
])
def test_usage_error_in_process_exits_2(capsys, argv, complaint):
    with pytest.raises(SystemExit) as info:
        ingest_main(argv)

    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: ingest.py" in err and complaint in err


def test_invalid_setting_is_one_error_line_and_exit_1(settings, capsys, restore_logging):
    code = ingest_main(["--corpus", str(settings.corpus_dir), "--max-file-mb", "-1"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: Invalid settings (max_file_mb: ")
    assert len(err.splitlines()) == 1


def test_missing_corpus_folder_exits_1(tmp_path, capsys, restore_logging):
    code = ingest_main(["--corpus", str(tmp_path / "nope"), "--quiet"])

    assert code == 1
    assert "does not exist" in capsys.readouterr().err


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bad_files_each_give_one_error_line_and_exit_1(tmp_path):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    copy_fixture_corpus(corpus)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n")
    make_pdf(corpus / "scan.pdf", [""])
    (corpus / "huge.txt").write_text("Planned economy. " * 1500)
    (corpus / "data.xyz").write_text("unsupported")
    (corpus / "latin1.txt").write_bytes("Un café près de l'usine.".encode("latin-1"))
    (corpus / "cp1252.txt").write_bytes("The \u201cplan\u201d cost 5 \u20ac.".encode("cp1252"))
    (corpus / "l'économie \"planifiée\" 1928.txt").write_text("Le premier plan quinquennal.", encoding="utf-8")

    result = run_ingest("--quiet", "--max-file-mb", "0.02", corpus=corpus, data=data)

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == error_lines(result.stderr), "only error lines, no warnings or tracebacks"
    assert sorted(lines) == sorted([
        "error: broken.pdf: corrupt or unreadable PDF (PdfStreamError: Stream has ended unexpectedly). "
        "Open it and save it again, or remove it.",
        f"error: data.xyz: unsupported file type '.xyz'; supported: {', '.join(SUPPORTED_SUFFIXES)}.",
        "error: empty.txt: file is empty.",
        "error: huge.txt: file is 0.0255 MB, over the 0.02 MB limit (FOOTNOTE_MAX_FILE_MB raises it).",
        "error: photo.txt: looks like a binary file, not text (NUL bytes).",
        "error: scan.pdf: PDF has no text layer (a scan?); run OCR on it first, e.g. ocrmypdf.",
    ])
    assert indexed_sources(data) == sorted([
        "bessemer-process.txt", "cp1252.txt", "gosplan.html", "l'économie \"planifiée\" 1928.txt",
        "latin1.txt", "meiji-industrialisation.md", "zollverein.txt"])


# -- rebuild (in-process, reusing the session's model) -------------------------------------------
def test_rebuild_flag_reindexes_everything(settings, fixture_corpus, embedder, capsys, restore_logging):
    argv = ["--corpus", str(settings.corpus_dir), "--data-dir", str(settings.data_dir), "--json"]
    assert ingest_main(argv) == 0
    first = json.loads(capsys.readouterr().out)

    assert ingest_main([*argv, "--rebuild"]) == 0

    rebuilt = json.loads(capsys.readouterr().out)
    assert rebuilt["added"] == first["added"] == len(fixture_corpus)
    assert rebuilt["chunks_embedded"] == rebuilt["chunks_total"] == first["chunks_total"]


def test_rebuild_flag_recovers_from_changed_settings(settings, fixture_corpus, embedder, capsys,
                                                      monkeypatch, restore_logging):
    argv = ["--corpus", str(settings.corpus_dir), "--quiet"]
    assert ingest_main(argv) == 0
    monkeypatch.setenv("FOOTNOTE_CHUNKING__CHUNK_TOKENS", "100")
    assert ingest_main(argv) == 1
    assert "--rebuild" in capsys.readouterr().err

    assert ingest_main([*argv, "--rebuild"]) == 0

    assert capsys.readouterr().err == ""
    assert ingest_main(argv) == 0


# -- URLs ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def added_urls(tmp_path_factory):
    """`python ingest.py add --allow-private-urls` of two good and two bad loopback URLs, then
    `list --json`. Shared by several tests, so read-only: a test that changes the corpus or the
    index works on its own copy (``own_urls``)."""
    root = tmp_path_factory.mktemp("urls")
    corpus, data = root / "corpus", root / "data"
    corpus.mkdir()
    with serve_loopback(root / "www") as server:
        urls = {name: server.url + path for name, path in [
            ("page", "/page.html"), ("plain", "/plain.txt"), ("missing", "/missing"), ("binary", "/binary")]}
        result = run_ingest("add", "--allow-private-urls", *urls.values(), corpus=corpus, data=data)
    listed = run_ingest("list", "--json", corpus=corpus, data=data)
    return SimpleNamespace(corpus=corpus, data=data, urls=urls, result=result, listed=listed)


@pytest.fixture
def own_urls(added_urls, tmp_path):
    """This test's own copy of ``added_urls``' corpus and index, free to change in any test order."""
    corpus, data = tmp_path / "own" / "corpus", tmp_path / "own" / "data"
    shutil.copytree(added_urls.corpus, corpus)
    shutil.copytree(added_urls.data, data)
    return SimpleNamespace(corpus=corpus, data=data, urls=added_urls.urls, listed=added_urls.listed)


@pytest.mark.slow
def test_add_urls_reports_each_bad_url_and_exits_1(added_urls):
    assert added_urls.result.returncode == 1
    assert sorted(error_lines(added_urls.result.stderr)) == [
        f"error: {added_urls.urls['binary']}: content type 'application/octet-stream' is not a web page, "
        "text or PDF.",
        f"error: {added_urls.urls['missing']}: server answered HTTP 404, not 200.",
    ]


@pytest.mark.slow
def test_added_page_is_saved_under_web_with_front_matter(added_urls):
    from rag.loaders import split_front_matter

    pages = sorted((added_urls.corpus / "web").glob("*.md"))

    assert len(pages) == 2
    fronts = {}
    for page in pages:
        front, body = split_front_matter(page.read_text(encoding="utf-8"))
        fronts[front["url"]] = (front, body)
    front, body = fronts[added_urls.urls["page"]]
    assert front["title"] == "The Stakhanovite movement"
    assert str(front["fetched"])[:2] == "20"
    assert "Alexei Stakhanov cut 102 tonnes of coal" in body
    assert "Loopback Gazette" not in body


@pytest.mark.slow
def test_added_pages_are_indexed_and_listed(added_urls):
    assert added_urls.listed.returncode == 0
    documents = {d["url"]: d for d in json.loads(added_urls.listed.stdout)}
    assert set(documents) == {added_urls.urls["page"], added_urls.urls["plain"]}
    page = documents[added_urls.urls["page"]]
    assert page["source"].startswith("web/") and page["source"].endswith(".md")
    assert page["type"] == "url" and page["title"] == "The Stakhanovite movement"
    assert page["chunks"] >= 1


@pytest.mark.slow
def test_remove_by_url_deletes_the_document_and_its_file(own_urls, main):
    url = own_urls.urls["page"]
    source = next(d["source"] for d in json.loads(own_urls.listed.stdout) if d["url"] == url)

    result = main("remove", url, "--json", *in_index(own_urls))

    assert result.code == 0, result.err
    assert json.loads(result.out)["removed"] == 1
    assert not (own_urls.corpus / source).exists()
    assert source not in indexed_sources(own_urls.data)


@pytest.mark.slow
def test_remove_by_source_deletes_the_document_and_its_file(own_urls, main):
    url = own_urls.urls["plain"]
    source = next(d["source"] for d in json.loads(own_urls.listed.stdout) if d["url"] == url)

    result = main("remove", source, "--quiet", *in_index(own_urls))

    assert result.code == 0, result.err
    assert result.out == result.err == ""
    assert not (own_urls.corpus / source).exists()
    assert source not in indexed_sources(own_urls.data)


@pytest.mark.slow
def test_add_unreachable_url_is_one_error_line_and_exit_1(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/x"

    result = run_ingest("add", url, corpus=tmp_path / "corpus", data=tmp_path / "data",
                        env={"FOOTNOTE_ALLOW_PRIVATE_URLS": "true"})

    assert result.returncode == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {url}: could not be fetched: the site did not answer.")
    assert "Traceback" not in result.stderr


def test_add_loopback_url_without_the_flag_is_refused(http_server, settings, main):
    url = http_server.url + "/page.html"

    result = main("add", url, "--corpus", str(settings.corpus_dir), "--quiet")

    assert result.code == 1
    lines = error_lines(result.err)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {url}: 127.0.0.1 is a private or local network address")
    assert "--allow-private-urls" in lines[0]
    assert http_server.requests == [] and list(settings.corpus_dir.iterdir()) == []


def test_add_copies_a_file_into_the_corpus_and_indexes_it(settings, embedder, tmp_path, capsys, restore_logging):
    upload = tmp_path / "outside" / "Five Year Plan.txt"
    upload.parent.mkdir()
    upload.write_text("The first Five-Year Plan ran from 1928 to 1932.")

    code = ingest_main(["add", str(upload), "--corpus", str(settings.corpus_dir), "--json"])

    assert code == 0
    assert json.loads(capsys.readouterr().out)["added"] == 1
    assert (settings.corpus_dir / "Five Year Plan.txt").read_text() == upload.read_text()
    assert Store(settings).chunks_of("Five Year Plan.txt")


# -- server mode -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_server_mode_indexes_and_a_second_run_embeds_nothing(empty_chroma_server, tmp_path, settings,
                                                              embedder, main):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    copy_fixture_corpus(corpus)
    flags = ["--chroma-url", empty_chroma_server, "--json"]

    first = main(*flags, "--corpus", str(corpus), "--data-dir", str(data))  # in-process: model loaded
    second = run_ingest(*flags, corpus=corpus, data=data)

    assert first.code == 0, first.err
    assert second.returncode == 0, second.stderr
    one, two = json.loads(first.out), json.loads(second.stdout)
    assert one["added"] == 4 and one["chunks_embedded"] == one["chunks_total"] > 0
    assert two["chunks_embedded"] == 0 and two["unchanged"] == 4
    store = Store(settings.with_updates(chroma_url=empty_chroma_server))
    assert store.count() == one["chunks_total"]
    assert any("1 January 1834" in c.text for c in store.chunks_of("zollverein.txt"))
    assert not (data / "chroma").exists()
