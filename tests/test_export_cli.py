"""`python -m rag ask QUESTION --export md|csl-json` prints the answer in that format."""

from __future__ import annotations

import json

import pytest

from rag.cli import main
from rag.config import Settings

QUESTION = "Which book argues that moving labour out of agriculture caused the collapse?"


def ask(seeded: Settings, fmt: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setenv("FOOTNOTE_LOCAL__JUDGE", "off")
    status = main(["ask", "--backend", "extractive", "--data-dir", str(seeded.data_dir), "--corpus",
                   str(seeded.corpus_dir), "--export", fmt, QUESTION])
    out = capsys.readouterr()
    assert status == 0, out.err
    return out.out


def test_ask_exports_markdown_with_footnotes_and_bibliography(seeded, monkeypatch, capsys) -> None:
    text = ask(seeded, "md", monkeypatch, capsys)

    assert text.startswith("# Footnote conversation")
    assert f"## {QUESTION}" in text
    assert "Chinese Economic Development" in text and "[^1]" in text and "\n[^1]: " in text
    assert "## Bibliography" in text and "`stalin-industrialisation-vs-great-leap-forward.txt`" in text


def test_ask_exports_csl_json(seeded, monkeypatch, capsys) -> None:
    items = json.loads(ask(seeded, "csl-json", monkeypatch, capsys))

    assert [item["source"] for item in items] == ["stalin-industrialisation-vs-great-leap-forward.txt"]
    assert items[0]["title"] and items[0]["accessed"]["date-parts"]
