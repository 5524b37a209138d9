"""Evaluation datasets: detect a file's format and read it into an ``EvalDataset``."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from rag.eval.formats import QUESTION_COLUMNS, read_csv, read_jsonl, read_llamaindex, read_squad
from rag.eval.items import DatasetError, EvalDataset, EvalItem

__all__ = ["FORMATS", "DatasetError", "EvalDataset", "EvalItem", "load_dataset"]

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "llamaindex", "squad", "csv")


def load_dataset(path: str | Path, *, kind: str | None = None) -> EvalDataset:
    """Read an evaluation dataset, detecting its format from the suffix and content.

    Args:
        path: a ``.jsonl`` file of our format, a LlamaIndex ``rag_dataset.json``, a SQuAD
            v1.1/v2.0 JSON file, or a CSV with question and answer columns.
        kind: force one of ``FORMATS`` instead of detecting it.

    Raises:
        DatasetError: the file is missing, unreadable, of an unknown format, or malformed.
    """
    path = Path(path)
    if kind is not None and kind not in FORMATS:
        raise DatasetError(f"Unknown dataset format {kind!r}; use one of {', '.join(FORMATS)}.")
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DatasetError(f"Dataset {path} does not exist. Check the path.") from exc
    except IsADirectoryError as exc:
        raise DatasetError(f"Dataset {path} is a folder; pass a .jsonl, .json or .csv file.") from exc
    except OSError as exc:
        raise DatasetError(f"Cannot read dataset {path} ({exc.strerror or exc}).") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"Dataset {path} is not UTF-8 text; save it as UTF-8.") from exc
    if not text.strip():
        raise DatasetError(f"Dataset {path} is empty.")

    kind = kind or _detect(path, text)
    if kind not in FORMATS:
        raise DatasetError(
            f"{path}: unknown dataset format. Expected JSON Lines with a \"question\" per line, "
            "a LlamaIndex rag_dataset.json (\"examples\"), SQuAD JSON (\"data\" with "
            "\"paragraphs\"), or a CSV with question and answer columns."
        )
    if kind == "csv":
        dataset = EvalDataset(path, "csv", read_csv(path, text))
    elif kind == "jsonl":
        dataset = EvalDataset(path, "jsonl", read_jsonl(path, text))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg}).") from exc
        if kind == "squad":
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                raise DatasetError(f"{path}: a SQuAD file needs a \"data\" list of articles.")
            items, documents = read_squad(path, data)
            dataset = EvalDataset(path, "squad", items, documents)
        else:
            if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
                raise DatasetError(f"{path}: a LlamaIndex rag_dataset.json needs an \"examples\" list.")
            dataset = EvalDataset(path, "llamaindex", read_llamaindex(path, data))
    if not dataset.items:
        raise DatasetError(f"Dataset {path} holds no questions.")
    _check_unique_ids(path, dataset.items)
    logger.info("loaded %d questions from %s (%s)", len(dataset.items), path, dataset.format)
    return dataset


def _detect(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        return "csv"
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return "jsonl" if stripped.startswith("{") else "unknown"
        if isinstance(data, dict):
            if isinstance(data.get("examples"), list):
                return "llamaindex"
            if isinstance(data.get("data"), list) and all(
                isinstance(a, dict) and "paragraphs" in a for a in data["data"]
            ):
                return "squad"
            if "question" in data:  # a JSON Lines file with a single line
                return "jsonl"
        if isinstance(data, list):
            return "jsonl"
        return "unknown"
    if suffix == ".jsonl":
        return "jsonl"
    first = stripped.splitlines()[0].lower()
    cells = [c.strip().strip('"') for c in re.split(r"[,;\t]", first)]
    if any(c in QUESTION_COLUMNS for c in cells):
        return "csv"
    return "unknown"


def _check_unique_ids(path: Path, items: list[EvalItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DatasetError(f"{path}: question id {item.id!r} appears twice; ids must be unique.")
        seen.add(item.id)
