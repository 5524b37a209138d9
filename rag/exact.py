"""Exact nearest-neighbour search among a few known chunk ids, in the shape of a Chroma query.

Chroma's filtered query (``where`` or ``ids``) costs a pass over the whole collection: about
85 ms at 100,000 chunks even when the chosen sources hold three chunks. Reading those chunks'
vectors by id and ranking them here costs what they cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Above this many chosen chunks, reading all their vectors costs more than Chroma's filtered query.
MAX_IDS = 2000


def query(collection: Any, ids: Sequence[str], vector: np.ndarray, *, k: int, include: list[str]) -> dict[str, Any]:
    """The ``k`` chunks among ``ids`` nearest ``vector`` by cosine, as ``collection.query`` would
    return them for one query embedding (distance = 1 - cosine similarity)."""
    fields = [f for f in include if f != "distances"]
    got = collection.get(ids=list(ids), include=sorted(set(fields) | {"embeddings"})) if ids else {"ids": []}
    found = list(got["ids"])
    if not found:
        return {"ids": [[]], "distances": [[]], **{f: [[]] for f in fields}}
    matrix = np.asarray(got["embeddings"], dtype=np.float32)
    query_vector = np.asarray(vector, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query_vector)), 1e-12)
    similarity = matrix @ query_vector / np.maximum(norms, 1e-12)
    top = np.argsort(-similarity, kind="stable")[:k]
    out: dict[str, Any] = {"ids": [[found[n] for n in top]], "distances": [[1.0 - float(similarity[n]) for n in top]]}
    for name in fields:
        column = matrix if name == "embeddings" else got[name]
        out[name] = [[column[n] for n in top]]
    return out
