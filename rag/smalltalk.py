"""Greetings, thanks and questions about Footnote itself: answered here, never from the documents.

"hi, what can you do?" is not a question the documents answer, yet the small judge model says
"yes" to it (P(answerable) 0.65 on the evaluation corpus) and the passages' best sentences then
come back as quotes. A message made only of such conversational formulas gets a short reply that
says what Footnote does and what it holds; a message with a real question in it ("hi, why did
the Great Leap fail?") is not touched and goes to retrieval as usual.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

GREETING = (r"hi|hello|hey|hiya|howdy|greetings|yo|good (?:morning|afternoon|evening|day)"
            r"|how are (?:you|things)|how's it going")
THANKS = r"thanks?|thank you(?: (?:very|so) much)?|many thanks|thx|ty|cheers|ta|much appreciated"
ACK = r"ok|okay|great|cool|nice|perfect|got it|i see|understood|fine"
BYE = r"bye|goodbye|good ?night|see you(?: later)?|that's all"
ABOUT = (r"what (?:can|do|should) (?:you|i) do(?: here| with (?:you|this))?|what are you(?: for)?"
         r"|who are you|how (?:do|does) (?:this|you|it) work"
         r"|how (?:do|can|should) i use (?:this|you|it)|help(?: me)?|can you help(?: me)?"
         r"|what (?:documents|files|sources|books|papers) (?:do you have|are there|can you see|do you know)"
         r"|what(?:'s| is) in (?:the|your|this) (?:library|documents|corpus|collection)")
FILLER = r"there|footnote|bot|again|please|so|ok|okay|great|nice|cool|all|everyone"
_PIECE = rf"(?:{GREETING}|{THANKS}|{ACK}|{BYE}|{ABOUT})(?: (?:{FILLER}))*"
_MESSAGE = re.compile(rf"^(?:{_PIECE})(?: (?:{_PIECE}))*$")
_KIND = {name: re.compile(rf"\b(?:{pattern})\b")
         for name, pattern in (("greeting", GREETING), ("thanks", THANKS), ("ack", ACK), ("bye", BYE),
                               ("about", ABOUT))}
REASON = "this is conversation, not a question about the documents"


def _normal(message: str) -> str:
    """Lower case, apostrophes unified, punctuation and emoji dropped, spaces collapsed."""
    text = message.lower().replace("’", "'")
    return " ".join(re.sub(r"[^\w' ]+", " ", text).split())


def conversational(message: str) -> bool:
    """Whether ``message`` holds nothing but greetings, thanks, goodbyes or questions about Footnote."""
    text = _normal(message)
    return bool(text) and bool(_MESSAGE.match(text))


def reply(message: str, titles: Sequence[str]) -> str:
    """What Footnote says back to a ``conversational`` message, naming what the library holds."""
    text = _normal(message)
    kinds = {name for name, pattern in _KIND.items() if pattern.search(text)}
    if kinds <= {"thanks", "ack", "bye"}:
        return ("You're welcome. " if "thanks" in kinds else "") + (
            "Goodbye." if "bye" in kinds else "Ask another question about your documents whenever you like.")
    opening = "Hello. " if "greeting" in kinds else ""
    if not titles:
        held = "The library is empty: add documents first (the Documents tab, or `python -m rag ingest`)."
    else:
        named = ", ".join(f"“{t}”" for t in titles[:3])
        more = f" and {len(titles) - 3} more" if len(titles) > 3 else ""
        noun = "document" if len(titles) == 1 else "documents"
        held = f"The library holds {len(titles)} {noun}: {named}{more}. Ask a question in your own words."
    return (f"{opening}I answer questions about your documents and cite the passage behind every "
            "sentence, each citation checked against that passage. When the documents do not answer a "
            f"question, I say so and show the closest material instead of guessing. {held}")
