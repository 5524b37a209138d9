"""HTML for the web app: answers with clickable [n] markers, and the sources panel.

Pure functions of ``Answer`` values. Every string that comes from a document, a file name or a
user (text, titles, authors, quotes, questions, error messages) goes through ``html.escape``:
nothing a document contains is ever rendered as markup.

Citation links point at ``#fn-src-<turn>-<marker>`` (a cited passage) or ``#fn-close-<turn>-<i>``
(closest material of a refusal). The chat's sanitiser strips ``data-*`` attributes, so the
turn and marker travel in the fragment; ``CLICK_JS`` reads them back.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import urlparse

from rag.text import MARKER
from rag.types import Answer, Citation, Passage, Sentence

# Shown on a sentence whose citation the check supplied (``Sentence.attributed``).
ATTRIBUTED = ("The answer cited no passage or one that does not say this; Footnote's citation check "
              "found the passage that does and cites it instead.")

SOURCES_PLACEHOLDER = (
    '<div class="fn-empty"><p class="fn-empty-title">Sources</p>'
    "<p>Each answer's cited passages appear here, with the supporting sentence highlighted. "
    "Click a marker such as <span class=\"fn-cite-sample\">[1]</span> in an answer to jump "
    "to its passage.</p></div>"
)

# Delegated click handler: a marker (or a closest-material link) shows its turn's sources and
# highlights the passage. Delegation on document survives Gradio re-rendering both panels.
CLICK_JS = """
<script>
(() => {
  if (window.__footnoteClicks) return;
  window.__footnoteClicks = true;
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#fn-"]');
    if (!link) return;
    const id = link.getAttribute("href").slice(1);
    if (!/^fn-(src|close)-\\d+-\\d+$/.test(id)) return;
    event.preventDefault();
    event.stopPropagation();
    const card = document.getElementById(id);
    if (!card) return;
    const turn = card.closest(".fn-turn");
    document.querySelectorAll(".fn-turn").forEach((t) => t.classList.toggle("fn-current", t === turn));
    document.querySelectorAll(".fn-source.fn-active").forEach((c) => c.classList.remove("fn-active"));
    card.classList.add("fn-active");
    card.scrollIntoView({ behavior: "smooth", block: "nearest" });
    // The page view (rag/ui/pages.py) reads the card id and renders its page on the server.
    const go = document.getElementById("fn-page-go");
    if (go) { window.__footnotePage = id; go.click(); }
  }, true);
})();
</script>
"""


def esc(value: object) -> str:
    """``value`` as text that HTML shows literally (quotes escaped too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def _text(value: str) -> str:
    """Escaped text with line breaks kept."""
    return esc(value).replace("\r\n", "\n").replace("\n", "<br>")


def source_id(turn: int, marker: int) -> str:
    """Element id of a cited passage's card in the sources panel."""
    return f"fn-src-{turn}-{marker}"


def closest_id(turn: int, index: int) -> str:
    """Element id of a closest-material card (refusals and uncited answers)."""
    return f"fn-close-{turn}-{index}"


# --------------------------------------------------------------------------- answer
def render_question(question: str) -> str:
    """A user's question as chat content."""
    return f'<span class="fn-question">{_text(question)}</span>'


SEARCHING = "Searching the documents\u2026"


def render_streaming(text: str, *, queued: int = 0, status: str = "") -> str:
    """Answer text while it streams in: markers are not checked yet, so they are not links.

    Before any text, ``queued`` says how many other questions the local model is busy with, and
    ``status`` what the pipeline is doing (``pipeline.stream``'s ``Status``).
    """
    if not text and queued:
        ahead = "1 question" if queued == 1 else f"{queued} questions"
        return (f'<span class="fn-pending fn-waiting">Waiting for the local model: {ahead} ahead of '
                "yours\u2026</span>")
    if not text:
        return f'<span class="fn-pending">{esc(status or SEARCHING)}</span>'
    body = MARKER.sub(lambda m: f'<span class="fn-marker-pending">{m.group(0)}</span>', _text(text))
    return f'<div class="fn-answer fn-streaming">{body}</div>'


def _link_markers(escaped: str, turn: int, cited: set[int]) -> str:
    """Turn each [n] (or [n, m]) in already-escaped text into links to cited passages."""

    def replace(match: re.Match[str]) -> str:
        parts = []
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(number)
            if n in cited:
                parts.append(f'<a class="fn-cite" href="#{source_id(turn, n)}" '
                             f'title="Show source {n}">{n}</a>')
            else:
                parts.append(number)
        # The brackets stay in the text (copying an answer keeps its markers) but are hidden.
        comma = '<span class="fn-bracket">, </span>'
        return ('<span class="fn-cites"><span class="fn-bracket">[</span>' + comma.join(parts)
                + '<span class="fn-bracket">]</span></span>')

    return MARKER.sub(replace, escaped)


def render_answer(answer: Answer, turn: int) -> str:
    """A finished answer: sentences with linked markers, unsupported ones flagged, or a refusal."""
    if answer.conversation:
        return f'<div class="fn-answer"><p>{_text(answer.text)}</p></div>'
    if answer.refused:
        return _render_refusal(answer, turn)
    cited = {c.marker for c in answer.citations}
    pieces: list[str] = []
    position = 0
    unsupported = 0
    text = answer.text
    for sentence in answer.sentences:
        found = text.find(sentence.text, position)
        if found < 0:
            # The sentence list no longer lines up with the text: show sentences alone.
            pieces, unsupported = _sentences_only(answer, turn, cited)
            position = len(text)
            break
        pieces.append(_link_markers(_text(text[position:found]), turn, cited))
        pieces.append(_render_sentence(sentence, turn, cited))
        unsupported += sentence.supported is False
        position = found + len(sentence.text)
    pieces.append(_link_markers(_text(text[position:]), turn, cited))
    body = "".join(pieces)
    notes = []
    if answer.fallback:
        notes.append(f'<p class="fn-note fn-fallback">Quoted instead: {esc(answer.fallback)}.</p>')
    if unsupported:
        noun = "sentence is" if unsupported == 1 else "sentences are"
        notes.append(f'<p class="fn-note fn-note-warn">{unsupported} {noun} not supported by a '
                     "cited passage; treat with care.</p>")
    if not answer.citations:
        notes.append('<p class="fn-note fn-note-warn">No passage supports this answer. '
                     "The closest material is in the sources panel.</p>")
    return f'<div class="fn-answer">{body}</div>{"".join(notes)}'


def _sentences_only(answer: Answer, turn: int, cited: set[int]) -> tuple[list[str], int]:
    parts = [_render_sentence(s, turn, cited) for s in answer.sentences]
    return [" ".join(parts)], sum(s.supported is False for s in answer.sentences)


def _render_sentence(sentence: Sentence, turn: int, cited: set[int]) -> str:
    body = _link_markers(_text(sentence.text), turn, cited)
    if sentence.supported is False:
        return (f'<span class="fn-sentence fn-unsupported" title="Not supported by a cited passage">'
                f'{body} <span class="fn-badge fn-badge-warn">unsupported</span></span>')
    if sentence.supported and sentence.attributed:
        # The writer cited nothing or the wrong passage; the check found the one that says it.
        return (f'<span class="fn-sentence fn-supported" title="{esc(ATTRIBUTED)}">{body} '
                f'<span class="fn-badge fn-badge-muted">citation corrected</span></span>')
    if sentence.supported:
        return f'<span class="fn-sentence fn-supported">{body}</span>'
    return f'<span class="fn-sentence">{body}</span>'


def _render_refusal(answer: Answer, turn: int) -> str:
    # One line per document (its best passage): three passages of one file are one suggestion.
    first: dict[str, tuple[int, Passage, int]] = {}
    for i, p in enumerate(answer.closest, start=1):
        index, best, count = first.get(p.source, (i, p, 0))
        first[p.source] = (index, best, count + 1)
    links = "".join(
        f'<li><a class="fn-closest-link" href="#{closest_id(turn, i)}">{esc(_title(p))}</a>'
        f' <span class="fn-score">relevance {p.score:.2f}'
        f'{f" · {count} passages" if count > 1 else ""}</span></li>'
        for i, p, count in first.values()
    )
    closest = (f'<p class="fn-note">Closest material (not enough to answer):</p><ul class="fn-closest">'
               f"{links}</ul>") if links else ""
    why = ""
    if answer.refusal_reason:
        sure = answer.judgement.get("probability")
        odds = f" (judged {sure:.0%} likely to be answerable)" if isinstance(sure, float) and sure > 0 else ""
        why = f'<p class="fn-note fn-why">Why: {esc(answer.refusal_reason)}{odds}.</p>'
    return (f'<div class="fn-refusal"><span class="fn-badge fn-badge-refusal">not in the documents</span>'
            f"<p>{_text(answer.text)}</p>{why}{closest}</div>")


def render_error(message: str) -> str:
    """An error in place of an answer."""
    return (f'<div class="fn-refusal fn-error"><span class="fn-badge fn-badge-warn">error</span>'
            f"<p>{_text(message)}</p></div>")


# --------------------------------------------------------------------------- sources
def render_sources(answers: Sequence[Answer | None]) -> str:
    """The sources panel for a conversation: one section per answered turn, the last one shown.

    ``answers`` holds one entry per turn (``None`` for a turn that failed), so a marker's
    turn number matches the chat.
    """
    last = max((t for t, a in enumerate(answers) if a is not None), default=None)
    if last is None:
        return SOURCES_PLACEHOLDER
    sections = [_render_turn(answer, turn, current=turn == last)
                for turn, answer in enumerate(answers) if answer is not None]
    return '<div class="fn-sources">' + "".join(sections) + "</div>"


def _render_turn(answer: Answer, turn: int, *, current: bool) -> str:
    classes = "fn-turn fn-current" if current else "fn-turn"
    head = (f'<div class="fn-turn-head"><span class="fn-turn-label">Sources for</span> '
            f'<span class="fn-turn-question">{esc(answer.question)}</span></div>')
    if answer.citations:
        cards = "".join(_render_citation(c, turn) for c in answer.citations)
    elif answer.conversation:
        cards = '<p class="fn-note">Not a question about the documents: nothing to cite.</p>'
    else:
        intro = ("The documents do not answer this question. Closest material:" if answer.refused
                 else "No passage supports this answer. Closest material:")
        cards = f'<p class="fn-note">{intro}</p>' + ("".join(
            _render_passage_card(p, closest_id(turn, i), label=f"#{i}", label_title="closest passage",
                                 status=f'<span class="fn-badge fn-badge-muted">relevance {p.score:.2f}</span>')
            for i, p in enumerate(answer.closest, start=1)) or '<p class="fn-note">(none)</p>')
    return f'<section class="{classes}" id="fn-turn-{turn}">{head}{cards}</section>'


def _render_citation(citation: Citation, turn: int) -> str:
    status = (f'<span class="fn-badge fn-badge-ok" title="support score {citation.support_score:.2f}">'
              f"supported</span>" if citation.supported else
              f'<span class="fn-badge fn-badge-warn" title="support score {citation.support_score:.2f}">'
              f"unsupported</span>")
    return _render_passage_card(citation.passage, source_id(turn, citation.marker),
                                label=f"[{citation.marker}]", label_title=f"source {citation.marker}",
                                quote=citation.quote, status=status,
                                unsupported=not citation.supported)


def _render_passage_card(passage: Passage, element_id: str, *, label: str, label_title: str,
                         quote: str = "", status: str = "", unsupported: bool = False) -> str:
    meta = [f'<span class="fn-file" title="file in the corpus">{esc(passage.source)}</span>']
    if passage.authors:
        meta.insert(0, f'<span class="fn-authors">{esc(passage.authors)}</span>')
    if passage.page:
        meta.append(f'<span class="fn-page">p.&nbsp;{esc(passage.page)}</span>')
    link = _safe_url(passage.url)
    if link:
        meta.append(f'<a class="fn-url" href="{esc(link)}" target="_blank" rel="noopener noreferrer">'
                    f"{esc(urlparse(link).hostname or link)}</a>")
    classes = "fn-source fn-source-unsupported" if unsupported else "fn-source"
    return (
        f'<article class="{classes}" id="{element_id}">'
        f'<div class="fn-card-head"><span class="fn-label" title="{esc(label_title)}">{esc(label)}</span>'
        f'<span class="fn-title">{esc(_title(passage))}</span>{status}</div>'
        f'<div class="fn-meta">{" · ".join(meta)}</div>'
        f'<blockquote class="fn-passage">{highlight(passage.text, quote)}</blockquote>'
        "</article>"
    )


def highlight(text: str, quote: str) -> str:
    """Escaped ``text`` with ``quote`` wrapped in ``<mark>`` (matched exactly, else across any whitespace)."""
    quote = quote.strip()
    if not quote:
        return _text(text)
    start = text.find(quote)
    end = start + len(quote)
    if start < 0:
        words = quote.split()
        match = re.search(r"\s+".join(re.escape(w) for w in words), text) if words else None
        if match is None:
            return _text(text) + f'<p class="fn-note">Supporting sentence: <mark>{_text(quote)}</mark></p>'
        start, end = match.span()
    return f"{_text(text[:start])}<mark>{_text(text[start:end])}</mark>{_text(text[end:])}"


def _title(passage: Passage) -> str:
    return passage.title or passage.source


def _safe_url(url: str) -> str:
    """``url`` if it is http(s), else empty: a document's metadata must not smuggle in javascript:."""
    try:
        parsed = urlparse(url.strip())
    except ValueError:
        return ""
    return url.strip() if parsed.scheme in {"http", "https"} and parsed.netloc else ""


# --------------------------------------------------------------------------- misc
def render_status(lines: Sequence[tuple[str, str]]) -> str:
    """Result lines of a documents operation; each is (kind, text) with kind ok, error or info."""
    if not lines:
        return ""
    items = "".join(f'<li class="fn-status-{esc(kind)}">{_text(text)}</li>' for kind, text in lines)
    return f'<ul class="fn-status">{items}</ul>'
