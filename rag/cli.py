"""The command line: one tree (ingest, ask, chat, eval, serve) behind `python -m rag`, `ingest.py` and `app.py`.

Every flag is declared once in ``rag.flags``; a command lists the flags it takes. Commands parse,
call the library, print, and turn a ``FootnoteError`` into one ``error:`` line and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rag.config import Settings, offline_environment
from rag.errors import FootnoteError, InputError
from rag.export import FORMATS, export
from rag.flags import ANSWER_FLAGS, INDEX_FLAGS, OUTPUT_FLAGS, add_flags, settings_from

logger = logging.getLogger(__name__)

EVAL_OUT = Path("evals/out")


def prepare_process() -> None:
    """Process-wide setup for the entry points: no network for models, no telemetry, quiet libraries.

    Set before the libraries are imported, since they read these once; a user's own value wins.
    """
    offline_environment()


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


def _start(args: argparse.Namespace, **extra: Any) -> Settings:
    settings = settings_from(args, **extra)
    setup_logging(settings, getattr(args, "verbose", 0) or 0)
    return settings


# ---------------------------------------------------------------------------- ingest
def _define_ingest(parser: argparse.ArgumentParser) -> None:
    parser.description = "Index the corpus into Chroma. With no command, sync the index with the corpus."
    add_flags(parser, (*INDEX_FLAGS, *OUTPUT_FLAGS), suppress=True)
    parser.add_argument("--rebuild", action="store_true", default=False,
                        help="drop the index and build it again (after changing model or chunking)")
    sub = parser.add_subparsers(dest="action", metavar="{sync,add,remove,list}")
    actions = {"sync": "add new, re-index changed, drop removed files (default)",
               "add": "copy files or fetch URLs into the corpus and index them",
               "remove": "remove documents from the index and the corpus", "list": "show what is indexed"}
    for name, help_text in actions.items():
        action = sub.add_parser(name, help=help_text)
        add_flags(action, (*INDEX_FLAGS, *OUTPUT_FLAGS), suppress=True)
        if name == "add":
            action.add_argument("items", nargs="+", metavar="PATH_OR_URL")
            add_flags(action, ("collection",))
            action.add_argument("--allow-private-urls", dest="allow_private_urls", action="store_true",
                                default=None,
                                help="let URLs reach loopback and private networks (FOOTNOTE_ALLOW_PRIVATE_URLS)")
        elif name == "list":
            add_flags(action, ("collection",))
        elif name == "remove":
            action.add_argument("sources", nargs="+", metavar="SOURCE")


def _ingest(args: argparse.Namespace) -> int:
    from rag import console
    from rag.indexer import Indexer

    quiet, as_json = getattr(args, "quiet", False), getattr(args, "json", False)
    settings = _start(args, allow_private_urls=getattr(args, "allow_private_urls", None))
    if args.action == "list":
        listing = Indexer(settings)
        entries, failures = listing.documents(), listing.failures()
        if getattr(args, "collection", None):
            from rag.corpus import collection_of

            wanted = set(args.collection)
            entries = [e for e in entries if collection_of(e.source) in wanted]
            failures = {s: r for s, r in failures.items() if collection_of(s) in wanted}
        if as_json:
            print(json.dumps(console.document_dicts(entries, failures), ensure_ascii=False))
        else:
            console.print_documents(entries, failures)
        return 0
    progress = console.IngestProgress() if not quiet and sys.stderr.isatty() else None
    with progress or contextlib.nullcontext():
        indexer = Indexer(settings, progress=progress)
        if args.action == "add":
            report = indexer.add(args.items, collection=_one_collection(args))
        elif args.action == "remove":
            report = indexer.remove(args.sources)
        else:
            report = indexer.sync(rebuild=args.rebuild)
    for _, message in report.failed:
        print(f"error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    elif not quiet:
        console.print_ingest_report(report)
    return 1 if report.failed else 0


def _one_collection(args: argparse.Namespace) -> str | None:
    names = getattr(args, "collection", None) or []
    if len(set(names)) > 1:
        raise InputError("A file goes into one collection: give --collection once.")
    return names[0] if names else None


# ---------------------------------------------------------------------------- ask / chat
def _define_ask(parser: argparse.ArgumentParser) -> None:
    parser.description = "Answer one question with citations."
    parser.add_argument("question")
    _define_chat(parser)
    parser.add_argument("--export", choices=FORMATS, help="print the answer as Markdown with numbered "
                        "footnotes and a bibliography, or as CSL-JSON for reference managers")


def _define_chat(parser: argparse.ArgumentParser) -> None:
    parser.description = parser.description or "Chat about your documents, several turns, streamed."
    add_flags(parser, (*INDEX_FLAGS, *ANSWER_FLAGS, *OUTPUT_FLAGS, "collection"))
    parser.add_argument("--source", action="append", metavar="S", help="only search this source (repeatable)")


def _ask(args: argparse.Namespace) -> int:
    from rag import console
    from rag.pipeline import ask

    answer = ask(args.question, settings=_start(args), sources=args.source, collections=args.collection)
    if args.export:
        print(export([answer], args.export), end="")
    elif args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1))
    else:
        console.print_answer(answer)
    return 0


def _chat(args: argparse.Namespace) -> int:
    from rag import console
    from rag.pipeline import scope, stream
    from rag.types import Answer

    settings = _start(args)
    scope(settings, sources=args.source, collections=args.collection)  # an unknown name stops here
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
        shown, final = "", None
        try:
            for piece in stream(question, history, settings=settings, sources=args.source,
                                collections=args.collection):
                if isinstance(piece, Answer):
                    final = piece
                elif isinstance(piece, str):
                    shown = _show(piece, shown)
        except InputError as exc:  # a question too long ends that question, not the chat
            print(f"error: {exc}", file=sys.stderr)
            continue
        if final is not None:
            _show(final.text, shown)
        print()
        if final is not None:
            console.print_sources(final)
            history.append((question, final.text))


def _show(text: str, shown: str) -> str:
    """Print what ``text`` adds to the ``shown`` answer; a text that replaces it (quotes instead of
    a writer's decline, an answer opened with the judge's words) starts a new line. Returns ``text``."""
    if text.startswith(shown):
        sys.stdout.write(text[len(shown):])
    else:
        sys.stdout.write(("\n" if shown else "") + text)
    sys.stdout.flush()
    return text


# ---------------------------------------------------------------------------- eval
def _define_eval(parser: argparse.ArgumentParser) -> None:
    from rag.eval.configs import PRESETS
    from rag.eval.datasets import FORMATS

    parser.description = "Evaluate retrieval, answers, citations and refusals on a question set."
    parser.epilog = (f"Configurations for --compare: presets {', '.join(PRESETS)} and key=value pairs (k, "
                     "hybrid, mmr, backend, model, base_url, ... or a dotted settings key), joined by commas: "
                     "--compare dense hybrid,k=3 backend=openai.")
    parser.add_argument("dataset", type=Path, metavar="DATASET",
                        help="JSON Lines, LlamaIndex rag_dataset.json, SQuAD JSON or CSV file")
    parser.add_argument("--format", dest="kind", choices=FORMATS, help="dataset format (detected when omitted)")
    parser.add_argument("--corpus", dest="eval_corpus", type=Path, metavar="DIR",
                        help="index these documents into their own evaluation index (default: the dataset's "
                             "own documents for SQuAD, else the configured index)")
    add_flags(parser, ("data_dir", *ANSWER_FLAGS, *OUTPUT_FLAGS, "collection"))
    parser.add_argument("--split", metavar="NAME", help="only this split of the dataset (calibration, "
                        "heldout); rows without a split belong to every split")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    parser.add_argument("--compare", nargs="+", default=[], metavar="CONFIG",
                        help="run these configurations side by side")
    parser.add_argument("--out", type=Path, metavar="DIR", help=f"report folder (default {EVAL_OUT}/<timestamp>)")
    parser.add_argument("--judge-url", metavar="URL", help="OpenAI-compatible server of an LLM judge")
    parser.add_argument("--judge-model", metavar="M", help="model name of the LLM judge")
    parser.add_argument("--gate", type=Path, metavar="FILE",
                        help="thresholds JSON; exit 1 if a metric falls outside them")


def _eval(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1.", file=sys.stderr)
        return 2
    from rag import console
    from rag.eval.datasets import load_dataset
    from rag.eval.judge import make_judge
    from rag.eval.report import gate_failures, load_thresholds, write_report
    from rag.eval.runner import compare

    base = _start(args)
    thresholds = load_thresholds(args.gate) if args.gate else None
    dataset = load_dataset(args.dataset, kind=args.kind)
    items = dataset.select(args.split) if args.split else dataset.items
    items = items[: args.limit] if args.limit else items
    judge = make_judge(base, url=args.judge_url, model=args.judge_model)
    show = not args.quiet and sys.stderr.isatty()
    reports = compare(items, base, args.compare, corpus=args.eval_corpus, documents=dataset.documents,
                      judge=judge, bar=lambda label: console.QuestionBar(label, enabled=show),
                      collections=args.collection)
    out = args.out or EVAL_OUT / datetime.now().strftime("%Y%m%d-%H%M%S")
    paths = write_report(reports, out, dataset=str(args.dataset), split=args.split or "")
    title = f"{dataset.name}{f' ({args.split} split)' if args.split else ''}: {len(items)} questions"
    title += f" in {', '.join(args.collection)}" if args.collection else ""
    console.print_eval(reports, paths, title=title, as_json=args.json, quiet=args.quiet)
    if thresholds is None:
        return 0
    failures = [line for report in reports for line in gate_failures(report, thresholds)]
    console.print_gate(failures, args.gate, quiet=args.quiet)
    return 1 if failures else 0


# ---------------------------------------------------------------------------- serve
def _define_serve(parser: argparse.ArgumentParser) -> None:
    parser.description = "Sync the index with the corpus, then serve the web app on loopback (or --host)."
    add_flags(parser, ("host", "port", "auth", *INDEX_FLAGS, "verbose"))


def _serve(args: argparse.Namespace) -> int:
    settings = _start(args)
    from rag.ui import serve

    serve(settings)
    return 0


Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "ingest": ("index the corpus: sync (default), add, remove, list", _define_ingest, _ingest),
    "ask": ("answer one question with citations", _define_ask, _ask),
    "chat": ("interactive multi-turn chat", _define_chat, _chat),
    "eval": ("evaluate on a question set, write reports, gate CI", _define_eval, _eval),
    "serve": ("serve the web app", _define_serve, _serve),
}


def parser(command: str | None = None, *, prog: str | None = None) -> argparse.ArgumentParser:
    """The whole tree (`python -m rag COMMAND`), or one command's parser on its own under ``prog``."""
    if command is not None:
        help_text, define, _ = COMMANDS[command]
        one = argparse.ArgumentParser(prog=prog or f"python -m rag {command}", description=help_text)
        define(one)
        return one
    tree = argparse.ArgumentParser(prog=prog or "python -m rag", description="Ask questions about your documents.")
    sub = tree.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, (help_text, define, _) in COMMANDS.items():
        define(sub.add_parser(name, help=help_text, description=help_text))
    return tree


def main(argv: Sequence[str] | None = None, *, command: str | None = None, prog: str | None = None) -> int:
    """Run a command line; returns the exit status (argparse exits 2 on a usage error).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
        command: run this command's parser alone (the shims: `ingest.py`, `app.py`, `python -m rag.eval`).
        prog: the program name shown in usage lines.
    """
    prepare_process()
    args = parser(command, prog=prog).parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return COMMANDS[command or args.command][2](args)
    except FootnoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def ingest_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python ingest.py`; returns the exit status."""
    return main(argv, command="ingest", prog="ingest.py")
