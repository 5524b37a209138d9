"""Greetings and questions about Footnote get a reply about Footnote, never the documents' sentences."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.pipeline import ask
from rag.render import render_answer, render_sources
from rag.smalltalk import REASON, conversational, reply
from tests.helpers import SEED
from tests.scripted import ScriptedBackend


@pytest.mark.parametrize("message", [
    "hi, what can you do?", "Hello!", "Hi there, who are you?", "good morning Footnote",
    "thanks!", "Thank you so much :)", "ok thanks", "help", "What documents do you have?",
    "How does this work?", "bye", "Hey! How do I use this?"])
def test_conversation_is_recognised(message: str) -> None:
    assert conversational(message)


@pytest.mark.parametrize("message", [
    "hi, why did the Great Leap Forward fail?", "Help me understand collectivisation",
    "Who are you, Stalin?", "What is the meaning of life?", "Write me a short poem about autumn.",
    "What did Bukharin do?", "thanks to what did Soviet output grow?", "", "???"])
def test_questions_are_not_conversation(message: str) -> None:
    assert not conversational(message)


def test_reply_says_what_the_library_holds() -> None:
    titles = [f"Title {n}" for n in range(5)]
    text = reply("hi, what can you do?", titles)
    assert text.startswith("Hello.") and "5 documents" in text and "“Title 2”" in text and "2 more" in text
    assert "library is empty" in reply("help", [])
    assert reply("thanks, bye", titles) == "You're welcome. Goodbye."


def test_greeting_is_answered_without_retrieval_or_the_writer(seeded: Settings, scripted: ScriptedBackend) -> None:
    answer = ask("hi, what can you do?", settings=seeded, backend="scripted")
    assert answer.refused and answer.refusal_reason == REASON and answer.conversation
    assert answer.to_dict()["conversation"] is True
    assert answer.citations == () and answer.closest == ()
    assert "1 document" in answer.text and "Stalin" in answer.text  # the seed's title
    assert scripted.seen == []  # the writer was never asked
    html = render_answer(answer, 0)
    assert "not in the documents" not in html and "Hello." in html
    assert "nothing to cite" in render_sources([answer])


def test_question_after_a_greeting_is_answered_from_the_documents(seeded: Settings) -> None:
    answer = ask("hi, which book argues that moving labour out of agriculture caused the collapse?",
                 settings=seeded)
    assert not answer.refused and answer.refusal_reason != REASON and not answer.conversation
    assert answer.citations and answer.citations[0].passage.source == SEED.name
