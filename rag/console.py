"""Terminal output of the command line: tables, progress bars, answers with their sources."""

from __future__ import annotations

import json
import sys
from typing import Any

from rag.types import Answer


def document_dicts(entries: list[Any], failures: dict[str, str]) -> list[dict[str, Any]]:
    """The JSON shape of `ingest.py list --json`: one object per document, failed files included."""
    from rag.corpus import collection_of

    rows = [{"source": e.source, "collection": collection_of(e.source), "title": e.title, "type": e.type,
             "chunks": e.chunks, "added": e.added, "updated": e.updated, "authors": e.authors, "url": e.url}
            for e in entries]
    rows += [{"source": s, "collection": collection_of(s), "title": "", "type": "", "chunks": 0, "added": "",
              "updated": "", "authors": "", "url": "", "error": reason} for s, reason in failures.items()]
    return rows


def print_documents(entries: list[Any], failures: dict[str, str]) -> None:
    """The table of `ingest.py list`, and one of the files that could not be indexed."""
    from rich.console import Console
    from rich.table import Table

    from rag.corpus import collection_of

    table = Table(title=f"{len(entries)} documents indexed")
    for column in ("source", "collection", "title", "type", "chunks", "added"):
        table.add_column(column, justify="right" if column == "chunks" else "left", overflow="fold")
    for e in entries:
        table.add_row(e.source, collection_of(e.source), e.title, e.type, str(e.chunks),
                      e.added[:19].replace("T", " "))
    Console(markup=False, highlight=False).print(table)
    if failures:
        failed = Table(title=f"{len(failures)} files not indexed (fix them, or `ingest.py remove SOURCE`)")
        failed.add_column("source", overflow="fold")
        failed.add_column("reason", overflow="fold")
        for source, reason in failures.items():
            failed.add_row(source, reason)
        Console(markup=False, highlight=False).print(failed)


def print_ingest_report(report: Any) -> None:
    """The summary table of an ingest, on stderr."""
    from rich.console import Console
    from rich.table import Table

    data = report.to_dict()
    table = Table(title="Ingest summary")
    table.add_column("")
    table.add_column("count", justify="right")
    for key in ("added", "updated", "unchanged", "removed"):
        table.add_row(key, str(data[key]))
    table.add_row("failed", str(len(data["failed"])))
    table.add_row("chunks embedded", str(data["chunks_embedded"]))
    table.add_row("chunks reused", str(data["chunks_reused"]))
    table.add_row("chunks in index", str(data["chunks_total"]))
    table.add_row("seconds", f"{data['seconds']:.2f}")
    Console(stderr=True, markup=False, highlight=False).print(table)


class IngestProgress:
    """Progress bars for files and embedding, drawn on stderr; a context manager yielding itself."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.file_task = self.bars.add_task("files", total=0)
        self.embed_task = self.bars.add_task("embedding", total=0)

    def __enter__(self) -> IngestProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def files(self, total: int) -> None:
        """Called once with the number of files to index."""
        self.bars.update(self.file_task, total=total)

    def file_done(self, source: str) -> None:
        """Called after each file."""
        self.bars.advance(self.file_task)

    def chunks(self, total: int) -> None:
        """Called with the number of chunks a file adds to embed."""
        task = self.bars.tasks[self.embed_task]
        self.bars.update(self.embed_task, total=(task.total or 0) + total)

    def embedded(self, n: int) -> None:
        """Called after each embedded batch."""
        self.bars.advance(self.embed_task, n)


class QuestionBar:
    """A tqdm bar on stderr fed by ``evaluate``'s progress callback; silent when disabled."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        self.label, self.enabled = label, enabled
        self._bar: Any = None

    def __enter__(self) -> QuestionBar:
        return self

    def update(self, done: int, total: int) -> None:
        """Progress callback: ``done`` of ``total`` questions."""
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.label, unit="q", file=sys.stderr, leave=False)
        self._bar.n = done
        self._bar.refresh()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def print_eval(reports: list[Any], paths: dict[str, Any], *, title: str, as_json: bool, quiet: bool) -> None:
    """An evaluation's summary (a table, or one JSON object on stdout), where its reports are, its failures."""
    from rag.eval.report import summary_json, summary_table

    if as_json:
        print(json.dumps(summary_json(reports), ensure_ascii=False))
    elif not quiet:
        from rich.console import Console

        Console(markup=False, highlight=False).print(summary_table(reports, title=title))
        for report in reports:
            stages = ", ".join(f"{name} {t['p50_ms']:.0f}/{t['p95_ms']:.0f} ms"
                               for name, t in report.stages.items())
            if stages:
                print(f"latency p50/p95 by stage, {report.label}: {stages}", file=sys.stderr)
    if not quiet:
        print(f"reports: {paths['markdown']}, {paths['json']}, {paths['chart']}", file=sys.stderr)
    for report in reports:
        if report.errors:
            print(f"warning: {report.label}: {report.errors} questions failed; see {paths['json']}",
                  file=sys.stderr)


def print_gate(failures: list[str], gate: Any, *, quiet: bool) -> None:
    """Each metric outside the thresholds, or (unless quiet) that all are within them."""
    for line in failures:
        print(f"gate: {line}", file=sys.stderr)
    if not failures and not quiet:
        print(f"gate: all metrics within {gate}", file=sys.stderr)


def print_answer(answer: Answer) -> None:
    """The answer text, then its sources."""
    print(answer.text)
    print_sources(answer)


def print_sources(answer: Answer) -> None:
    """Each citation with its quote, unsupported sentences, or the closest material of a refusal."""
    for sentence in answer.sentences:
        if sentence.supported is False:
            print(f"  ! not supported by its source: {sentence.text}")
        elif sentence.supported and sentence.attributed:
            print(f"  ~ citation corrected by the check: {sentence.text}")
    if answer.fallback:
        print(f"  (quoted instead: {answer.fallback})")
    if answer.refused:
        if answer.refusal_reason and not answer.conversation:
            print(f"  why: {answer.refusal_reason}")
        for p in answer.closest:
            print(f"  closest: {p.title} ({p.source}) score {p.score:.2f}")
        return
    for c in answer.citations:
        page = f", p. {c.passage.page}" if c.passage.page else ""
        mark = "" if c.supported else "  [unsupported]"
        print(f"  [{c.marker}] {c.passage.title} ({c.passage.source}{page}){mark}")
        print(f"      \u201c{c.quote}\u201d")
