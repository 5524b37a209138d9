"""What the writer reads, and its answer as the reader sees it: streamed with copying garbles put
right, announced with the judge's words, opened with them when it does not say them."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import accumulate
from textwrap import shorten

from rag.answer import Backend
from rag.answer.extractive import ExtractiveBackend
from rag.answer.prompt import LOCAL_REFUSAL
from rag.embeddings import Embedder
from rag.judge import Verdict
from rag.retrieval import Retrieval
from rag.text import holds_quote, repair_copied_words, source_vocabulary, strip_markers
from rag.types import Passage

UNFINISHED_WORD = re.compile(r"[A-Za-zÀ-ÿ]+$")


def written(writer: Backend, question: str, found: Retrieval, verdict: Verdict) -> Iterator[str]:
    """The writer's answer as it grows (whole text so far). An LLM's words garbled in copying are
    put right against its passages (``repair_copied_words``), so each word is held back until it
    ends; the extractive writer's quotes are exact already."""
    pieces = writer.generate(question, writer_input(writer, verdict, found), lead=verdict.lead)
    if writer.name == "extractive":
        yield from accumulate(pieces)
        return
    vocabulary = source_vocabulary([p.text for p in found.passages])
    raw = shown = ""
    done = 0  # raw[:done] ends between words and is shown, repaired
    for piece in pieces:
        raw += piece
        end = len(UNFINISHED_WORD.sub("", raw))
        if end > done:
            shown += repair_copied_words(raw[done:end], vocabulary)
            done = end
            yield shown
    if done < len(raw):
        yield shown + repair_copied_words(raw[done:], vocabulary)


def writing_status(sentence: str, writer: str) -> str:
    """What the reader sees while ``writer`` reads the passages: the passage sentence holding the
    judge's quote, if any."""
    words = shorten(sentence, 160, placeholder="\u2026")
    found = f"Found in the documents: \u201c{words}\u201d. " if sentence.strip() else ""
    return f"{found}Writing a cited answer ({writer} model)\u2026"


def quoting_status(writer: str, *, fallback: bool) -> str:
    """What the reader sees while the local model chooses the passages' sentences to quote, in
    place of an answer when ``fallback`` (the ``writer`` backend gave none its passages support)."""
    why = f"The {writer} model gave no answer the passages support. " if fallback else ""
    return f"{why}Choosing the passages' sentences that answer the question\u2026"


def writer_input(writer: Backend, verdict: Verdict, found: Retrieval) -> Sequence[Passage]:
    """What ``writer`` answers from: the sentences the judge has just read, for a writer that
    asks for them (the local model: llama.cpp holds that prompt in its cache, so only the task is
    new), else the whole passages. The sentences keep their passages' numbers, and citations are
    checked against the whole passages either way."""
    return verdict.shown if writer.reads_judged_sentences and verdict.shown else found.passages


def lead_sentence(holding: str, *, lead: str, answer: str) -> str:
    """``holding``, the passage sentence holding the judge's quote (``Verdict.lead``; see
    ``quoted_sentence``), when a writer's ``answer`` does not say it: the answer then opens with
    the words the judge found. Empty when there is no quote, the writer declined or said it. Only
    an answer its passages support is opened so: one that is not falls back to quotes, which lead
    with that sentence anyway."""
    if not lead or declined(answer) or holds_quote(strip_markers(answer), lead):
        return ""
    return holding


def quoted_sentence(embedder: Embedder, question: str, passages: Sequence[Passage], lead: str) -> str:
    """The passage sentence holding the judge's quote, cited (the extractive scorer picks it);
    empty when there is no quote or no sentence holds it."""
    if not lead:
        return ""
    sentence = "".join(ExtractiveBackend(embedder, max_sentences=1).generate(question, passages, lead=lead))
    return sentence if holds_quote(strip_markers(sentence), lead) else ""


def declined(text: str) -> bool:
    """Whether a writer said nothing, or only the refusal sentence its prompt asks for."""
    return not text or _normal(strip_markers(text)) == _normal(LOCAL_REFUSAL)


def _normal(text: str) -> str:
    return " ".join(text.lower().replace("’", "'").strip(" .\"'").split())
