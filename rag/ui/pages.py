"""The page view under the sources panel: clicking a citation shows the cited PDF page or image with
the passage highlighted, or a text passage in its surrounding text."""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from rag import page_view, render
from rag.config import Settings
from rag.errors import FootnoteError
from rag.limits import LoadLimits
from rag.types import Passage
from rag.ui.common import PRIVATE, Turn

REQUEST = re.compile(r"^fn-(src|close)-(\d+)-(\d+)$")
PLACEHOLDER = '<p class="fn-hint">Click a citation to see it in its document.</p>'
# Runs in the browser before the handler: the request is the card id the click handler left.
PICK_REQUEST = "(request, turns) => [window.__footnotePage || request, turns]"


def _cited(turns: list[Turn], request: str) -> tuple[Passage, str] | None:
    match = REQUEST.match(request or "")
    if not match:
        return None
    kind, turn, number = match.group(1), int(match.group(2)), int(match.group(3))
    if not 0 <= turn < len(turns) or turns[turn].answer is None:
        return None
    answer = turns[turn].answer
    assert answer is not None
    if kind == "src":
        for citation in answer.citations:
            if citation.marker == number:
                return citation.passage, citation.quote
        return None
    return (answer.closest[number - 1], "") if 0 < number <= len(answer.closest) else None


def show(base: Settings, request: str, turns: list[Turn]) -> tuple[Any, str]:
    """The page image (or None) and the note or surrounding text for one clicked citation."""
    found = _cited(turns, request)
    if found is None:
        return None, PLACEHOLDER
    passage, quote = found
    path = (base.corpus_dir / passage.source).resolve()
    if not path.is_relative_to(base.corpus_dir.resolve()) or not path.is_file():
        return None, (f'<p class="fn-note fn-note-warn">{render.esc(passage.source)} is no longer in the '
                      "corpus folder.</p>")
    limits = LoadLimits.from_settings(base.limits)
    try:
        if page_view.is_page_source(passage.source):
            view = page_view.render_source(path, passage.source, passage.page, passage.text, quote,
                                           limits=limits)
            where = f"page {passage.page} of " if passage.page else ""
            how = " (located with OCR)" if view.method == "OCR" else ""
            state = (f"passage highlighted{how}" if view.found
                     else "the passage could not be located on the page")
            return view.image, (f'<p class="fn-hint fn-page-caption">{where}<code>{render.esc(passage.source)}'
                                f"</code> \u00b7 {state}</p>")
        before, text, after = page_view.surrounding_text(path, passage.source, passage.start, passage.end,
                                                         max_bytes=int(base.max_file_mb * 1e6), limits=limits)
    except FootnoteError as exc:
        return None, f'<p class="fn-note fn-note-warn">{render.esc(exc)}</p>'
    return None, (f'<p class="fn-hint fn-page-caption"><code>{render.esc(passage.source)}</code> \u00b7 the '
                  f'passage in its surrounding text</p><div class="fn-context">\u2026{render.esc(before)}'
                  f"<mark>{render.esc(text)}</mark>{render.esc(after)}\u2026</div>")


def build(base: Settings, turns: Any) -> None:
    """Lay out the page view inside the current column and wire it to citation clicks."""
    with gr.Accordion("In the document", open=True, elem_id="fn-page"):
        note = gr.HTML(PLACEHOLDER, elem_id="fn-page-note", js_on_load=None)
        image = gr.Image(None, type="pil", interactive=False, show_label=False, elem_id="fn-page-image",
                         buttons=["fullscreen"], height=640)
        request = gr.Textbox("", visible="hidden", elem_id="fn-page-request")
        go = gr.Button("Show", visible="hidden", elem_id="fn-page-go")

    go.click(lambda r, t: show(base, r, t), [request, turns], [image, note], js=PICK_REQUEST,
             concurrency_id="pages", concurrency_limit=2, show_progress_on=[note], **PRIVATE)
