"""Evaluation of retrieval, answers and citations over a question set: `python -m rag eval`."""

from __future__ import annotations

from rag.eval.datasets import DatasetError, EvalDataset, EvalItem, load_dataset
from rag.eval.index import prepare_index
from rag.eval.records import EvalReport
from rag.eval.runner import evaluate

__all__ = ["DatasetError", "EvalDataset", "EvalItem", "EvalReport", "evaluate", "load_dataset", "prepare_index"]
