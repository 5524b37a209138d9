"""Threads and the embedding model: small torch calls run on one thread (the count restored
after), and threads that ask for the model at once load it once."""

from __future__ import annotations

import threading

import pytest

from rag.threads import one_torch_thread


def test_one_torch_thread_runs_the_block_on_one_thread_then_restores_the_count() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), one_torch_thread():
            raise RuntimeError("a failing embedding")
        assert torch.get_num_threads() == 2
        with one_torch_thread(False):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_question_runs_on_one_torch_thread_and_a_batch_on_all_of_them() -> None:
    torch = pytest.importorskip("torch")
    from rag.config import BUNDLED_MODEL, Settings
    from rag.embeddings import get_embedder

    embedder = get_embedder(BUNDLED_MODEL, Settings.model_fields["embedding_batch_size"].default,
                            backend="torch")
    seen: list[int] = []
    hook = embedder.model.register_forward_hook(
        lambda *_: seen.append(torch.get_num_threads()))
    try:
        embedder.embed(["Why did Mao oppose the Soviet model?"])
        question = seen[:]
        seen.clear()
        embedder.embed([f"Passage number {n} of a long document." for n in range(20)])
    finally:
        hook.remove()
    assert question == [1]
    assert seen and set(seen) == {torch.get_num_threads()}


def test_threads_asking_for_the_model_at_once_load_it_once() -> None:
    """The app's warm-up and a first question can both ask for the model before it is loaded."""
    from rag.config import BUNDLED_MODEL
    from rag.embeddings import Embedder, get_embedder

    start = threading.Barrier(2)
    got: list[Embedder] = []

    def load() -> None:
        start.wait()
        got.append(get_embedder(BUNDLED_MODEL, 7, backend="torch"))  # batch size 7: not loaded yet

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 2 and got[0] is got[1]
