"""Text ideas with one home: sentences, citation markers, content words, names and numbers, the
words and numbers a short answer is looked up by, refusals.

Retrieval, the citation check, the backends and the evaluation all read text through these
helpers, so a change here (a new abbreviation, a marker form such as ``[1; 2]``) reaches them all.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

# What Footnote answers when it refuses; the closest passages are shown after it.
REFUSAL = "The documents do not cover this question. The closest material is listed below."

MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
# A sentence ends at . ! or ? (plus closing quotes/brackets and any citation markers) before space.
BOUNDARY = re.compile(r"[.!?][\"'”’)\]]*(?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])*(?=\s+|$)")
WORD = re.compile(r"[A-Za-zÀ-ÿ0-9]+(?:['’][A-Za-z]+)?")
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being it its
    this that these those there their they them he she his her we our you your i me my not no do does
    did so than then too very can could would should will shall may might must has have had into over
    under about after before between during which who whom whose what when where why how all any both
    each few more most other some such only own same just also such via per""".split()
)


@dataclass(frozen=True)
class Span:
    """A sentence and where it sits in its text."""

    text: str
    start: int
    end: int


# Words after which a full stop does not end a sentence.
ABBREVIATIONS = frozenset("""mr mrs ms dr prof st mt vs etc eg ie cf al fig no vol ed eds jr sr co
    corp inc ltd gen col lt sgt rev hon pp ca approx dept univ""".split())
PARAGRAPH = re.compile(r"(?:[^\n]|\n(?![ \t]*\n))+")
# A line shorter than this that does not end in punctuation is a heading, not a wrapped line.
HEADING_CHARS = 60


def sentences(text: str) -> list[Span]:
    """Split ``text`` into sentences, keeping citation markers with the sentence they follow.

    Blank lines end paragraphs; a single line break ends a sentence only after end punctuation
    or a short heading line (PDF text wraps mid-sentence); "U.S." and "Dr." do not end one.
    """
    spans: list[Span] = []
    for paragraph in PARAGRAPH.finditer(text):
        for start, end in _lines(paragraph.group(), paragraph.start()):
            block = text[start:end]
            cursor = 0
            for boundary in BOUNDARY.finditer(block):
                if _is_abbreviation(block, boundary.start()):
                    continue
                _add(spans, block, start, cursor, boundary.end())
                cursor = boundary.end()
            _add(spans, block, start, cursor, len(block))
    return spans


def _lines(paragraph: str, offset: int) -> list[tuple[int, int]]:
    """(start, end) of the runs of a paragraph that a line break genuinely separates."""
    runs: list[tuple[int, int]] = []
    start = 0
    for match in re.finditer(r"\n", paragraph):
        line = paragraph[start:match.start()].rstrip()
        previous_line = line.rsplit("\n", 1)[-1]
        if re.search(r"[.!?:;\"”’)\]]$", line) or (len(previous_line) < HEADING_CHARS and not line.endswith((",", "-"))):
            runs.append((offset + start, offset + match.start()))
            start = match.end()
    runs.append((offset + start, offset + len(paragraph)))
    return runs


def _is_abbreviation(block: str, dot: int) -> bool:
    if block[dot] != ".":
        return False
    word = re.search(r"([A-Za-z.]+)$", block[:dot])
    if not word:
        return False
    token = word.group(1)
    return bool(re.fullmatch(r"(?:[A-Za-z]\.)*[A-Za-z]", token)) or token.lower().replace(".", "") in ABBREVIATIONS


def _add(spans: list[Span], block: str, offset: int, start: int, end: int) -> None:
    piece = block[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    lead = len(piece) - len(piece.lstrip())
    spans.append(Span(stripped, offset + start + lead, offset + start + lead + len(stripped)))


def markers_in(text: str) -> list[int]:
    """Citation numbers in ``text``, in order of appearance."""
    found: list[int] = []
    for match in MARKER.finditer(text):
        found.extend(int(n) for n in re.split(r"\s*[,;]\s*", match.group(1)))
    return found


def strip_markers(text: str) -> str:
    """``text`` without its [n] markers (and the spaces they leave)."""
    # Until nothing changes: removing the inner marker of "[1[2]]" leaves a new one, "[1]".
    while (stripped := MARKER.sub("", text)) != text:
        text = stripped
    return re.sub(r"\s+([.,;:!?])", r"\1", text).strip()


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry meaning (no stop words), with a light plural/suffix folding."""
    return [_fold(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1]


def _fold(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def coverage(words: Collection[str], text: str) -> float:
    """Share of ``words`` (content words of a question or claim, repeats counted) that ``text`` holds."""
    if not words:
        return 0.0
    have = set(content_words(text))
    return sum(w in have for w in words) / len(words)


# -- Names and numbers --------------------------------------------------------------------------
# In a question: runs of capitalised words ("Bank of England") and numbers.
SPECIFIC = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of\s+(?:the\s+)?)?[A-Z][\w'’-]*)*|\b\d[\d,.]*\d\b|\b\d\b")
# In a claim: single capitalised words not opening a sentence, and numbers.
ENTITY = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zà-ÿ]+|\d[\d,.]*)\b")


def specifics(question: str) -> list[str]:
    """Names and numbers a question asks about (its opening word is not a name)."""
    words = question.strip().split(maxsplit=1)
    body = (words[0].lower() + " " + words[1]) if len(words) == 2 else question.lower()
    return SPECIFIC.findall(body)


def mentions(text: str, specific: str) -> bool:
    """Whether ``text`` names ``specific``: verbatim, word by word, or by its acronym (GLF)."""
    lowered = text.lower()
    name = re.sub(r"['’]s$", "", specific).lower()
    if name in lowered:
        return True
    words = [w for w in re.findall(r"[\w-]+", name) if w not in {"of", "the"}]
    found = set(re.findall(r"[\w-]+", lowered))
    if len(words) > 1 and "".join(w[0] for w in words) in found:
        return True
    return bool(words) and all(w in found for w in words)


def entities(claim: str) -> set[str]:
    """Names and numbers in a claim (capitalised words not opening the sentence, digits), lower-cased."""
    return {m.lower().rstrip(".,") for m in ENTITY.findall(strip_markers(claim))}


def tokens_lower(text: str) -> set[str]:
    """Every word and number of ``text``, lower-cased: what ``entities`` of a claim are looked up in."""
    return {w.lower().rstrip(".,") for w in re.findall(r"\b\w[\w,.]*\b", text)}


# -- Words and numbers, for finding a short answer in a text ---------------------------------------
# Words, with a number and its separators one token ("1,100", "3.5"), so "10" never matches inside it.
TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[A-Za-zÀ-ÿ]+(?:['’][A-Za-z]+)?")
# Number words as digits, from two: "one" is more often a pronoun ("one of the") than a count.
NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split(), start=2)} | {
    w: str(10 * n) for n, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)}
# Two spellings of one long word ("kilometres", "kilometers"; "-isation", "-ization") match.
MIN_FUZZY_LETTERS = 6
SPELLING_RATIO = 0.85


def tokens(text: str) -> list[str]:
    """Lower-cased words and whole numbers of ``text``, number words as digits ("four" is "4")."""
    return [NUMBER_WORDS.get(t, t) for t in (t.lower() for t in TOKEN.findall(text))]


def holds_word(words: Sequence[str], word: str) -> bool:
    """Whether ``word`` is among ``words``, a long word also in another spelling ("kilometers")."""
    if word in words:
        return True
    return len(word) >= MIN_FUZZY_LETTERS and not word[0].isdigit() and any(
        abs(len(w) - len(word)) <= 2 and difflib.SequenceMatcher(None, w, word).ratio() >= SPELLING_RATIO
        for w in words)


# -- Finding a model's quote in source text --------------------------------------------------------
# A quote of at most this many words is a short answer (a name, a number), not a sentence.
SHORT_ANSWER_WORDS = 4
# A longer quote this share of whose words run verbatim in a text is that text's own words.
VERBATIM_SHARE = 0.5


def quote_share(quote: str, texts: Sequence[str]) -> float:
    """Share of ``quote`` that ``texts`` hold: a short answer's content words anywhere in them, in
    any order ("Oklahoma, Texas" from "Oklahoma and Texas", but not "1 year" from a lone "1"); a
    longer quote's words as one contiguous run in one text."""
    words = tokens(quote)
    if not words:
        return 0.0
    held_in = [tokens(text) for text in texts]
    if len(words) <= SHORT_ANSWER_WORDS:
        content = [w for w in words if w not in STOPWORDS] or words
        return sum(any(holds_word(text, w) for text in held_in) for w in content) / len(content)
    best = 0
    for text in held_in:
        matcher = difflib.SequenceMatcher(None, words, text, autojunk=False)
        best = max(best, matcher.find_longest_match(0, len(words), 0, len(text)).size)
    return best / len(words)


def holds_quote(text: str, quote: str) -> bool:
    """Whether ``text`` holds ``quote`` as its own words (see ``quote_share``)."""
    share = quote_share(quote, [text])
    return share == 1.0 if len(tokens(quote)) <= SHORT_ANSWER_WORDS else share >= VERBATIM_SHARE


# -- Words the model garbles while copying them ---------------------------------------------------
LETTERS = re.compile(r"[A-Za-zÀ-ÿ]+")
GARBLE_MIN_LETTERS = 8  # shorter words are too alike to tell a garble from another word
GARBLE_INSERTED = 4
GARBLE_DROPPED = 2


def source_vocabulary(texts: Sequence[str]) -> frozenset[str]:
    """The lower-cased words (letters only) of ``texts``: what ``repair_copied_words`` checks against."""
    return frozenset(w.lower() for text in texts for w in LETTERS.findall(text))


def repair_copied_words(text: str, vocabulary: frozenset[str]) -> str:
    """``text`` with each long word the model garbled while copying it replaced by the sources' word.

    A word is garbled when the sources lack it but hold exactly one word of at least 8 letters that
    it equals apart from a few letters inserted or dropped inside it (not at either end): the
    bundled 1.5B model writes "collectingivisation" for "collectivisation" even greedily. Other
    unknown words (inflections, the writer's own words) are left alone.
    """
    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        lower = word.lower()
        if len(lower) < GARBLE_MIN_LETTERS - GARBLE_DROPPED or lower in vocabulary:
            return word
        found = [v for v in vocabulary if len(v) >= GARBLE_MIN_LETTERS and v[:3] == lower[:3] and _garbled(lower, v)]
        if len(found) != 1:
            return word
        return found[0].capitalize() if word[0].isupper() else found[0]

    return LETTERS.sub(fix, text)


def _garbled(word: str, source: str) -> bool:
    """Whether ``word`` is ``source`` with letters inserted or dropped strictly inside it."""
    extra = len(word) - len(source)
    if not (-GARBLE_DROPPED <= extra <= GARBLE_INSERTED) or extra == 0:
        return False
    shorter = min(len(word), len(source))
    prefix = next((i for i, (a, b) in enumerate(zip(word, source)) if a != b), shorter)
    suffix = next((i for i, (a, b) in enumerate(zip(reversed(word), reversed(source))) if a != b), shorter)
    return prefix >= 3 and suffix >= 3 and prefix + suffix >= shorter
