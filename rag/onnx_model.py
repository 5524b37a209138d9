"""The onnx-int8 embedding model at run time: what a sentence-transformers folder says about
running it, and an int8 ONNX graph run by onnxruntime with the model's own tokenizer and mean
pooling (``rag.onnx_export`` produces and caches the graph)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError

ONNX_FILE = "model.onnx"
# Texts of one call run together while the shortest has at least 1/this of the longest's tokens,
# at most GROUP_SIZE at a time: on 2 cores groups of 8 ran as fast as any size from 1 to 64 (faster
# than 64, at 70 against 60 passages/s) and peaked at 270 MB of memory instead of 890 MB.
GROUP_LENGTH_RATIO = 2
GROUP_SIZE = 8

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


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
