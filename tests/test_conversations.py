"""The conversation store on a real data folder: save, list, reopen, continue, delete, concurrency."""

from __future__ import annotations

import json
from dataclasses import replace
import threading
from pathlib import Path

import pytest

from rag.conversations import ConversationStore, StoredTurn, answer_from_dict, new_id
from rag.errors import StoreError
from rag.types import Answer, Citation, Passage, Sentence

PASSAGE = Passage(marker=1, id="abc", text="The Turksib railway opened in May 1930.", source="turksib.pdf",
                  title="Turksib", score=0.8, start=10, end=49, page=2, authors="M. Payne",
                  url="https://example.org/turksib")
ANSWER = Answer(question="When did the Turksib open?", text="It opened in May 1930 [1].",
                citations=(Citation(1, PASSAGE, "The Turksib railway opened in May 1930.", True, 0.91),),
                sentences=(Sentence("It opened in May 1930 [1].", (1,), True),), backend="extractive")


def test_answer_survives_a_round_trip_through_json() -> None:
    back = answer_from_dict(json.loads(json.dumps(ANSWER.to_dict())))

    assert back.to_dict() == ANSWER.to_dict()
    # A reopened conversation keeps a quoted fallback's note and a reply to a greeting as such.
    for kept in (replace(ANSWER, fallback="the local backend declined"),
                 Answer(question="hi", text="Hello.", refused=True, refusal_reason="conversation", conversation=True)):
        back = answer_from_dict(json.loads(json.dumps(kept.to_dict())))
        assert (back.fallback, back.conversation) == (kept.fallback, kept.conversation)
        assert back.to_dict() == kept.to_dict()


def test_saved_conversation_is_listed_and_reopened_with_its_turns(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    conversation = new_id()
    store.append(conversation, [StoredTurn(ANSWER.question, ANSWER)])
    store.append(conversation, [StoredTurn("And then?", None, "The local model is busy.")])

    listed = ConversationStore(tmp_path).list()  # a new store: as after a restart
    loaded = ConversationStore(tmp_path).load(conversation)

    assert [(s.id, s.title, s.turns) for s in listed] == [(conversation, ANSWER.question, 2)]
    assert loaded.turns[0].answer is not None
    assert loaded.turns[0].answer.citations[0].passage.page == 2
    assert loaded.turns[0].answer.text == ANSWER.text
    assert loaded.turns[1] == StoredTurn("And then?", None, "The local model is busy.")


def test_deleted_conversation_is_gone(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    keep, drop = new_id(), new_id()
    store.append(keep, [StoredTurn("Kept?", ANSWER)])
    store.append(drop, [StoredTurn("Dropped?", ANSWER)])

    store.delete(drop)

    assert [s.id for s in store.list()] == [keep]
    with pytest.raises(StoreError, match="no longer exists"):
        store.load(drop)
    assert sorted(p.name for p in (tmp_path / "conversations").iterdir()) == [f"{keep}.json", f"{keep}.json.lock"]


def test_an_id_that_is_not_one_cannot_name_a_file_outside_the_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a conversation id"):
        ConversationStore(tmp_path).load("../../etc/passwd")


def test_sessions_appending_at_once_lose_no_turn(tmp_path: Path) -> None:
    conversation = new_id()

    def session(n: int) -> None:
        store = ConversationStore(tmp_path)
        for i in range(10):
            store.append(conversation, [StoredTurn(f"session {n} question {i}", None, "x")])

    threads = [threading.Thread(target=session, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    questions = [t.question for t in ConversationStore(tmp_path).load(conversation).turns]
    assert sorted(questions) == sorted(f"session {n} question {i}" for n in range(4) for i in range(10))
    assert not list((tmp_path / "conversations").glob(".conversation.*")), "no temporary file is left"


def test_unreadable_file_is_left_out_of_the_list_and_a_clean_error_when_opened(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    good, bad = new_id(), new_id()
    store.append(good, [StoredTurn("Fine?", ANSWER)])
    (tmp_path / "conversations" / f"{bad}.json").write_text("{half a fi", encoding="utf-8")

    assert [s.id for s in store.list()] == [good]
    with pytest.raises(StoreError, match="unreadable"):
        store.load(bad)
