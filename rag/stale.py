"""The message of a stale index: what the index was built with that the settings no longer say,
and what to do about it."""

from __future__ import annotations

from typing import Any

from rag.config import Settings

# What an index's metadata means when a key is missing: it predates the key.
BEFORE_KEYS = {"embedding_backend": "torch", "chunk_recipe": "before 1"}
DEFAULT_BACKEND = Settings.model_fields["embedding_backend"].default
# The metadata that tells one index from another (corpus_dir does not: it moves with its data folder).
SHAPING = {"embedding_model", "embedding_backend", "chunk_tokens", "overlap_tokens", "chunk_recipe", "corpus_place"}


def stale_message(recorded: dict[str, Any], wanted: dict[str, Any]) -> str:
    """The StaleIndexError text for an index whose ``recorded`` metadata differs from ``wanted``.

    Names only what differs, then the fix: rebuild, or, when only the embedding backend changed
    (an index built with torch, opened now that onnx-int8 is the default), set the backend back.
    """
    built = {**BEFORE_KEYS, **recorded}
    differs = {key for key in wanted if built.get(key) != wanted[key]}
    was: list[str] = []
    now: list[str] = []
    if "embedding_model" in differs:
        was.append(f"model {built.get('embedding_model')!r}")
        now.append(repr(wanted["embedding_model"]))
    if "embedding_backend" in differs:
        was.append(f"the {built['embedding_backend']} embedding backend")
        default = " (the default)" if wanted["embedding_backend"] == DEFAULT_BACKEND else ""
        now.append(f"{wanted['embedding_backend']}{default}")
    if differs & {"chunk_tokens", "overlap_tokens"}:
        was.append(f"{built.get('chunk_tokens')}/{built.get('overlap_tokens')}-token chunks")
        now.append(f"{wanted['chunk_tokens']}/{wanted['overlap_tokens']}")
    told = [f"The index was built with {' and '.join(was)}, but the settings now say {' and '.join(now)}."] if was else []
    if "chunk_recipe" in differs:
        told.append(f"The chunking recipe changed (version {built['chunk_recipe']} to {wanted['chunk_recipe']}).")
    if built.get("corpus_place") and "corpus_place" in differs:
        told.append(f"It indexes the corpus folder {built.get('corpus_dir')}, not {wanted['corpus_dir']}.")
    text = " ".join(told or ["The index was built with other settings."])
    text += " Run `python ingest.py --rebuild` to re-index with the new settings"
    if differs & SHAPING == {"embedding_backend"}:  # the backend alone: setting it back is enough
        text += f", or set FOOTNOTE_EMBEDDING_BACKEND={built['embedding_backend']} to use the index as it is"
    return text + "."
