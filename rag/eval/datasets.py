"""Evaluation datasets: JSON Lines, LlamaIndex rag_dataset.json, SQuAD and CSV, read into ``EvalItem``s."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "llamaindex", "squad", "csv")
QUESTION_COLUMNS = ("question", "query")
ANSWER_COLUMNS = ("answer", "reference_answer", "ground_truth")
CONTEXT_COLUMNS = ("reference_contexts", "contexts", "context", "reference_context")
TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f"}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


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

    def content_hash(self) -> str:
        """Hash of the documents the dataset brings, to name the folder they are indexed in."""
        digest = hashlib.sha256()
        for name in sorted(self.documents):
            digest.update(name.encode() + b"\x00" + self.documents[name].encode() + b"\x00")
        return digest.hexdigest()[:12]

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
        dataset = EvalDataset(path, "csv", _read_csv(path, text))
    elif kind == "jsonl":
        dataset = EvalDataset(path, "jsonl", _read_jsonl(path, text))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg}).") from exc
        if kind == "squad":
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                raise DatasetError(f"{path}: a SQuAD file needs a \"data\" list of articles.")
            items, documents = _read_squad(path, data)
            dataset = EvalDataset(path, "squad", items, documents)
        else:
            if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
                raise DatasetError(f"{path}: a LlamaIndex rag_dataset.json needs an \"examples\" list.")
            dataset = EvalDataset(path, "llamaindex", _read_llamaindex(path, data))
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


def _read_jsonl(path: Path, text: str) -> list[EvalItem]:
    stripped = text.lstrip()
    if stripped.startswith("["):  # the same records as one JSON array
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg}).") from exc
        return [_item_from_record(path, i + 1, rec, f"item {i + 1}") for i, rec in enumerate(records)]
    items: list[EvalItem] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{lineno}: invalid JSON ({exc.msg}). Each line must be one object.") from exc
        items.append(_item_from_record(path, len(items) + 1, record, f"line {lineno}"))
    return items


def _item_from_record(path: Path, n: int, record: Any, where: str) -> EvalItem:
    if not isinstance(record, dict):
        raise DatasetError(f"{path} {where}: expected a JSON object, got {type(record).__name__}.")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DatasetError(f"{path} {where}: \"question\" must be a non-empty string.")
    answerable = record.get("answerable", True)
    if not isinstance(answerable, bool):
        raise DatasetError(f"{path} {where}: \"answerable\" must be true or false.")
    reference_answer = record.get("reference_answer") or ""
    if not isinstance(reference_answer, str):
        raise DatasetError(f"{path} {where}: \"reference_answer\" must be a string.")
    split = record.get("split") or ""
    if not isinstance(split, str):
        raise DatasetError(f"{path} {where}: \"split\" must be a string such as \"heldout\".")
    return EvalItem(
        id=str(record.get("id") or f"q{n}"),
        question=question.strip(),
        reference_answer=reference_answer.strip(),
        reference_contexts=_strings(record.get("reference_contexts"), path, where, "reference_contexts"),
        answerable=answerable,
        answers=_strings(record.get("answers"), path, where, "answers"),
        split=split.strip(),
    )


def _strings(value: Any, path: Path, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v for v in value if v.strip()]
    raise DatasetError(f"{path} {where}: \"{key}\" must be a list of strings.")


def _read_llamaindex(path: Path, data: dict[str, Any]) -> list[EvalItem]:
    items = []
    for i, example in enumerate(data["examples"], start=1):
        where = f"examples[{i - 1}]"
        if not isinstance(example, dict):
            raise DatasetError(f"{path} {where}: expected an object.")
        query = example.get("query")
        if not isinstance(query, str) or not query.strip():
            raise DatasetError(f"{path} {where}: \"query\" must be a non-empty string.")
        reference = example.get("reference_answer") or ""
        if not isinstance(reference, str):
            raise DatasetError(f"{path} {where}: \"reference_answer\" must be a string.")
        items.append(EvalItem(
            id=str(example.get("id") or f"q{i}"),
            question=query.strip(),
            reference_answer=reference.strip(),
            reference_contexts=_strings(example.get("reference_contexts"), path, where, "reference_contexts"),
            answerable=True,
        ))
    return items


def _read_squad(path: Path, data: dict[str, Any]) -> tuple[list[EvalItem], dict[str, str]]:
    """SQuAD v1.1/v2.0: every paragraph becomes a corpus file; impossible questions are unanswerable.

    The reference context of an answerable question is the sentence (or sentences) of its
    paragraph holding the first answer span, not the whole paragraph: a paragraph is often
    longer than one chunk, and a sentence is what retrieval has to find.
    """
    items: list[EvalItem] = []
    documents: dict[str, str] = {}
    for a, article in enumerate(data["data"]):
        title = str(article.get("title") or f"article-{a}")
        slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60] or "article"
        for p, paragraph in enumerate(article.get("paragraphs") or []):
            context = paragraph.get("context")
            if not isinstance(context, str) or not context.strip():
                raise DatasetError(f"{path}: data[{a}].paragraphs[{p}] has no \"context\" text.")
            documents[f"{a:04d}-{slug}-{p:03d}.txt"] = f"{title.replace('_', ' ')}\n\n{context}\n"
            for q, qa in enumerate(paragraph.get("qas") or []):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise DatasetError(f"{path} {where}: \"question\" must be a non-empty string.")
                impossible = bool(qa.get("is_impossible", False))
                answers = [x for x in (qa.get("answers") or []) if isinstance(x, dict) and x.get("text")]
                texts = list(dict.fromkeys(str(x["text"]).strip() for x in answers))
                answerable = not impossible and bool(texts)
                contexts = [_answer_sentence(context, answers[0])] if answerable else []
                items.append(EvalItem(
                    id=str(qa.get("id") or f"{a}-{p}-{q}"),
                    question=question.strip(),
                    reference_answer=texts[0] if answerable else "",
                    reference_contexts=contexts,
                    answerable=answerable,
                    answers=texts if answerable else [],
                ))
    return items, documents


def _answer_sentence(context: str, answer: dict[str, Any]) -> str:
    """The sentences of ``context`` overlapping the answer span (the paragraph if unknown)."""
    text = str(answer["text"])
    start = answer.get("answer_start")
    if not isinstance(start, int) or context[start:start + len(text)] != text:
        start = context.find(text)
    if start < 0:
        return context.strip()
    end = start + len(text)
    pieces, cursor = [], 0
    for match in SENTENCE_END.finditer(context):
        pieces.append((cursor, match.start()))
        cursor = match.end()
    pieces.append((cursor, len(context)))
    chosen = [context[s:e] for s, e in pieces if s < end and e > start]
    return " ".join(chosen).strip() or context.strip()


def _read_csv(path: Path, text: str) -> list[EvalItem]:
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))
    if not rows:
        raise DatasetError(f"{path}: the CSV has no header row.")
    header = [h.strip().lower() for h in rows[0]]

    def column(names: tuple[str, ...]) -> int | None:
        for name in names:
            if name in header:
                return header.index(name)
        return None

    q_col, a_col = column(QUESTION_COLUMNS), column(ANSWER_COLUMNS)
    if q_col is None or a_col is None:
        raise DatasetError(
            f"{path}: the CSV needs a question column ({'/'.join(QUESTION_COLUMNS)}) and an answer "
            f"column ({'/'.join(ANSWER_COLUMNS)}); found {', '.join(header) or 'no columns'}."
        )
    id_col, c_col = column(("id",)), column(CONTEXT_COLUMNS)
    ok_col, answers_col, split_col = column(("answerable",)), column(("answers",)), column(("split",))
    items: list[EvalItem] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = row + [""] * (len(header) - len(row))
        question, answer = cells[q_col].strip(), cells[a_col].strip()
        if not question:
            raise DatasetError(f"{path}:{lineno}: empty question.")
        if ok_col is not None and cells[ok_col].strip():
            flag = cells[ok_col].strip().lower()
            if flag not in TRUE_WORDS | FALSE_WORDS:
                raise DatasetError(f"{path}:{lineno}: answerable must be true or false, not {flag!r}.")
            answerable = flag in TRUE_WORDS
        else:
            # Without an answerable column, a row with no answer is a question the corpus cannot answer.
            answerable = bool(answer)
        items.append(EvalItem(
            id=(cells[id_col].strip() if id_col is not None else "") or f"q{len(items) + 1}",
            question=question,
            reference_answer=answer,
            reference_contexts=_cell_list(cells[c_col]) if c_col is not None else [],
            answerable=answerable,
            answers=[a.strip() for a in cells[answers_col].split("|") if a.strip()] if answers_col is not None else [],
            split=cells[split_col].strip() if split_col is not None else "",
        ))
    return items


def _cell_list(cell: str) -> list[str]:
    """A CSV cell holding either one context or a JSON list of them."""
    cell = cell.strip()
    if cell.startswith("["):
        try:
            value = json.loads(cell)
        except json.JSONDecodeError:
            return [cell]
        if isinstance(value, list):
            return [str(v) for v in value if str(v).strip()]
    return [cell] if cell else []


def _check_unique_ids(path: Path, items: list[EvalItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DatasetError(f"{path}: question id {item.id!r} appears twice; ids must be unique.")
        seen.add(item.id)
