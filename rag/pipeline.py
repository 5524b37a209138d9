"""The two things Footnote does, as functions: ``ingest`` a corpus and ``ask`` a question."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence

from rag.answer import get_backend
from rag.citations import check
from rag.config import Settings, get_settings
from rag.corpus import check_collection, collection_of
from rag.embeddings import embedder_for
from rag.errors import IndexNotFoundError, InputError
from rag.indexer import Indexer, IngestReport, Progress
from rag.judge import describe, get_judge, ranks_quotes, support_checker
from rag.manifest import Entry
from rag.retrieval import Retrieval, retrieve
from rag.smalltalk import REASON as SMALL_TALK
from rag.smalltalk import conversational, reply
from rag.store import Store
from rag.text import REFUSAL, strip_markers
from rag.types import Answer, Status
from rag.writing import declined, lead_sentence, quoted_sentence, quoting_status, writing_status, written

logger = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]
# BM25 joins the answer's ranking only when its best match scores this many times its runner-up's
# (chosen with the sentence re-ranking by evals/fusion.py on the development and calibration sets).
ANSWER_KEYWORD_LEAD = 1.75


def ingest(settings: Settings | None = None, *, rebuild: bool = False,
           progress: Progress | None = None) -> IngestReport:
    """Sync the index with ``settings.corpus_dir`` (the embedding model is loaded only if a file
    needs embedding: an unchanged corpus is checked without it)."""
    settings = settings or get_settings()
    return Indexer(settings, progress=progress).sync(rebuild=rebuild)


def add(items: Sequence[str], *, settings: Settings, paths: bool = True, collection: str | None = None,
        progress: Progress | None = None) -> IngestReport:
    """Copy files (or fetch http(s) URLs) into the corpus, into ``collection`` when named, and
    index them (``Indexer.add``)."""
    return Indexer(settings, progress=progress, embedder=embedder_for(settings)).add(
        list(items), paths=paths, collection=collection)


def remove(sources: Sequence[str], *, settings: Settings) -> IngestReport:
    """Delete documents from the index and their files from the corpus (``Indexer.remove``)."""
    return Indexer(settings).remove(list(sources))


def documents(settings: Settings) -> list[Entry]:
    """What is indexed, by source, as the manifest records it."""
    return Indexer(settings).documents()


def failures(settings: Settings) -> dict[str, str]:
    """Corpus files that could not be indexed, by source, with the reason."""
    return Indexer(settings).failures()


def collections(settings: Settings) -> dict[str, int]:
    """Every collection that holds indexed documents, with how many, by name."""
    return dict(sorted(Counter(collection_of(e.source) for e in documents(settings)).items()))


def scope(settings: Settings, *, sources: Sequence[str] | None = None,
          collections: Sequence[str] | None = None) -> list[str] | None:
    """The sources a question may search: ``sources``, limited to the documents of
    ``collections`` when named; ``None`` means every document.

    Raises:
        InputError: a collection name is unusable or unknown, or nothing is left to search.
    """
    if not collections:
        return list(sources) if sources else None
    names = {check_collection(name) for name in collections}
    entries = documents(settings)
    known = {collection_of(e.source) for e in entries}
    if unknown := sorted(names - known):
        raise InputError(f"No indexed documents in the collection{'s' * (len(unknown) > 1)} "
                         f"{', '.join(unknown)}. Collections: {', '.join(sorted(known)) or 'none yet'}.")
    wanted = [e.source for e in entries if collection_of(e.source) in names and (not sources or e.source in sources)]
    if not wanted:
        raise InputError(f"None of the sources named is in the collection(s) {', '.join(sorted(names))}.")
    return wanted


def check_question(question: str, *, settings: Settings) -> str:
    """``question`` without surrounding white space, once it is known to be askable.

    The one check behind the CLI, the app's chat and the ``/ask`` API, so all three say the same.

    Raises:
        InputError: the question is empty or longer than ``settings.limits.max_question_chars``.
    """
    question = (question or "").strip()
    if not question:
        raise InputError("The question is empty. Type a question about your documents.")
    limit = settings.limits.max_question_chars
    if len(question) > limit:
        raise InputError(
            f"The question is {len(question):,} characters long; the limit is {limit:,}. Shorten it "
            "(the limit is FOOTNOTE_LIMITS__MAX_QUESTION_CHARS).")
    return question


def ask(question: str, history: History | None = None, *, settings: Settings | None = None,
        k: int | None = None, backend: str | None = None, sources: Sequence[str] | None = None,
        collections: Sequence[str] | None = None, hybrid: bool | None = None, mmr: bool | None = None,
        retrieval: Retrieval | None = None) -> Answer:
    """Answer ``question`` from the corpus with checked citations (keywords override settings)."""
    answer = None
    for piece in stream(question, history, settings=settings, k=k, backend=backend, sources=sources,
                        collections=collections, hybrid=hybrid, mmr=mmr, retrieval=retrieval):
        if isinstance(piece, Answer):
            answer = piece
    assert answer is not None
    return answer


def stream(question: str, history: History | None = None, *, settings: Settings | None = None,
           k: int | None = None, backend: str | None = None, sources: Sequence[str] | None = None,
           collections: Sequence[str] | None = None, hybrid: bool | None = None, mmr: bool | None = None,
           retrieval: Retrieval | None = None) -> Iterator[str | Status | Answer]:
    """Yield the answer text as it grows (whole text so far), then the final, checked ``Answer``;
    before the first words, a ``Status`` for each slow step (judging, reading for the answer).

    A text that does not extend the one before replaces it: the passages' own sentences when the
    writer declined, or the writer's answer opened with the judge's words.

    Only ``sources`` and the documents of ``collections`` are searched when given (see ``scope``).
    ``retrieval``, when given, is what the judge reads instead of retrieving (the evaluation
    scores the passages it judged); an accepted question's answer is written from
    ``reading_passages``.

    Raises:
        InputError: the question is empty or too long (see ``check_question``), or the
            collections name nothing to search (see ``scope``).
    """
    settings = settings or get_settings()
    question = check_question(question, settings=settings)
    if conversational(question):
        yield small_talk(question, settings)
        return
    sources = scope(settings, sources=sources, collections=collections)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    embedder = embedder_for(settings)
    writer = get_backend(settings, embedder=embedder, name=backend)
    standalone = writer.rewrite(question, list(history or []))
    timings["prepare_s"] = time.perf_counter() - started
    mark = time.perf_counter()
    found = retrieval if retrieval is not None else retrieve_passages(
        standalone, settings=settings, k=k, sources=sources, hybrid=hybrid, mmr=mmr)
    timings["retrieve_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    if found.passages:
        yield Status(f"Checking whether the {len(found.passages)} closest passages answer this\u2026")
    verdict = get_judge(settings).decide(standalone, found)
    timings["judge_s"] = time.perf_counter() - mark
    if not verdict.answerable:
        timings["total_s"] = time.perf_counter() - started
        yield REFUSAL
        yield Answer(question=question, text=REFUSAL, refused=True, closest=tuple(found.passages[:3]),
                     backend=writer.name, standalone_question=standalone, timings=timings,
                     refusal_reason=verdict.reason, judgement=describe(verdict))
        return
    mark = time.perf_counter()
    if not (writer.reads_judged_sentences and verdict.shown):  # numbered after the judge's passages
        found = reading_passages(standalone, found, settings=settings, k=k, sources=sources, hybrid=hybrid, mmr=mmr)
    # The passage sentence holding the judge's quote: shown while an LLM writes, and its opening.
    holding = "" if writer.name == "extractive" else quoted_sentence(embedder, standalone, found.passages,
                                                                     verdict.lead)
    if writer.name != "extractive":
        yield Status(writing_status(strip_markers(holding), writer.name))
    elif ranks_quotes(settings):
        yield Status(quoting_status(writer.name, fallback=False))
    text = ""
    for text in written(writer, standalone, found, verdict):
        if "first_token_s" not in timings:
            timings["first_token_s"] = time.perf_counter() - started
        yield text
    timings["generate_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    checked = check(text, found.passages, checker=support_checker(settings, embedder),
                    threshold=settings.answer.support_threshold)
    timings["check_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    if (settings.answer.fallback and writer.name != "extractive"
            and not any(c.supported for c in checked.citations)):
        # The judge found the question answerable; a writer that declines, cites nothing or writes
        # nothing its passages support should not decide the answer: show the passages' own best
        # sentences instead, and say so.
        if ranks_quotes(settings):
            yield Status(quoting_status(writer.name, fallback=True))
        quotes = "".join(get_backend(settings, embedder=embedder, name="extractive").generate(
            standalone, found.passages, lead=verdict.lead))
        quoted = check(quotes, found.passages, checker=support_checker(settings, embedder),
                       threshold=settings.answer.support_threshold)
        if quoted.citations:
            timings["total_s"] = time.perf_counter() - started
            yield quoted.text  # replaces the writer's text for readers of the stream
            yield Answer(question=question, text=quoted.text, citations=quoted.citations,
                         sentences=quoted.sentences, backend="extractive", standalone_question=standalone,
                         timings=timings, judgement=describe(verdict),
                         fallback=(f"the {writer.name} backend " + ("declined" if declined(checked.text) else
                                   "wrote nothing its passages support")
                                   + "; these are the passages' own sentences"))
            return
    if not checked.citations:
        # Nothing the writer said could be tied to a passage: a refusal with the closest material,
        # in the writer's own words when it said something other than the refusal it was taught.
        said_no = declined(checked.text)
        yield Answer(question=question, text=REFUSAL if said_no else checked.text, refused=True,
                     closest=tuple(found.passages[:3]), sentences=() if said_no else checked.sentences,
                     backend=writer.name, standalone_question=standalone, timings=timings,
                     refusal_reason=(f"the {writer.name} backend found no answer in the passages" if said_no
                                     else "nothing the answer says could be tied to a passage"),
                     judgement=describe(verdict))
        return
    quote = "" if not any(c.supported for c in checked.citations) else \
        lead_sentence(holding, lead=verdict.lead, answer=text)
    if quote:
        # An answer that stands on its own opens with the words the judge found (verbatim, so
        # cheap to check; the writer's sentences' model verdicts are cached).
        yield f"{quote} {text}"
        mark = time.perf_counter()
        checked = check(f"{quote} {text}", found.passages, checker=support_checker(settings, embedder),
                        threshold=settings.answer.support_threshold)
        timings["check_s"] += time.perf_counter() - mark
        timings["total_s"] = time.perf_counter() - started
    yield Answer(question=question, text=checked.text, citations=checked.citations,
                 sentences=checked.sentences, backend=writer.name, standalone_question=standalone,
                 timings=timings, judgement=describe(verdict))


def small_talk(message: str, settings: Settings) -> Answer:
    """A greeting, thanks or question about Footnote, answered without the documents (a refusal
    to answer from them, so evaluations count it as one)."""
    titles = [e.title or e.source for e in documents(settings)]
    return Answer(question=message, text=reply(message, titles), refused=True, refusal_reason=SMALL_TALK,
                  conversation=True)


def retrieve_passages(question: str, *, settings: Settings, k: int | None = None,
                      sources: Sequence[str] | None = None, hybrid: bool | None = None,
                      mmr: bool | None = None) -> Retrieval:
    """Ranked passages for ``question`` from the index these settings name."""
    try:
        store = _store(settings)
        return retrieve(question, settings=settings, store=store, embedder=embedder_for(settings), k=k,
                        sources=sources, hybrid=hybrid, mmr=mmr)
    except IndexNotFoundError:
        _forget_store(settings)  # the collection may have been rebuilt since it was opened
        store = _store(settings)
        return retrieve(question, settings=settings, store=store, embedder=embedder_for(settings), k=k,
                        sources=sources, hybrid=hybrid, mmr=mmr)


def reading_passages(question: str, judged: Retrieval, *, settings: Settings, k: int | None,
                     sources: Sequence[str] | None, hybrid: bool | None, mmr: bool | None) -> Retrieval:
    """What the answer to an accepted question is written from: the question retrieved again
    with ``retrieval.answer_rerank`` dense candidates re-ranked by their closest sentence and BM25
    fused only on a clear match, which finds more for questions in readers' own words; the judge
    did worse on that ranking, so it keeps the one it was calibrated on (README). ``judged`` itself
    when ``answer_rerank`` is 0."""
    opts = settings.retrieval
    if not opts.answer_rerank:
        return judged
    reading = settings.with_updates(**{"retrieval.sentence_rerank": opts.answer_rerank,
                                       "retrieval.keyword_lead": max(opts.keyword_lead, ANSWER_KEYWORD_LEAD)})
    return retrieve_passages(question, settings=reading, k=k, sources=sources, hybrid=hybrid, mmr=mmr)


def warm(settings: Settings) -> None:
    """Load what the first question needs (embedding model, Chroma's vector index, the keyword
    index) by retrieving once, so that question does not wait for them."""
    retrieve_passages("warm up", settings=settings, hybrid=True)


_stores: dict[tuple[str, ...], Store] = {}
_stores_lock = threading.Lock()
MAX_STORES = 8


def _store_key(settings: Settings) -> tuple[str, ...]:
    # What names the index; settings that differ elsewhere (top_k, answer backend) share one Store.
    return (str(settings.data_dir.resolve()), settings.chroma_url, settings.index_fingerprint(),
            str(settings.corpus_dir.resolve()))


def _store(settings: Settings) -> Store:
    """One open Store per index per process: opening a Chroma client is not free, and each Store
    holds its own keyword index in memory."""
    key = _store_key(settings)
    with _stores_lock:
        found = _stores.get(key)
    if found is not None:
        return found
    opened = Store(settings)
    with _stores_lock:
        if len(_stores) >= MAX_STORES and key not in _stores:
            _stores.pop(next(iter(_stores)))
        return _stores.setdefault(key, opened)


def _forget_store(settings: Settings) -> None:
    with _stores_lock:
        _stores.pop(_store_key(settings), None)
