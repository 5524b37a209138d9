"""The Chat tab: questions, streamed answers with clickable citations, the sources panel, feedback,
and the answer settings the other tabs reuse."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr

from rag import pipeline, render
from rag.answer import backend_names
from rag.config import Settings
from rag.errors import FootnoteError
from rag.local_model import queued
from rag.types import Answer, Status
from rag.ui import history as saved_conversations
from rag.ui import pages
from rag.ui.common import PRIVATE, Turn, messages, session_settings, sources

SEED_SOURCE = "stalin-industrialisation-vs-great-leap-forward.txt"
SEED_EXAMPLES = [
    "Which book argues that moving labour out of agriculture caused the collapse?",
    "Why did Mao oppose the Soviet model?",
    "What role did overreporting by local cadres play?",
]
# The app's backend choices: every registered backend, with `auto` first.
BACKENDS = ["auto", *backend_names()]
_feedback_lock = threading.Lock()


@dataclass
class ChatTab:
    """The components other parts of the app use: the answer settings and the conversation state."""

    answer_settings: list[Any]
    collections: Any
    turns: Any
    outputs: list[Any]
    history: saved_conversations.History


def save_feedback(path: Path, turn: Turn, rating: str) -> None:
    """Append one rating, with the question, answer and sources, to a JSON Lines file."""
    answer = turn.answer
    assert answer is not None
    record = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rating": rating,
        "question": turn.question,
        "answer": answer.text,
        "refused": answer.refused,
        "backend": answer.backend,
        "sources": [
            {"marker": c.marker, "source": c.passage.source, "title": c.passage.title,
             "page": c.passage.page, "start": c.passage.start, "end": c.passage.end,
             "quote": c.quote, "supported": c.supported}
            for c in answer.citations
        ],
        # What the user saw beside a refusal (or an answer no passage supported).
        "closest": [
            {"source": p.source, "title": p.title, "page": p.page, "start": p.start, "end": p.end,
             "score": round(p.score, 4)}
            for p in ([] if answer.citations else answer.closest)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with _feedback_lock, path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def rating_of(liked: Any) -> str | None:
    """``up``, ``down``, or None for a rating taken back, from Gradio's like data."""
    if liked is True or liked == "Like":
        return "up"
    if liked is False or liked == "Dislike":
        return "down"
    return None


def build(base: Settings, *, has_seed: bool) -> ChatTab:
    """Lay out the tab inside the current ``gr.Blocks`` and wire its events."""
    feedback_path = base.data_dir / "feedback.jsonl"
    turns = gr.State([])
    # Made first, placed in the right-hand column: the conversations panel on the left fills it too.
    panel = gr.HTML(render.SOURCES_PLACEHOLDER, elem_id="fn-sources-panel", js_on_load=None, padding=False,
                    render=False)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            chatbot = gr.Chatbot(
                elem_id="fn-chat", label="Conversation", show_label=False, height=540,
                render_markdown=False, sanitize_html=True, layout="bubble",
                # Gradio's copy buttons would copy the rendered HTML; selecting text works.
                buttons=[],
                placeholder="**Ask a question about your documents.**<br>Every sentence of the answer "
                "cites the passage it comes from; click a marker to see it.",
                examples=[{"text": q} for q in SEED_EXAMPLES] if has_seed else None,
            )
            with gr.Row(equal_height=True):
                question = gr.Textbox(
                    elem_id="fn-question", show_label=False, scale=6, lines=2, max_lines=6,
                    placeholder="Ask about your documents\u2026 (Enter to send, Shift+Enter for a new line)",
                    autofocus=True)
                with gr.Column(scale=1, min_width=130):
                    ask_button = gr.Button("Ask", variant="primary", elem_id="fn-ask")
                    clear_button = gr.Button("New conversation", size="sm", variant="secondary",
                                             elem_id="fn-clear")
            collections = gr.Dropdown(
                choices=collection_choices(base), value=[], multiselect=True, allow_custom_value=True,
                label="Search in",
                info="Collections (folders of the corpus) to search; empty: all documents.",
                elem_id="fn-collections")
            with gr.Accordion("Answer settings", open=False, elem_id="fn-settings"):
                with gr.Row():
                    backend = gr.Radio(BACKENDS, value=base.answer.backend, label="Backend",
                                       info="extractive works offline; openai and ollama need a "
                                       "running server.", elem_id="fn-backend")
                    top_k = gr.Slider(1, 20, value=base.retrieval.top_k, step=1,
                                      label="Passages retrieved (k)", elem_id="fn-k")
                with gr.Row():
                    model = gr.Textbox(value=base.answer.model, label="Model", placeholder="e.g. llama3.2",
                                       elem_id="fn-model")
                    base_url = gr.Textbox(value=base.answer.base_url, label="Base URL",
                                          placeholder="http://127.0.0.1:8080/v1", elem_id="fn-base-url")
                hybrid = gr.Checkbox(value=base.retrieval.hybrid, label="Hybrid search (keywords + meaning)",
                                     elem_id="fn-hybrid")
            history = saved_conversations.build(base, turns=turns, chat_outputs=[chatbot, panel, turns, question])
        with gr.Column(scale=2, min_width=320):
            panel.render()
            pages.build(base, turns)

    def respond(question: str, turns: list[Turn], scope: list[str] | None, backend: str, model: str,
                base_url: str, k: float, hybrid: bool) -> Iterator[tuple[Any, ...]]:
        if not (question or "").strip():
            yield messages(turns), sources(turns), turns, ""
            return
        try:
            question = pipeline.check_question(question, settings=base)
            request = session_settings(base, backend, model, base_url, k, hybrid)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        history = [(t.question, t.answer.text) for t in turns if t.answer is not None]
        waiting = render.render_streaming("", queued=queued())
        yield messages(turns, (question, waiting)), sources(turns), turns, ""
        final: Answer | None = None
        try:
            for piece in pipeline.stream(question, history, settings=request, collections=scope or None):
                if isinstance(piece, Answer):
                    final = piece
                elif isinstance(piece, Status):  # each step may first wait for other sessions' model calls
                    status = render.render_streaming("", queued=queued(), status=piece.text)
                    yield messages(turns, (question, status)), gr.skip(), turns, gr.skip()
                else:
                    yield (messages(turns, (question, render.render_streaming(piece))), gr.skip(),
                           turns, gr.skip())
        except FootnoteError as exc:
            turns = [*turns, Turn(question, None, str(exc))]
            yield messages(turns), sources(turns), turns, gr.skip()
            raise gr.Error(str(exc)) from exc
        assert final is not None
        turns = [*turns, Turn(question, final)]
        yield messages(turns), sources(turns), turns, gr.skip()

    def clear() -> tuple[Any, ...]:
        return [], render.SOURCES_PLACEHOLDER, [], ""

    def pick_example(data: gr.SelectData) -> str:
        value = data.value
        return str(value.get("text", "") if isinstance(value, dict) else value)

    def feedback(turns: list[Turn], data: gr.LikeData) -> None:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn_no = int(index) // 2
        rating = rating_of(data.liked)
        if rating is None or not 0 <= turn_no < len(turns) or turns[turn_no].answer is None:
            return
        save_feedback(feedback_path, turns[turn_no], rating)
        gr.Info("Thanks: your feedback was saved.")

    # Answers run side by side, up to four at a time.
    chat = {"concurrency_id": "chat", "concurrency_limit": 4, **PRIVATE}
    answer_settings = [backend, model, base_url, top_k, hybrid]
    chat_inputs = [question, turns, collections, *answer_settings]
    chat_outputs = [chatbot, panel, turns, question]
    saving = {"fn": history.persist, "inputs": [history.state, turns],
              "outputs": [history.state, history.saved], "queue": False, **PRIVATE}
    question.submit(respond, chat_inputs, chat_outputs, show_progress="hidden", **chat).then(**saving)
    ask_button.click(respond, chat_inputs, chat_outputs, show_progress="hidden", **chat).then(**saving)
    chatbot.example_select(pick_example, None, question, queue=False, **PRIVATE).then(
        respond, chat_inputs, chat_outputs, show_progress="hidden", **chat).then(**saving)
    for event in (clear_button.click, chatbot.clear):
        event(clear, None, chat_outputs, queue=False, **PRIVATE).then(
            history.start_over, None, history.state, queue=False, **PRIVATE)
    chatbot.like(feedback, [turns], None, queue=False, **PRIVATE)
    return ChatTab(answer_settings=answer_settings, collections=collections, turns=turns, outputs=chat_outputs,
                   history=history)


def collection_choices(settings: Settings) -> list[str]:
    """The collections that hold documents, for the chat's "Search in" box."""
    try:
        return list(pipeline.collections(settings))
    except FootnoteError:
        return []
