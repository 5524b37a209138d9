"""Document -> chunks that fit the embedding model, with stable ids and exact character offsets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

# Paragraphs first, then lines, then sentence ends, then words: the splitter falls back in order.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]
# Bump whenever a change here (separators, offsets, ids, metadata) would make new chunks differ
# from stored ones: the index name includes it, so an old index is reported stale, never mixed.
CHUNK_RECIPE = 1
# [CLS] and [SEP] take two of the model's max_seq_length positions.
SPECIAL_TOKENS = 2


def chunk_id(source: str, start: int, text: str) -> str:
    """Deterministic id from source, offset and text: re-ingesting the same text upserts in place."""
    return hashlib.sha256(f"{source}\x00{start}\x00{text}".encode()).hexdigest()[:32]


def make_splitter(tokenizer: Any, *, chunk_tokens: int, overlap_tokens: int, max_seq_length: int) -> RecursiveCharacterTextSplitter:
    """A LangChain splitter measuring length in ``tokenizer`` word pieces, capped to the model."""
    size = min(chunk_tokens, max_seq_length - SPECIAL_TOKENS)
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        tokenizer,
        chunk_size=size,
        chunk_overlap=min(overlap_tokens, size // 2),
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    assert isinstance(splitter, RecursiveCharacterTextSplitter)
    return splitter


def split(documents: Iterable[Document], splitter: RecursiveCharacterTextSplitter) -> list[Document]:
    """Split loaded documents into chunks carrying ``id``, ``start``, ``end`` and ``chunk_index``.

    ``start``/``end`` index the whole document's text (segments such as PDF pages carry their
    ``offset`` into it), so ``text[start:end]`` is the chunk exactly.
    """
    chunks: list[Document] = []
    index_by_source: dict[str, int] = {}
    for doc in documents:
        text = doc.page_content
        base = int(doc.metadata.get("offset", 0))
        source = str(doc.metadata["source"])
        cursor = 0
        previous_end = 0
        for piece in splitter.split_text(text):
            # Each chunk ends after the previous one (overlap only repeats its tail), so searching
            # from there finds the right copy of repeated text ("U.S.S.R. U.S.S.R."), not an
            # earlier one.
            local = text.find(piece, max(cursor, previous_end - len(piece) + 1))
            if local < 0:
                local = text.find(piece, cursor)
            if local < 0:  # cannot happen with strip-only splitting; guard the invariant anyway
                local = text.find(piece)
            if local < 0:
                raise ValueError(f"chunk of {source} not found in its text")
            cursor = local + 1
            previous_end = local + len(piece)
            start = base + local
            n = index_by_source.get(source, 0)
            index_by_source[source] = n + 1
            meta = {k: v for k, v in doc.metadata.items() if k != "offset"}
            meta.update(start=start, end=start + len(piece), chunk_index=n)
            chunk = Document(page_content=piece, metadata=meta, id=chunk_id(source, start, piece))
            chunks.append(chunk)
    return chunks
