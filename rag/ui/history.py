"""Saved conversations and export in the Chat tab: list, reopen, continue, delete; download an
answer or the whole conversation as Markdown or CSL-JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr

from rag import export, render
from rag.config import Settings
from rag.conversations import ConversationStore, StoredTurn, new_id
from rag.errors import FootnoteError
from rag.ui.common import PRIVATE, Turn

SCOPES = ["Whole conversation", "Last answer"]


def exports_dir(settings: Settings) -> Path:
    """Where exported files are written for download."""
    return settings.data_dir / "exports"


def _choices(store: ConversationStore) -> list[tuple[str, str]]:
    return [(f"{s.title} \u00b7 {s.updated[:16].replace('T', ' ')} \u00b7 {s.turns} "
             f"question{'s' * (s.turns != 1)}", s.id) for s in store.list()]


@dataclass
class History:
    """What the chat wires to: ``persist`` after each answer, ``start_over`` on a new conversation,
    ``refresh`` when the page loads."""

    state: Any
    saved: Any
    persist: Callable[..., tuple[Any, ...]]
    start_over: Callable[[], dict[str, Any]]
    refresh: Callable[[], Any]


def build(base: Settings, *, turns: Any, chat_outputs: Sequence[Any]) -> History:
    """Lay out the conversations panel inside the current layout and wire its events.

    ``chat_outputs`` are the chatbot, sources panel, turns state and question box.
    """
    store = ConversationStore(base.data_dir)
    conversation = gr.State({"id": "", "saved": 0})
    with gr.Accordion("Conversations", open=False, elem_id="fn-history"):
        with gr.Row(equal_height=True):
            saved = gr.Dropdown(label="Past conversations", choices=[], value=None, scale=4,
                                elem_id="fn-history-choice")
            open_button = gr.Button("Open", size="md", scale=1, elem_id="fn-history-open")
            delete_button = gr.Button("Delete", size="md", variant="stop", scale=1, elem_id="fn-history-delete")
        with gr.Row(equal_height=True):
            scope = gr.Radio(SCOPES, value=SCOPES[0], label="Export", scale=3, elem_id="fn-export-scope")
            md_button = gr.Button("Markdown", size="md", scale=1, elem_id="fn-export-md")
            csl_button = gr.Button("CSL-JSON", size="md", scale=1, elem_id="fn-export-csl")
        # Shown once there is a file: an empty file box is a large blank drop zone.
        download = gr.File(label="Download", interactive=False, visible=False, elem_id="fn-export-file")

    def listing(selected: str | None = None) -> Any:
        return gr.Dropdown(choices=_choices(store), value=selected)

    def persist(state: dict[str, Any], turns: list[Turn]) -> tuple[Any, ...]:
        if len(turns) <= state["saved"]:
            return state, gr.skip()
        conversation_id = state["id"] or new_id()
        try:
            store.append(conversation_id, [StoredTurn(t.question, t.answer, t.error) for t in turns[state["saved"]:]])
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        return {"id": conversation_id, "saved": len(turns)}, listing(conversation_id)

    def reopen(conversation_id: str | None) -> tuple[Any, ...]:
        if not conversation_id:
            raise gr.Error("Choose a conversation in the list first.")
        try:
            loaded = store.load(conversation_id)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        from rag.ui.chat import messages, sources

        restored = [Turn(t.question, t.answer, t.error) for t in loaded.turns]
        return (messages(restored), sources(restored), restored, "",
                {"id": loaded.id, "saved": len(restored)})

    def delete(conversation_id: str | None, state: dict[str, Any]) -> tuple[Any, ...]:
        if not conversation_id:
            raise gr.Error("Choose a conversation in the list first.")
        try:
            store.delete(conversation_id)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info("Conversation deleted.")
        if state["id"] == conversation_id:  # the one on screen stays, saved afresh if continued
            state = {"id": "", "saved": 0}
        return listing(), state

    def export_file(fmt: str, which: str, turns: list[Turn]) -> Any:
        answers = [t.answer for t in turns if t.answer is not None]
        if which == SCOPES[1]:
            answers = answers[-1:]
        if not answers:
            raise gr.Error("Nothing to export yet: ask a question first.")
        try:
            text = export.export(answers, fmt)
        except FootnoteError as exc:
            raise gr.Error(str(exc)) from exc
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        folder = exports_dir(base)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"footnote-{stamp}{export.SUFFIXES[fmt]}"
        path.write_text(text, encoding="utf-8")
        return gr.File(value=str(path), visible=True)

    def start_over() -> dict[str, Any]:
        return {"id": "", "saved": 0}

    chatbot, panel, _, question = chat_outputs
    open_button.click(reopen, [saved], [chatbot, panel, turns, question, conversation], queue=False, **PRIVATE)
    delete_button.click(delete, [saved, conversation], [saved, conversation], queue=False, **PRIVATE,
                        js="(id, state) => (id && !confirm('Delete this conversation?')) ? [null, state] : [id, state]")
    md_button.click(lambda which, t: export_file("md", which, t), [scope, turns], download, **PRIVATE)
    csl_button.click(lambda which, t: export_file("csl-json", which, t), [scope, turns], download, **PRIVATE)
    return History(state=conversation, saved=saved, persist=persist, start_over=start_over,
                   refresh=lambda: listing())
