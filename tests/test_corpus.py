"""The corpus folder: scanning, safe copies of uploads, and pages fetched from a loopback server."""

from __future__ import annotations

import pytest
import yaml

from rag import corpus
from rag.errors import IngestError, UnsupportedFileError
from rag.loaders import load, split_front_matter
from tests.helpers import free_port

MB = 1_000_000


# -- scanning ----------------------------------------------------------------------------
def test_scan_lists_nested_files_sorted_and_skips_hidden_ones(tmp_path):
    root = tmp_path / "corpus"
    for name in ["b.txt", "a.md", "sub/c.pdf", ".hidden.txt", ".git/config", "sub/.cache/x.txt"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")

    found = [corpus.source_of(p, root) for p in corpus.scan(root)]

    assert found == ["a.md", "b.txt", "sub/c.pdf"]


def test_scan_of_missing_folder_names_it(tmp_path):
    with pytest.raises(IngestError, match="nowhere.*does not exist"):
        corpus.scan(tmp_path / "nowhere")


# -- safe names ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,expected", [
    ("plain.txt", "plain.txt"),
    ("l'économie planifiée 1928.txt", "l'économie planifiée 1928.txt"),
    ("Report.PDF", "Report.pdf"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\evil.md", "evil.md"),
    ("C:\\Users\\x\\notes.docx", "notes.docx"),
    ("..hidden.txt", "hidden.txt"),
    ('what "quotes".md', "what _quotes_.md"),
    ("tab\there.txt", "tab_here.txt"),
])
def test_safe_filename_cannot_leave_the_folder(name, expected):
    assert corpus.safe_filename(name) == expected


@pytest.mark.parametrize("hostile", [
    "../../etc/passwd.txt", "..\\evil.md", "/etc/passwd.txt", "../../../../tmp/escape.md",
    "sub/../../up.txt", "..\\..\\windows\\system32\\x.txt",
])
def test_copy_in_with_hostile_name_lands_inside_the_corpus(tmp_path, hostile):
    upload = tmp_path / "upload.bin"
    upload.write_text("The Bessemer converter blew air through molten iron.")
    root = tmp_path / "deep" / "corpus"

    target = corpus.copy_in(upload, root, name=hostile, max_bytes=MB)

    assert target.parent.resolve() == root.resolve()
    assert target.read_text() == "The Bessemer converter blew air through molten iron."
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["corpus"]
    assert not (tmp_path / "etc").exists() and not (tmp_path / "escape.md").exists()


def test_copy_in_keeps_spaces_quotes_and_accents(tmp_path):
    upload = tmp_path / "upload"
    upload.write_text("Plan")

    target = corpus.copy_in(upload, tmp_path / "corpus", name="l'économie planifiée 1928.txt", max_bytes=MB)

    assert target.name == "l'économie planifiée 1928.txt"


def test_copy_in_reuses_identical_file_and_renames_different_one(tmp_path):
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    first.write_text("Version one.")
    second.write_text("Version two.")
    root = tmp_path / "corpus"

    a = corpus.copy_in(first, root, name="notes.txt", max_bytes=MB)
    again = corpus.copy_in(first, root, name="notes.txt", max_bytes=MB)
    b = corpus.copy_in(second, root, name="notes.txt", max_bytes=MB)

    assert a == again == root / "notes.txt"
    assert b == root / "notes (2).txt"
    assert b.read_text() == "Version two." and a.read_text() == "Version one."
    assert sorted(p.name for p in root.iterdir()) == ["notes (2).txt", "notes.txt"]


def test_copy_in_rejects_unsupported_type(tmp_path):
    upload = tmp_path / "tool.exe"
    upload.write_bytes(b"MZ")

    with pytest.raises(UnsupportedFileError, match=r"^tool\.exe: unsupported file type"):
        corpus.copy_in(upload, tmp_path / "corpus", max_bytes=MB)
    assert not (tmp_path / "corpus").exists()


def test_copy_in_rejects_file_over_the_limit(tmp_path):
    upload = tmp_path / "big.txt"
    upload.write_text("x" * 5000)

    with pytest.raises(IngestError, match=r"^big\.txt: file is 0\.005 MB, over the 0\.001 MB limit"):
        corpus.copy_in(upload, tmp_path / "corpus", max_bytes=1000)


# -- fetching ------------------------------------------------------------------------------
@pytest.mark.slow
def test_fetched_page_is_saved_as_markdown_with_front_matter(http_server, tmp_path):
    root = tmp_path / "corpus"

    target = corpus.fetch_url(http_server.url + "/page.html", root, timeout=5, max_bytes=MB,
                              allow_private=True)

    assert target.parent == root / "web" and target.suffix == ".md"
    front, body = split_front_matter(target.read_text(encoding="utf-8"))
    assert front["url"] == http_server.url + "/page.html"
    assert front["title"] == "The Stakhanovite movement"
    assert str(front["fetched"]).startswith("20")
    assert "Alexei Stakhanov cut 102 tonnes of coal" in body
    for noise in ("Loopback Gazette", "script-noise-ocelot", "cookie settings"):
        assert noise not in body
    doc = load(target, source="web/" + target.name, max_bytes=MB)[0]
    assert doc.metadata["type"] == "url"
    assert doc.metadata["url"] == http_server.url + "/page.html"


@pytest.mark.slow
def test_fetched_plain_text_keeps_its_text(http_server, tmp_path):
    target = corpus.fetch_url(http_server.url + "/plain.txt", tmp_path / "corpus", timeout=5, max_bytes=MB,
                              allow_private=True)

    front, body = split_front_matter(target.read_text(encoding="utf-8"))
    assert front["url"].endswith("/plain.txt")
    assert body.strip() == "The Turksib railway, linking Turkestan and Siberia, was completed in 1930."


@pytest.mark.slow
def test_fetched_pdf_is_saved_as_pdf(http_server, tmp_path):
    from tests.helpers import make_pdf

    make_pdf(http_server.root / "report.pdf", ["The Volga-Don canal opened in 1952."])

    target = corpus.fetch_url(http_server.url + "/report.pdf", tmp_path / "corpus", timeout=5, max_bytes=MB,
                              allow_private=True)

    assert target.suffix == ".pdf"
    assert "Volga-Don canal" in load(target, source="web/x.pdf", max_bytes=MB)[0].page_content


@pytest.mark.slow
def test_non_200_response_is_a_clean_error(http_server, tmp_path):
    url = http_server.url + "/missing"

    with pytest.raises(IngestError, match=r"/missing: server answered HTTP 404"):
        corpus.fetch_url(url, tmp_path / "corpus", timeout=5, max_bytes=MB, allow_private=True)
    assert not (tmp_path / "corpus" / "web").exists()


@pytest.mark.slow
def test_non_text_response_is_a_clean_error(http_server, tmp_path):
    with pytest.raises(IngestError, match=r"/binary: content type 'application/octet-stream' is not"):
        corpus.fetch_url(http_server.url + "/binary", tmp_path / "corpus", timeout=5, max_bytes=MB,
                         allow_private=True)


@pytest.mark.slow
def test_response_over_the_limit_is_a_clean_error(http_server, tmp_path):
    url = http_server.route("/huge.txt", content_type="text/plain", body="Plan " * 2000)

    with pytest.raises(IngestError, match=r"huge\.txt: response is over the 0\.001 MB limit"):
        corpus.fetch_url(url, tmp_path / "corpus", timeout=5, max_bytes=1000, allow_private=True)


def test_unreachable_url_is_a_clean_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/x"

    with pytest.raises(IngestError, match=r"^http://127\.0\.0\.1:\d+/x: could not be fetched: the site did "
                       r"not answer\."):
        corpus.fetch_url(url, tmp_path / "corpus", timeout=5, max_bytes=MB, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/file.txt", "file:///etc/passwd", "http://"])
def test_non_http_url_is_refused(tmp_path, url):
    with pytest.raises(IngestError, match="not an http"):
        corpus.fetch_url(url, tmp_path / "corpus", timeout=5, max_bytes=MB)


@pytest.mark.slow
def test_fetched_page_front_matter_survives_yaml_special_characters(http_server, tmp_path):
    url = http_server.route("/colon.html", body=(
        "<html><head><title>Plan: \"Five Years\" -- #1 & more</title></head><body><article>"
        "<p>The NEP, the New Economic Policy, was introduced in March 1921 and ended in 1928.</p>"
        "</article></body></html>"))

    target = corpus.fetch_url(url, tmp_path / "corpus", timeout=5, max_bytes=MB, allow_private=True)

    front = yaml.safe_load(target.read_text(encoding="utf-8").split("---\n")[1])
    assert front["title"] == 'Plan: "Five Years" -- #1 & more'
