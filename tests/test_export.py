"""Export of answers and conversations: Markdown footnotes and bibliography, CSL-JSON."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from rag.errors import InputError
from rag.export import export
from rag.types import Answer, Citation, Passage

DAY = date(2026, 11, 29)
PDF = Passage(marker=1, id="a", text="The Turksib railway opened in May 1930 after three years.",
              source="turksib.pdf", title="The Turksib", score=0.8, start=0, end=56, page=3,
              authors="M. Payne; A. Other")
WEB = Passage(marker=2, id="b", text="Stakhanov cut 102 tonnes of coal in one shift.", source="web/stakhanov.md",
              title="The Stakhanovite movement", score=0.7, start=0, end=46, url="https://example.org/stakhanov")
FIRST = Answer(question="When did the Turksib open?", text="It opened in May 1930 [1]. Stakhanov cut coal [2].",
               citations=(Citation(1, PDF, "The Turksib railway opened in May 1930", True, 0.9),
                          Citation(2, WEB, "Stakhanov cut 102 tonnes of coal", True, 0.8)))
SECOND = Answer(question="Who built it?", text="Thousands of workers built it [1, 2].",
                citations=(Citation(1, PDF, "after three years", True, 0.7),
                           Citation(2, WEB, "in one shift", False, 0.3)))
REFUSED = Answer(question="Who won in 1958?", text="The documents do not cover this question.", refused=True)


def test_markdown_numbers_footnotes_through_the_conversation() -> None:
    text = export([FIRST, SECOND, REFUSED], "md", accessed=DAY)

    assert "It opened in May 1930 [^1]. Stakhanov cut coal [^2]." in text
    assert "Thousands of workers built it [^3][^4]." in text
    assert re.findall(r"^\[\^(\d+)\]: ", text, re.M) == ["1", "2", "3", "4"]
    assert "[^1]: M. Payne; A. Other, *The Turksib*, p. 3: \u201cThe Turksib railway opened in May 1930\u201d" in text
    assert "[^2]: *The Stakhanovite movement*, https://example.org/stakhanov: \u201cStakhanov cut" in text
    assert "## Who won in 1958?" in text and "_Not in the documents._" in text
    assert not re.search(r"\[\d", text), "no bare [n] marker is left"


def test_markdown_bibliography_lists_each_source_once_by_title_with_pages_url_and_access_date() -> None:
    text = export([FIRST, SECOND], "md", accessed=DAY)

    bibliography = text.split("## Bibliography\n\n")[1].split("\n\n")[0].splitlines()
    assert bibliography == [
        "- *The Stakhanovite movement*. `web/stakhanov.md`. <https://example.org/stakhanov>. Accessed 2026-11-29.",
        "- M. Payne; A. Other. *The Turksib*. p. 3. `turksib.pdf`. Accessed 2026-11-29.",
    ]


def test_csl_json_has_one_item_per_cited_document_and_page() -> None:
    items = json.loads(export([FIRST, SECOND], "csl-json", accessed=DAY))

    assert [item["title"] for item in items] == ["The Turksib", "The Stakhanovite movement"]
    book, page = items
    assert book["type"] == "document" and book["page"] == "3"
    assert book["author"] == [{"literal": "M. Payne"}, {"literal": "A. Other"}]
    assert book["accessed"] == {"date-parts": [[2026, 11, 29]]}
    assert page["type"] == "webpage" and page["URL"] == "https://example.org/stakhanov"
    assert "author" not in page and "page" not in page
    assert len({item["id"] for item in items}) == 2


def test_unknown_format_is_a_clean_error() -> None:
    with pytest.raises(InputError, match="use one of: md, csl-json"):
        export([FIRST], "docx")
