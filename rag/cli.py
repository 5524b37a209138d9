"""Command line: `ingest.py` (sync, add, remove, list) and `python -m rag` (ask, chat, ingest, eval)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from rag.config import Settings, build_settings
from rag.errors import FootnoteError, InputError

logger = logging.getLogger(__name__)


def _common_flags() -> argparse.ArgumentParser:
    """Flags every command takes; SUPPRESS keeps a subcommand from resetting the main parser's."""
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--corpus", dest="corpus_dir", metavar="DIR", help="corpus folder (FOOTNOTE_CORPUS_DIR)")
    common.add_argument("--data-dir", dest="data_dir", metavar="DIR", help="index folder (FOOTNOTE_DATA_DIR)")
    common.add_argument("--chroma-url", dest="chroma_url", metavar="URL", help="Chroma server http://HOST:PORT")
    common.add_argument("--embedding-model", dest="embedding_model", metavar="NAME", help="sentence-transformers model or path")
    common.add_argument("--max-file-mb", dest="max_file_mb", type=float, metavar="MB", help="largest file ingested")
    common.add_argument("-v", "--verbose", action="count", help="more log output (-vv for debug)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars or tables")
    common.add_argument("--json", action="store_true", help="print one JSON object")
    return common


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    fields = ("corpus_dir", "data_dir", "chroma_url", "embedding_model", "max_file_mb")
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    overrides.update({k: v for k, v in extra.items() if v is not None})
    settings = build_settings()
    return settings.with_updates(**overrides) if overrides else settings


def setup_logging(settings: Settings, verbose: int = 0) -> None:
    """Send Footnote's log records to stderr at the configured (or -v) level."""
    level = {0: settings.log_level.upper(), 1: "INFO"}.get(verbose, "DEBUG")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("rag")
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "chromadb", "sentence_transformers", "transformers", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pypdf warns ("EOF marker not found") on files the loader then reports as one error line.
    logging.getLogger("pypdf").setLevel(logging.WARNING if verbose else logging.ERROR)


# ---------------------------------------------------------------------------- ingest
def ingest_parser() -> argparse.ArgumentParser:
    """The parser of `python ingest.py`."""
    common = _common_flags()
    parser = argparse.ArgumentParser(
        prog="ingest.py", parents=[common],
        description="Index the corpus into Chroma. With no command, sync the index with the corpus.",
    )
    parser.add_argument("--rebuild", action="store_true", default=False,
                        help="drop the index and build it again (after changing model or chunking)")
    sub = parser.add_subparsers(dest="command", metavar="{sync,add,remove,list}")
    sub.add_parser("sync", parents=[common], help="add new, re-index changed, drop removed files (default)")
    add = sub.add_parser("add", parents=[common], help="copy files or fetch URLs into the corpus and index them")
    add.add_argument("items", nargs="+", metavar="PATH_OR_URL")
    add.add_argument("--allow-private-urls", dest="allow_private_urls", action="store_true", default=None,
                     help="let URLs reach loopback and private networks (FOOTNOTE_ALLOW_PRIVATE_URLS)")
    remove = sub.add_parser("remove", parents=[common], help="remove documents from the index and the corpus")
    remove.add_argument("sources", nargs="+", metavar="SOURCE")
    sub.add_parser("list", parents=[common], help="show what is indexed")
    return parser


def ingest_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python ingest.py`; returns the exit status."""
    args = ingest_parser().parse_args(argv)
    quiet = getattr(args, "quiet", False)
    as_json = getattr(args, "json", False)
    try:
        settings = _settings(args, allow_private_urls=getattr(args, "allow_private_urls", None))
        setup_logging(settings, getattr(args, "verbose", 0) or 0)
        from rag.indexer import Indexer

        if args.command == "list":
            listing = Indexer(settings)
            entries, failures = listing.documents(), listing.failures()
            if as_json:
                failed = [{"source": s, "title": "", "type": "", "chunks": 0, "added": "", "updated": "",
                           "authors": "", "url": "", "error": reason} for s, reason in failures.items()]
                print(json.dumps([_entry_dict(e) for e in entries] + failed, ensure_ascii=False))
            else:
                _print_documents(entries, failures)
            return 0
        with _progress(enabled=not quiet and sys.stderr.isatty()) as progress:
            indexer = Indexer(settings, progress=progress)
            if args.command == "add":
                report = indexer.add(args.items)
            elif args.command == "remove":
                report = indexer.remove(args.sources)
            else:
                report = indexer.sync(rebuild=args.rebuild)
    except FootnoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for _, message in report.failed:
        print(f"error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    elif not quiet:
        _print_report(report)
    return 1 if report.failed else 0


def _entry_dict(entry: Any) -> dict[str, Any]:
    return {"source": entry.source, "title": entry.title, "type": entry.type, "chunks": entry.chunks,
            "added": entry.added, "updated": entry.updated, "authors": entry.authors, "url": entry.url}


def _print_documents(entries: list[Any], failures: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(entries)} documents indexed")
    for column in ("source", "title", "type", "chunks", "added"):
        table.add_column(column, justify="right" if column == "chunks" else "left", overflow="fold")
    for e in entries:
        table.add_row(e.source, e.title, e.type, str(e.chunks), e.added[:19].replace("T", " "))
    Console(markup=False, highlight=False).print(table)
    if failures:
        failed = Table(title=f"{len(failures)} files not indexed (fix them, or `ingest.py remove SOURCE`)")
        failed.add_column("source", overflow="fold")
        failed.add_column("reason", overflow="fold")
        for source, reason in failures.items():
            failed.add_row(source, reason)
        Console(markup=False, highlight=False).print(failed)


def _print_report(report: Any) -> None:
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


class _RichProgress:
    """Progress bars for files and embedding, drawn on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.file_task = self.bars.add_task("files", total=0)
        self.embed_task = self.bars.add_task("embedding", total=0)

    def files(self, total: int) -> None:
        self.bars.update(self.file_task, total=total)

    def file_done(self, source: str) -> None:
        self.bars.advance(self.file_task)

    def chunks(self, total: int) -> None:
        task = self.bars.tasks[self.embed_task]
        self.bars.update(self.embed_task, total=(task.total or 0) + total)

    def embedded(self, n: int) -> None:
        self.bars.advance(self.embed_task, n)


class _progress:
    """Context manager yielding a rich progress display, or none."""

    def __init__(self, *, enabled: bool) -> None:
        self.display = _RichProgress() if enabled else None

    def __enter__(self) -> Any:
        if self.display is None:
            return None
        self.display.bars.start()
        return self.display

    def __exit__(self, *exc: object) -> None:
        if self.display is not None:
            self.display.bars.stop()


# ---------------------------------------------------------------------------- ask / chat
def _answer_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--k", type=int, default=None, help="passages to retrieve (FOOTNOTE_RETRIEVAL__TOP_K)")
    parser.add_argument("--backend", default=None, metavar="NAME",
                        help="answer backend: extractive, openai or ollama (FOOTNOTE_ANSWER__BACKEND)")
    parser.add_argument("--model", default=None, help="LLM model name (FOOTNOTE_ANSWER__MODEL)")
    parser.add_argument("--base-url", default=None, help="LLM server URL (FOOTNOTE_ANSWER__BASE_URL)")
    parser.add_argument("--source", action="append", default=None, metavar="S",
                        help="only search this source (repeatable)")
    parser.add_argument("--hybrid", action=argparse.BooleanOptionalAction, default=None,
                        help="fuse keyword and dense search (default on)")
    parser.add_argument("--mmr", action=argparse.BooleanOptionalAction, default=None,
                        help="diversify passages with maximal marginal relevance")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m rag`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "ingest":
        return ingest_main(argv[1:])
    if argv and argv[0] == "eval":
        from rag.eval.__main__ import main as eval_main

        return eval_main(argv[1:])
    common = _common_flags()
    parser = argparse.ArgumentParser(prog="python -m rag", description="Ask questions about your documents.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{ask,chat,ingest,eval}")
    ask_parser = sub.add_parser("ask", parents=[common], help="answer one question with citations")
    ask_parser.add_argument("question")
    _answer_flags(ask_parser)
    chat_parser = sub.add_parser("chat", parents=[common], help="interactive multi-turn chat")
    _answer_flags(chat_parser)
    sub.add_parser("ingest", help="same as python ingest.py")
    sub.add_parser("eval", help="same as python -m rag.eval")
    args = parser.parse_args(argv)
    try:
        settings = _settings(args, **{"answer.model": args.model, "answer.base_url": args.base_url})
        setup_logging(settings, getattr(args, "verbose", 0) or 0)
        options = {"k": args.k, "backend": args.backend, "sources": args.source,
                   "hybrid": args.hybrid, "mmr": args.mmr}
        if args.command == "ask":
            return _ask_once(args.question, settings, options, as_json=getattr(args, "json", False))
        return _chat(settings, options)
    except FootnoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _ask_once(question: str, settings: Settings, options: dict[str, Any], *, as_json: bool) -> int:
    from rag.pipeline import ask

    answer = ask(question, settings=settings, **options)
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1))
    else:
        _print_answer(answer)
    return 0


def _chat(settings: Settings, options: dict[str, Any]) -> int:
    from rag.pipeline import stream
    from rag.types import Answer

    history: list[tuple[str, str]] = []
    print("Footnote chat. Ask about your documents; an empty line or Ctrl-D quits.", file=sys.stderr)
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            print(file=sys.stderr)
            return 0
        if not question:
            return 0
        shown = 0
        final = None
        try:
            for piece in stream(question, history, settings=settings, **options):
                if isinstance(piece, Answer):
                    final = piece
                else:
                    sys.stdout.write(piece[shown:])
                    sys.stdout.flush()
                    shown = len(piece)
        except InputError as exc:  # a question too long ends that question, not the chat
            print(f"error: {exc}", file=sys.stderr)
            continue
        print()
        if final is not None:
            _print_sources(final)
            history.append((question, final.text))


def _print_answer(answer: Any) -> None:
    print(answer.text)
    _print_sources(answer)


def _print_sources(answer: Any) -> None:
    unsupported = [s.text for s in answer.sentences if s.supported is False]
    for text in unsupported:
        print(f"  ! not supported by its source: {text}")
    if answer.refused:
        for p in answer.closest:
            print(f"  closest: {p.title} ({p.source}) score {p.score:.2f}")
        return
    for c in answer.citations:
        page = f", p. {c.passage.page}" if c.passage.page else ""
        mark = "" if c.supported else "  [unsupported]"
        print(f"  [{c.marker}] {c.passage.title} ({c.passage.source}{page}){mark}")
        print(f"      \u201c{c.quote}\u201d")
