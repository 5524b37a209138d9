"""Answers and conversations as Markdown with numbered footnotes and a bibliography, or as CSL-JSON
for reference managers (Zotero, Pandoc citeproc)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date
from typing import Literal

from rag.errors import InputError
from rag.text import MARKER
from rag.types import Answer, Citation, Passage

Format = Literal["md", "csl-json"]
FORMATS: tuple[Format, ...] = ("md", "csl-json")
SUFFIXES = {"md": ".md", "csl-json": ".json"}


def export(answers: Sequence[Answer], fmt: str, *, accessed: date | None = None,
           title: str = "Footnote conversation") -> str:
    """``answers`` (one, or a conversation's in order) in format ``fmt``: ``md`` or ``csl-json``.

    Raises:
        InputError: an unknown format.
    """
    accessed = accessed or date.today()
    if fmt == "md":
        return to_markdown(answers, accessed=accessed, title=title)
    if fmt == "csl-json":
        return to_csl_json(answers, accessed=accessed)
    raise InputError(f"Unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}.")


def _authors(passage: Passage) -> list[str]:
    return [name.strip() for name in passage.authors.split(";") if name.strip()]


def _where(passage: Passage) -> str:
    return f"p. {passage.page}" if passage.page else ""


def _key(passage: Passage) -> tuple[str, int | None]:
    return passage.source, passage.page


def to_markdown(answers: Sequence[Answer], *, accessed: date, title: str = "Footnote conversation") -> str:
    """Questions and answers, each ``[n]`` marker turned into a numbered footnote (numbered through
    the whole document) quoting the cited passage, then a bibliography of the sources cited."""
    lines = [f"# {title}", "", f"Exported from Footnote on {accessed.isoformat()}.", ""]
    notes: list[str] = []
    sources: dict[str, Passage] = {}
    pages: dict[str, set[int]] = {}
    for answer in answers:
        lines += [f"## {_one_line(answer.question)}", ""]
        if answer.refused:
            lines += [answer.text, "", "_Not in the documents._", ""]
            continue
        by_marker = {c.marker: c for c in answer.citations}
        numbers: dict[int, int] = {}

        def footnote(match: re.Match[str]) -> str:
            refs = []
            for number in re.split(r"\s*[,;]\s*", match.group(1)):
                citation = by_marker.get(int(number))
                if citation is None:
                    continue
                if citation.marker not in numbers:
                    numbers[citation.marker] = len(notes) + 1
                    notes.append(_note(len(notes) + 1, citation))
                    sources.setdefault(citation.passage.source, citation.passage)
                    if citation.passage.page:
                        pages.setdefault(citation.passage.source, set()).add(citation.passage.page)
                refs.append(f"[^{numbers[citation.marker]}]")
            return "".join(refs)

        lines += [MARKER.sub(footnote, answer.text).strip(), ""]
    if sources:
        lines += ["## Bibliography", ""]
        for source, passage in sorted(sources.items(), key=lambda item: (item[1].title or item[0]).lower()):
            lines.append("- " + _reference(passage, sorted(pages.get(source, ())), accessed))
        lines.append("")
    if notes:
        lines += notes + [""]
    return "\n".join(lines)


def _note(number: int, citation: Citation) -> str:
    passage = citation.passage
    parts = [f"*{_one_line(passage.title or passage.source)}*"]
    if passage.authors:
        parts.insert(0, _one_line(passage.authors))
    if passage.page:
        parts.append(_where(passage))
    if passage.url:
        parts.append(passage.url)
    quote = _one_line(citation.quote or passage.text)
    return f"[^{number}]: {', '.join(parts)}: \u201c{quote}\u201d"


def _reference(passage: Passage, pages: list[int], accessed: date) -> str:
    parts = []
    if passage.authors:
        parts.append(_one_line(passage.authors) + ".")
    parts.append(f"*{_one_line(passage.title or passage.source)}*.")
    if pages:
        parts.append(("p. " if len(pages) == 1 else "pp. ") + ", ".join(str(p) for p in pages) + ".")
    parts.append(f"`{passage.source}`.")
    if passage.url:
        parts.append(f"<{passage.url}>.")
    parts.append(f"Accessed {accessed.isoformat()}.")
    return " ".join(parts)


def to_csl_json(answers: Sequence[Answer], *, accessed: date) -> str:
    """The sources cited in ``answers`` as a CSL-JSON list, one item per document and page."""
    items: dict[tuple[str, int | None], dict[str, object]] = {}
    for answer in answers:
        for citation in answer.citations:
            passage = citation.passage
            key = _key(passage)
            if key in items:
                continue
            item: dict[str, object] = {
                "id": f"footnote-{len(items) + 1}",
                "type": "webpage" if passage.url else "document",
                "title": passage.title or passage.source,
                "source": passage.source,
                "accessed": {"date-parts": [[accessed.year, accessed.month, accessed.day]]},
                "note": _one_line(citation.quote or passage.text),
            }
            authors = _authors(passage)
            if authors:
                item["author"] = [{"literal": name} for name in authors]
            if passage.page:
                item["page"] = str(passage.page)
            if passage.url:
                item["URL"] = passage.url
            items[key] = item
    return json.dumps(list(items.values()), ensure_ascii=False, indent=2) + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
