"""The evaluation question types: ``EvalItem``, ``EvalDataset`` and ``DatasetError``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import ConfigError


class DatasetError(ConfigError):
    """An evaluation dataset cannot be read: missing, unknown format, or malformed entries."""


@dataclass(frozen=True)
class EvalItem:
    """One evaluation question with what a good answer and good retrieval look like.

    ``reference_contexts`` are passages (exact text of the corpus) that hold the answer;
    ``answers`` are short acceptable answers (any one counts for ``answer_contains``);
    ``split`` names the part of the dataset it belongs to ("" = every part).
    """

    id: str
    question: str
    reference_answer: str = ""
    reference_contexts: list[str] = field(default_factory=list)
    answerable: bool = True
    answers: list[str] = field(default_factory=list)
    split: str = ""


@dataclass
class EvalDataset:
    """Items read from one file, plus the documents it brings along (SQuAD paragraphs) if any.

    ``documents`` maps a file name to its text; the runner writes them as the corpus when no
    ``--corpus`` is given.
    """

    path: Path
    format: str
    items: list[EvalItem]
    documents: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The file name without its suffix."""
        return self.path.stem

    def __len__(self) -> int:
        return len(self.items)

    @property
    def splits(self) -> list[str]:
        """The split names the items carry, sorted (empty for a dataset without splits)."""
        return sorted({item.split for item in self.items if item.split})

    def select(self, split: str) -> list[EvalItem]:
        """The items of one split; items without a split belong to every split.

        Raises:
            DatasetError: the dataset has splits but none is called ``split``.
        """
        if self.splits and split not in self.splits:
            raise DatasetError(f"{self.path} has no split {split!r}; its splits are {', '.join(self.splits)}.")
        return [item for item in self.items if item.split in ("", split)]
