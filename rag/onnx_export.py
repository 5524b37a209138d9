"""Producing the onnx-int8 embedding model: exported once to ONNX from the installed weights
(nothing is downloaded), int8-quantised per channel, checked against torch, cached in a folder
shared by every data folder (``models_dir``; ``rag.onnx_model`` runs it)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from rag.errors import ConfigError
from rag.onnx_model import ONNX_FILE, ModelSpec, OnnxModel, load_tokenizer, read_spec

logger = logging.getLogger(__name__)

# Bump when the export or quantisation below changes: cached models of the old recipe are then
# ignored rather than reused.
ONNX_RECIPE = 1
ONNX_OPSET = 17
# Versions that change what the export produces; part of the cache key.
ONNX_TOOLCHAIN = ("torch", "transformers", "onnx", "onnxruntime")
# An unfinished export folder older than this belongs to a process that died, not a slow one.
STALE_PARTIAL_S = 3600.0
# Longest a process waits for another one's export of the same model (27-90 s on 2 busy cores).
EXPORT_WAIT_S = 1800.0
# ONNX must agree with torch at least this well on a probe batch before its export is cached
# (measured: 0.99 and above; a broken export scores far lower).
EXPORT_MIN_COSINE = 0.97
PROBE_TEXTS = [
    "Padding matters: this probe batch mixes a short text",
    "with a longer one, so that the exported graph is traced with a partly zero attention mask "
    "and keeps the masking instead of assuming every position is a real token.",
]



def load(name: str, path: str, cache_dirs: Sequence[Path]) -> OnnxModel:
    """The model of ``path`` from the first of ``cache_dirs`` holding it, exported first if none does."""
    spec = read_spec(name, path)
    tokenizer = load_tokenizer(spec.transformer_dir)
    onnx_file = ensure_exported(name, spec, tokenizer, cache_dirs)
    return OnnxModel(spec, onnx_file, tokenizer)


def ensure_exported(name: str, spec: ModelSpec, tokenizer: Any, cache_dirs: Sequence[Path]) -> Path:
    """The cached int8 ONNX file of ``spec``'s model, exported and quantised on first use.

    Looked for in each of ``cache_dirs``, and exported into the first one that can be written.
    The cache folder is named after a hash of the model folder's files and the export toolchain's
    versions. One process exports it at a time (a lock file beside it; the others wait, then use
    its result), writing under a temporary name renamed into place when complete, so a crash
    never leaves a half-written model where it would be loaded.

    Raises:
        ConfigError: no folder can be written, the export failed, or it disagrees with torch.
    """
    folder_name = cache_folder_name(name, spec)
    for cache_dir in cache_dirs:
        if (cache_dir / folder_name / ONNX_FILE).is_file():
            logger.debug("using the cached ONNX model in %s", cache_dir / folder_name)
            return cache_dir / folder_name / ONNX_FILE
    problems = []
    for cache_dir in cache_dirs:
        problem = why_unwritable(cache_dir)
        if problem:
            problems.append(f"{cache_dir} ({problem})")
            logger.warning("cannot write the exported embedding model to %s (%s)", cache_dir, problem)
            continue
        lock = _locked(cache_dir, folder_name)
        try:
            return _export_once(name, spec, tokenizer, cache_dir / folder_name)
        finally:
            lock.release()
    raise ConfigError(
        f"Cannot write the ONNX export of embedding model {name!r} to {' or '.join(problems)}. "
        "Set FOOTNOTE_MODELS_DIR to a writable folder, or FOOTNOTE_EMBEDDING_BACKEND=torch."
    )


def why_unwritable(folder: Path) -> str:
    """Why no file can be created in ``folder`` (made first if missing): "" when one can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return ""
    except OSError as exc:  # read-only, not a folder, permission denied
        return exc.strerror or str(exc)


def _locked(cache_dir: Path, folder_name: str) -> FileLock:
    """The acquired export lock of ``folder_name`` in ``cache_dir``, waiting for another exporter."""
    lock = FileLock(cache_dir / f".{folder_name}.lock", timeout=EXPORT_WAIT_S)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        logger.info("waiting for another process exporting %s to ONNX", cache_dir / folder_name)
        try:
            lock.acquire()
        except Timeout:
            raise ConfigError(
                f"Another process has been exporting {cache_dir / folder_name} for over "
                f"{EXPORT_WAIT_S:.0f} s. Stop it, or set FOOTNOTE_EMBEDDING_BACKEND=torch.") from None
    return lock


def _export_once(name: str, spec: ModelSpec, tokenizer: Any, folder: Path) -> Path:
    """Export into ``folder`` unless another process did while this one waited for the lock."""
    if (folder / ONNX_FILE).is_file():
        logger.info("another process exported %s; using its copy", folder)
        return folder / ONNX_FILE
    _remove_stale_partials(folder.parent)
    started = time.perf_counter()
    logger.info("exporting embedding model %s to ONNX int8 in %s (once)", name, folder)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        try:
            _export(spec, tokenizer, partial)
        except ConfigError:
            raise
        except Exception as exc:  # torch's exporter or onnxruntime's quantiser failed on this model
            raise ConfigError(
                f"Cannot export embedding model {name!r} to ONNX ({exc}). "
                "Set FOOTNOTE_EMBEDDING_BACKEND=torch."
            ) from exc
        (partial / "key.json").write_text(json.dumps(_cache_key(spec), indent=2), encoding="utf-8")
        if folder.exists():
            logger.warning("replacing the incomplete ONNX cache folder %s", folder)
            shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    logger.info("exported %s to ONNX int8 in %.1fs", name, time.perf_counter() - started)
    return folder / ONNX_FILE


def cache_folder_name(name: str, spec: ModelSpec) -> str:
    """The cache folder of ``spec``'s model: readable name, then the hash of its cache key."""
    digest = hashlib.sha256(json.dumps(_cache_key(spec), sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[-48:] or "model"
    return f"{slug}-int8-{digest}"


def _cache_key(spec: ModelSpec) -> dict[str, Any]:
    files = sorted(p for p in spec.folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return {
        "folder": str(spec.folder.resolve()),
        "files": [[str(p.relative_to(spec.folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
        "versions": {pkg: _version(pkg) for pkg in ONNX_TOOLCHAIN},
        "recipe": ONNX_RECIPE, "opset": ONNX_OPSET, "max_seq_length": spec.max_seq_length,
    }


def _export(spec: ModelSpec, tokenizer: Any, folder: Path) -> None:
    """Export the transformer to ONNX, quantise its weights to int8 per channel, check it against
    torch on a probe batch, and leave only ``ONNX_FILE`` in ``folder``."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    # Eager attention and a padded probe: the route measured on this stack (the shared stack
    # notes); the check at the end confirms that the padding mask survived the export.
    model = AutoModel.from_pretrained(str(spec.transformer_dir), attn_implementation="eager",
                                      local_files_only=True)
    model.eval()
    probe = tokenizer(PROBE_TEXTS, padding=True, truncation="longest_first",
                      max_length=spec.max_seq_length, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in probe]

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    axes = {0: "batch", 1: "sequence"}
    fp32 = folder / "model-fp32.onnx"
    with torch.inference_mode(), warnings.catch_warnings():
        # The tracer warns about shape checks it freezes; they are constant for this model
        # (the probe's padded mask is as long as its input), and the probe below checks the result.
        warnings.simplefilter("ignore")
        expected = model(**{n: probe[n] for n in names}).last_hidden_state.numpy()
        # eval() on the wrapper too: the exporter restores the wrapper's training flag onto every
        # submodule afterwards, and a new Module starts in training mode.
        torch.onnx.export(
            LastHiddenState().eval(), tuple(probe[n] for n in names), str(fp32), input_names=names,
            output_names=["last_hidden_state"], dynamic_axes={n: axes for n in [*names, "last_hidden_state"]},
            opset_version=ONNX_OPSET, dynamo=False, do_constant_folding=True,
        )
    # Per-channel: per-tensor int8 is no faster here and loses too much (cosine 0.93 to torch).
    # The quantiser writes scratch files into the working directory: keep them in the partial folder.
    source, target, scratch = fp32.resolve(), (folder / ONNX_FILE).resolve(), folder.resolve()
    with _root_logging_silenced_for("onnxruntime"), contextlib.chdir(scratch):
        quantize_dynamic(str(source), str(target), per_channel=True, weight_type=QuantType.QInt8)
    fp32.unlink()

    onnx_model = OnnxModel(spec, folder / ONNX_FILE, tokenizer)
    # One padded group, so that the check covers the attention mask.
    unpadded = tokenizer(PROBE_TEXTS, truncation="longest_first", max_length=spec.max_seq_length)
    got = onnx_model._run(unpadded["input_ids"], unpadded.get("token_type_ids"))
    mask = probe["attention_mask"].numpy().astype(np.float32)[:, :, None]
    want = (expected * mask).sum(axis=1) / mask.sum(axis=1)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    cosine = float((got * want).sum(axis=1).min())
    if cosine < EXPORT_MIN_COSINE:
        raise ConfigError(
            f"The ONNX export of {spec.folder} disagrees with torch (cosine {cosine:.3f}). "
            "Set FOOTNOTE_EMBEDDING_BACKEND=torch."
        )
    logger.info("ONNX int8 export agrees with torch: cosine %.4f on the probe batch", cosine)


class _DropRecordsFrom(logging.Filter):
    """Drops log records emitted from inside the named package's files."""

    def __init__(self, package: str) -> None:
        super().__init__()
        self.package = package

    def filter(self, record: logging.LogRecord) -> bool:
        return self.package not in Path(record.pathname).parts


@contextlib.contextmanager
def _root_logging_silenced_for(package: str) -> Iterator[None]:
    """Keep ``package``'s calls of ``logging.info``/``logging.warning`` off the console.

    onnxruntime's quantiser logs through the root logger. Its first call would also run
    ``logging.basicConfig()``, leaving a stderr handler on the root for the rest of the process
    (after which other libraries' debug records reached even `ingest.py -q`); a NullHandler in
    place for the duration stops that, and a filter drops the package's own records.
    """
    root = logging.getLogger()
    quiet, null = _DropRecordsFrom(package), logging.NullHandler()
    root.addFilter(quiet)
    root.addHandler(null)
    try:
        yield
    finally:
        root.removeHandler(null)
        root.removeFilter(quiet)


def _remove_stale_partials(cache_dir: Path) -> None:
    for partial in cache_dir.glob(".*.partial"):
        try:
            if time.time() - partial.stat().st_mtime > STALE_PARTIAL_S:
                shutil.rmtree(partial, ignore_errors=True)
        except OSError:
            continue


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


