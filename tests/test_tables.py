"""Tables in PDF, Word and HTML files become whole Markdown tables inside passages."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.chunking import make_splitter, split
from rag.loaders import load
from rag.tables import normalise_markdown_tables, to_markdown
from tests.scans import make_table_docx, make_table_pdf, table_html

BEFORE = "Steel output of the new plants in 1932, from the commissariat's reports."
AFTER = "After the table the report turns to the workers' housing."
ROWS = [["Plant", "Opened", "Tonnes"], ["Magnitogorsk", "1932", "1,200,000"], ["Kuznetsk", "1932", "850,000"]]
TABLE = ("| Plant | Opened | Tonnes |\n|---|---|---|\n| Magnitogorsk | 1932 | 1,200,000 |\n"
         "| Kuznetsk | 1932 | 850,000 |")


def test_rows_become_a_markdown_table_with_pipes_escaped() -> None:
    assert to_markdown([["a", "b|c"], ["1", None], [" ", ""]]) == "| a | b\\|c |\n|---|---|\n| 1 |  |"


def test_long_table_is_cut_between_rows_and_repeats_its_header() -> None:
    rows = [["Year", "Output"]] + [[str(1928 + i), f"{i * 1000:,} tonnes of pig iron"] for i in range(40)]

    pieces = to_markdown(rows, max_chars=300).split("\n\n")

    assert len(pieces) > 3
    assert all(p.startswith("| Year | Output |\n|---|---|\n") for p in pieces)
    assert all(len(p) <= 300 for p in pieces)
    body = [line for p in pieces for line in p.split("\n")[2:]]
    assert body == [f"| {1928 + i} | {i * 1000:,} tonnes of pig iron |" for i in range(40)]


def test_pipe_table_lines_in_text_are_set_off_as_one_block() -> None:
    text = "Intro line.\n| a | b | \n|---|---|\n| 1 | 2 | \nOutro line."

    assert normalise_markdown_tables(text) == "Intro line.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nOutro line."


@pytest.mark.parametrize("kind", ["pdf", "docx", "html"])
def test_table_in_a_file_is_a_markdown_table_between_its_paragraphs(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"steel.{kind}"
    if kind == "pdf":
        make_table_pdf(path, BEFORE, ROWS, AFTER)
    elif kind == "docx":
        make_table_docx(path, BEFORE, ROWS, AFTER)
    else:
        path.write_text(table_html(BEFORE, ROWS, AFTER), encoding="utf-8")

    text = "\n\n".join(d.page_content for d in load(path, source=path.name, max_bytes=10**8))

    assert f"\n\n{TABLE}\n\n" in text
    assert text.index(BEFORE) < text.index(TABLE) < text.index(AFTER)


def test_chunker_keeps_each_table_piece_whole(embedder, tmp_path: Path) -> None:
    rows = [["Plant", "Year", "Output"]] + [[f"Works no. {i}", str(1928 + i % 10), f"{i * 731:,} tonnes"]
                                              for i in range(60)]
    path = make_table_docx(tmp_path / "works.docx", "A long list of works follows. " * 20, rows,
                           "That is the whole list. " * 20)
    splitter = make_splitter(embedder.tokenizer, chunk_tokens=200, overlap_tokens=40,
                             max_seq_length=embedder.max_seq_length)

    chunks = split(load(path, source=path.name, max_bytes=10**8), splitter)

    table_chunks = [c.page_content for c in chunks if "| Works no." in c.page_content]
    assert table_chunks
    rows_seen = set()
    for text in table_chunks:
        lines = [line for line in text.split("\n") if line.startswith("| Works no.")]
        for line in lines:
            assert line.endswith(" tonnes |"), f"a row was cut: {line!r}"
            rows_seen.add(line)
        assert "| Plant | Year | Output |" in text, "every table piece keeps its header"
    assert len(rows_seen) == 60
