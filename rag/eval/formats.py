"""Readers of the dataset formats (JSON Lines, LlamaIndex rag_dataset.json, SQuAD, CSV) into ``EvalItem``s."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from rag.eval.items import DatasetError, EvalItem
from rag.text import sentences

QUESTION_COLUMNS = ("question", "query")
ANSWER_COLUMNS = ("answer", "reference_answer", "ground_truth")
CONTEXT_COLUMNS = ("reference_contexts", "contexts", "context", "reference_context")
TRUE_WORDS = {"true", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "f"}


def read_jsonl(path: Path, text: str) -> list[EvalItem]:
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


def read_llamaindex(path: Path, data: dict[str, Any]) -> list[EvalItem]:
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


def read_squad(path: Path, data: dict[str, Any]) -> tuple[list[EvalItem], dict[str, str]]:
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
    chosen = [span.text for span in sentences(context) if span.start < end and span.end > start]
    return " ".join(chosen).strip() or context.strip()


def read_csv(path: Path, text: str) -> list[EvalItem]:
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
