"""The onnx-int8 embedding backend: a sentence-transformers model exported once to ONNX from the
installed weights (nothing is downloaded), int8-quantised, cached under the data folder, and run
by onnxruntime with the model's own tokenizer and mean pooling."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError

logger = logging.getLogger(__name__)

# Bump when the export or quantisation below changes: cached models of the old recipe are then
# ignored rather than reused.
ONNX_RECIPE = 1
ONNX_OPSET = 17
ONNX_FILE = "model.onnx"
# Versions that change what the export produces; part of the cache key.
ONNX_TOOLCHAIN = ("torch", "transformers", "onnx", "onnxruntime")
# An unfinished export folder older than this belongs to a process that died, not a slow one.
STALE_PARTIAL_S = 3600.0
# ONNX must agree with torch at least this well on a probe batch before its export is cached
# (measured: 0.99 and above; a broken export scores far lower).
EXPORT_MIN_COSINE = 0.97
# Texts of one call run together while the shortest has at least 1/this of the longest's tokens,
# at most GROUP_SIZE at a time: on 2 cores groups of 8 ran as fast as any size from 1 to 64 (faster
# than 64, at 70 against 60 passages/s) and peaked at 270 MB of memory instead of 890 MB.
GROUP_LENGTH_RATIO = 2
GROUP_SIZE = 8
PROBE_TEXTS = [
    "Padding matters: this probe batch mixes a short text",
    "with a longer one, so that the exported graph is traced with a partly zero attention mask "
    "and keeps the masking instead of assuming every position is a real token.",
]



@dataclass(frozen=True)
class ModelSpec:
    """What a sentence-transformers folder says about running it: where the transformer is, how
    long its inputs may be, how its token vectors become one vector."""

    folder: Path
    transformer_dir: Path
    max_seq_length: int
    dimension: int
    do_lower_case: bool


def read_spec(name: str, path: str) -> ModelSpec:
    """The ``ModelSpec`` of the sentence-transformers model at ``path`` (a folder or a cached hub id).

    Raises:
        ConfigError: the model is not available offline, or its pipeline is not the
            transformer, mean pooling and optional normalisation that onnx-int8 reproduces.
    """
    folder = _local_folder(name, path)
    unsupported = (f"Model {name!r} cannot use the onnx-int8 embedding backend: {{}}. "
                   "Set FOOTNOTE_EMBEDDING_BACKEND=torch.")
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(unsupported.format(f"no readable modules.json in {folder} ({exc})")) from exc
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ConfigError(unsupported.format(f"its modules are {kinds}, not Transformer, Pooling[, Normalize]"))
    transformer_dir = folder / str(modules[0].get("path", ""))
    pooling = _read_json(folder / str(modules[1].get("path", "")) / "config.json")
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ConfigError(unsupported.format(f"it pools with {modes}, not mean pooling alone"))
    st_config = _read_json(transformer_dir / "sentence_bert_config.json")
    model_config = _read_json(transformer_dir / "config.json")
    tokenizer_config = _read_json(transformer_dir / "tokenizer_config.json")
    limits = [int(v) for v in (model_config.get("max_position_embeddings"),
                               tokenizer_config.get("model_max_length")) if isinstance(v, int)]
    max_seq_length = st_config.get("max_seq_length") or (min(limits) if limits else 512)
    dimension = pooling.get("word_embedding_dimension") or model_config.get("hidden_size")
    if not dimension:
        raise ConfigError(unsupported.format("its embedding dimension is not in its config"))
    return ModelSpec(folder=folder, transformer_dir=transformer_dir, max_seq_length=int(max_seq_length),
                     dimension=int(dimension), do_lower_case=bool(st_config.get("do_lower_case", False)))


class OnnxModel:
    """A sentence-transformers model as an int8 ONNX graph run by onnxruntime: the model's own
    tokenizer, then mean pooling and L2 normalisation in numpy, as sentence-transformers does."""

    def __init__(self, spec: ModelSpec, onnx_file: Path, tokenizer: Any) -> None:
        import onnxruntime as ort

        self.spec = spec
        self.tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = _cores()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: on two cores busy with other work,
        # spinning cost a third of the throughput; on idle ones the two were within noise.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own classes for unreadable or invalid files
            raise ConfigError(
                f"Cannot load the ONNX embedding model {onnx_file} ({exc}). Delete {onnx_file.parent} "
                "to have it exported again."
            ) from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.pad_id = int(tokenizer.pad_token_id or 0)

    @classmethod
    def load(cls, name: str, path: str, cache_dir: Path) -> OnnxModel:
        """The model of ``path`` from ``cache_dir``, exported and quantised first if not cached yet."""
        spec = read_spec(name, path)
        tokenizer = load_tokenizer(spec.transformer_dir)
        onnx_file = ensure_exported(name, spec, tokenizer, cache_dir)
        return cls(spec, onnx_file, tokenizer)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors of ``texts``.

        Texts run longest first in small groups of similar token length, each padded to its
        longest. Dynamic int8 quantisation scales activations over a whole call, padding included,
        so a short text padded to a long one's length comes out less accurate (cosine to torch
        0.979 rather than 0.987 on a mixed batch); grouping also skips most of the padding's work.
        """
        if not texts:
            return np.zeros((0, self.spec.dimension), dtype=np.float32)
        if self.spec.do_lower_case:
            texts = [t.lower() for t in texts]
        encoded = self.tokenizer(list(texts), truncation="longest_first", max_length=self.spec.max_seq_length)
        ids: list[list[int]] = encoded["input_ids"]
        types: list[list[int]] | None = encoded.get("token_type_ids")
        # Ties broken by content, so groups (and so vectors) do not depend on the input order.
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), ids[i]))
        out = np.empty((len(ids), self.spec.dimension), dtype=np.float32)
        start = 0
        while start < len(order):
            longest = len(ids[order[start]])
            end = start + 1
            while (end < len(order) and end - start < GROUP_SIZE
                   and len(ids[order[end]]) * GROUP_LENGTH_RATIO >= longest):
                end += 1
            group = order[start:end]
            out[group] = self._run([ids[i] for i in group], [types[i] for i in group] if types else None)
            start = end
        return out

    def _run(self, ids: list[list[int]], types: list[list[int]] | None) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors of one padded group of token sequences."""
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        token_types = np.zeros((len(ids), width), dtype=np.int64)
        for n, row in enumerate(ids):
            input_ids[n, : len(row)] = row
            mask[n, : len(row)] = 1
            if types:
                token_types[n, : len(row)] = types[n]
        arrays = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": token_types}
        hidden = self.session.run(None, {n: arrays[n] for n in self.input_names})[0]
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def load_tokenizer(folder: Path) -> Any:
    """The model's own tokenizer, loaded through its class rather than ``AutoTokenizer``, whose
    import pulls in torch (4 s) that the onnx-int8 backend does not otherwise need."""
    import transformers

    config = _read_json(folder / "tokenizer_config.json")
    cls = getattr(transformers, str(config.get("tokenizer_class") or "PreTrainedTokenizerFast"), None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        cls = transformers.AutoTokenizer
    try:
        return cls.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # any loading failure: missing or corrupt tokenizer files
        raise ConfigError(f"Cannot load the tokenizer in {folder} ({exc}).") from exc


def ensure_exported(name: str, spec: ModelSpec, tokenizer: Any, cache_dir: Path) -> Path:
    """The cached int8 ONNX file of ``spec``'s model, exported and quantised on first use.

    The cache folder is named after a hash of the model folder's files and the export toolchain's
    versions. It is written under a temporary name and renamed into place when complete, so a
    crash or a concurrent export never leaves a half-written model where it would be loaded.
    """
    folder = cache_dir / cache_folder_name(name, spec)
    if (folder / ONNX_FILE).is_file():
        logger.debug("using the cached ONNX model in %s", folder)
        return folder / ONNX_FILE
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(cache_dir)
    started = time.perf_counter()
    logger.info("exporting embedding model %s to ONNX int8 in %s (once)", name, folder)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=cache_dir))
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
        if folder.exists() and not (folder / ONNX_FILE).is_file():
            logger.warning("replacing the incomplete ONNX cache folder %s", folder)
            shutil.rmtree(folder, ignore_errors=True)
        try:
            partial.rename(folder)
        except OSError:
            if not (folder / ONNX_FILE).is_file():
                raise
            logger.info("another process cached %s first; using its copy", folder)
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


def _local_folder(name: str, path: str) -> Path:
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import try_to_load_from_cache

    # Only the local Hugging Face cache is consulted: this function never opens a connection.
    repo_ids = [path] if "/" in path else [f"sentence-transformers/{path}", path]
    for repo_id in repo_ids:
        cached = try_to_load_from_cache(repo_id, "modules.json")
        if isinstance(cached, str):
            return Path(cached).parent
    raise ConfigError(
        f"Cannot find embedding model {name!r} offline: the onnx-int8 backend needs a local folder or "
        "a model already in the Hugging Face cache. FOOTNOTE_EMBEDDING_MODEL sets it."
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read {path} ({exc}). Reinstall the embedding model.") from exc
    return data if isinstance(data, dict) else {}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
