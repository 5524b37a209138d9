"""Past conversations in the data folder: one JSON file each, written atomically, listed, reopened,
continued and deleted.

Each conversation is ``data_dir/conversations/<id>.json``. Turns are appended under a per-file
lock and the file is replaced in one rename, so two browser sessions continuing the same
conversation both keep their turns and a crash never leaves half a file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from rag.errors import StoreError
from rag.manifest import data_folder_error
from rag.types import Answer, Citation, Passage, Sentence

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9a-f]{32}$")
TITLE_CHARS = 80
LOCK_SECONDS = 30.0


@dataclass(frozen=True)
class StoredTurn:
    """One saved exchange: the question and its answer, or the error it hit."""

    question: str
    answer: Answer | None
    error: str = ""


@dataclass(frozen=True)
class Summary:
    """A conversation as the list shows it."""

    id: str
    title: str
    updated: str
    turns: int


@dataclass(frozen=True)
class Conversation:
    """A saved conversation with all its turns."""

    id: str
    title: str
    created: str
    updated: str
    turns: tuple[StoredTurn, ...]


def new_id() -> str:
    """A fresh conversation id (32 hex digits, also its file name)."""
    return uuid.uuid4().hex


def answer_from_dict(data: dict[str, Any]) -> Answer:
    """The ``Answer`` that ``Answer.to_dict`` described (passage ids and retrieval scores aside)."""
    citations = tuple(
        Citation(marker=int(c["marker"]), passage=_passage(c, int(c["marker"])), quote=str(c.get("quote", "")),
                 supported=bool(c.get("supported")), support_score=float(c.get("support_score", 0.0)))
        for c in data.get("citations", []))
    closest = tuple(_passage(p, i) for i, p in enumerate(data.get("closest", []), start=1))
    sentences = tuple(Sentence(text=str(s["text"]), markers=tuple(int(m) for m in s.get("markers", [])),
                               supported=s.get("supported"), attributed=bool(s.get("attributed")))
                      for s in data.get("sentences", []))
    return Answer(question=str(data["question"]), text=str(data["answer"]), citations=citations,
                  refused=bool(data.get("refused")), closest=closest, sentences=sentences,
                  backend=str(data.get("backend", "")),
                  standalone_question=str(data.get("standalone_question", "")),
                  timings=dict(data.get("timings", {})), refusal_reason=str(data.get("refusal_reason", "")),
                  judgement=dict(data.get("judgement", {})), fallback=str(data.get("fallback", "")),
                  conversation=bool(data.get("conversation")))


def _passage(data: dict[str, Any], marker: int) -> Passage:
    page = data.get("page")
    return Passage(marker=marker, id=str(data.get("id", "")), text=str(data.get("text", "")),
                   source=str(data["source"]), title=str(data.get("title", "")),
                   score=float(data.get("score", 0.0)), start=int(data.get("start", 0)),
                   end=int(data.get("end", 0)), page=int(page) if page is not None else None,
                   authors=str(data.get("authors", "")), url=str(data.get("url", "")))


class ConversationStore:
    """The conversations saved under one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "conversations"

    def path(self, conversation_id: str) -> Path:
        """The file of one conversation.

        Raises:
            StoreError: ``conversation_id`` is not an id this store hands out.
        """
        if not _ID.match(conversation_id or ""):
            raise StoreError(f"{conversation_id!r} is not a conversation id; pick one from the list.")
        return self.folder / f"{conversation_id}.json"

    def list(self) -> list[Summary]:
        """Saved conversations, most recently updated first (unreadable files are logged and left out)."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.glob("*.json"):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                found.append(Summary(raw["id"], raw["title"], raw["updated"], len(raw["turns"])))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("conversation file %s is unreadable (%s); left out of the list", path.name, exc)
        return sorted(found, key=lambda s: (s.updated, s.id), reverse=True)

    def load(self, conversation_id: str) -> Conversation:
        """One conversation with its turns.

        Raises:
            StoreError: no such conversation, or its file is unreadable.
        """
        raw = self._read(self.path(conversation_id))
        if raw is None:
            raise StoreError("That conversation no longer exists (deleted in another window?). "
                             "Pick another from the list.")
        turns = tuple(StoredTurn(str(t["question"]), answer_from_dict(t["answer"]) if t.get("answer") else None,
                                 str(t.get("error", ""))) for t in raw["turns"])
        return Conversation(raw["id"], raw["title"], raw["created"], raw["updated"], turns)

    def append(self, conversation_id: str, turns: Sequence[StoredTurn]) -> None:
        """Add ``turns`` at the end of a conversation, creating it (titled by its first question).

        Raises:
            StoreError: the data folder cannot be written.
        """
        path = self.path(conversation_id)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._locked(path):
            raw = self._read(path) or {"id": conversation_id, "title": "", "created": now, "turns": []}
            raw["turns"].extend({"question": t.question, "answer": t.answer.to_dict() if t.answer else None,
                                 "error": t.error} for t in turns)
            if not raw["title"] and raw["turns"]:
                raw["title"] = _title(raw["turns"][0]["question"])
            raw["updated"] = now
            self._write(path, raw)

    def delete(self, conversation_id: str) -> None:
        """Remove a conversation (nothing happens if it is already gone)."""
        path = self.path(conversation_id)
        with self._locked(path):
            path.unlink(missing_ok=True)
        path.with_name(path.name + ".lock").unlink(missing_ok=True)

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with FileLock(str(path) + ".lock", timeout=LOCK_SECONDS):
                yield
        except Timeout as exc:
            raise StoreError(f"The conversation {path.stem} is being saved by another window; try again.") from exc
        except (NotADirectoryError, PermissionError) as exc:
            raise data_folder_error(self.folder.parent, exc) from exc

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"The conversation file {path} is unreadable ({exc}). Delete it from the "
                             "list, or remove the file.") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("turns"), list):
            raise StoreError(f"The conversation file {path} is not a Footnote conversation. Remove it.")
        return raw

    @staticmethod
    def _write(path: Path, raw: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".conversation.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(raw, handle, ensure_ascii=False, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise data_folder_error(path.parent, exc) from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _title(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS - 1] + "\u2026"
