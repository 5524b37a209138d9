"""How many threads torch runs a small embedding call on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

# Calls of at most this many texts (a question, its rewrite) run on one torch thread.
FEW_TEXTS = 8


@contextmanager
def one_torch_thread(active: bool = True) -> Iterator[None]:
    """Run the block's torch operations on one thread when ``active``.

    A question's few texts gain nothing from a second thread. On a machine whose cores are busy
    with other work, each operation's threads also wait for each other: one question's embedding
    measured 230 ms p50 and 1.2 s p95 on two threads at load 8 on 2 cores, and 26 ms / 72 ms on
    one. Call it with the embedder's lock held, so no other embedding runs in between.
    """
    if not active:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
