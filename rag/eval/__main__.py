"""`python -m rag.eval DATASET`: run an evaluation, print the summary, write the reports, gate CI."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rag.answer import backend_names
from rag.errors import FootnoteError

DEFAULT_OUT = Path("evals/out")


def parser() -> argparse.ArgumentParser:
    """The parser of `python -m rag.eval` (and `python -m rag eval`)."""
    p = argparse.ArgumentParser(
        prog="python -m rag.eval",
        description="Evaluate retrieval, answers, citations and refusals on a question set.",
        epilog="Configurations for --compare: presets dense, hybrid, mmr, extractive, openai, ollama "
        "and key=value pairs (k, hybrid, mmr, backend, model, base_url, ... or a dotted settings key), "
        "joined by commas: --compare dense hybrid,k=3 backend=openai.",
    )
    p.add_argument("dataset", type=Path, metavar="DATASET",
                   help="JSON Lines, LlamaIndex rag_dataset.json, SQuAD JSON or CSV file")
    p.add_argument("--format", dest="kind", choices=("jsonl", "llamaindex", "squad", "csv"),
                   help="dataset format (detected when omitted)")
    p.add_argument("--corpus", type=Path, metavar="DIR",
                   help="index these documents into their own evaluation index (default: the "
                   "dataset's own documents for SQuAD, else the configured index)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="data folder (FOOTNOTE_DATA_DIR)")
    p.add_argument("--backend", choices=("auto", *backend_names()), help="answer backend")
    p.add_argument("--k", type=int, metavar="N", help="passages retrieved per question (metrics @N)")
    p.add_argument("--hybrid", action=argparse.BooleanOptionalAction, default=None,
                   help="fuse BM25 with dense search (default from settings)")
    p.add_argument("--mmr", action=argparse.BooleanOptionalAction, default=None, help="MMR re-ranking")
    p.add_argument("--split", metavar="NAME",
                   help="only this split of the dataset (calibration, heldout); rows without a split "
                   "belong to every split")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    p.add_argument("--compare", nargs="+", metavar="CONFIG", help="run these configurations side by side")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help=f"report folder (default {DEFAULT_OUT}/<timestamp>)")
    p.add_argument("--judge-url", metavar="URL", help="OpenAI-compatible server of an LLM judge")
    p.add_argument("--judge-model", metavar="M", help="model name of the LLM judge")
    p.add_argument("--gate", type=Path, metavar="FILE",
                   help="thresholds JSON; exit 1 if a metric falls outside them")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or table")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 on an error or a failed gate)."""
    args = parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1.", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except FootnoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from rag.cli import setup_logging
    from rag.config import build_settings
    from rag.eval.datasets import load_dataset
    from rag.eval.report import gate_failures, load_thresholds, summary_json, summary_table, write_report
    from rag.eval.runner import configure, describe, evaluate, prepare_index

    changes = {"data_dir": args.data_dir, "answer.backend": args.backend, "retrieval.top_k": args.k,
               "retrieval.hybrid": args.hybrid, "retrieval.mmr": args.mmr}
    base = build_settings()
    base = base.with_updates(**changes)
    setup_logging(base, args.verbose)
    thresholds = load_thresholds(args.gate) if args.gate else None
    dataset = load_dataset(args.dataset, kind=args.kind)
    items = dataset.select(args.split) if args.split else dataset.items
    items = items[: args.limit] if args.limit else items
    judge = _judge(args, base)
    configs = [(spec, configure(base, spec)) for spec in args.compare] if args.compare else [(describe(base), base)]
    show = not args.quiet and sys.stderr.isatty()

    reports = []
    prepared_by_index: dict[str, Any] = {}
    for label, settings in configs:
        key = settings.index_fingerprint()
        if key not in prepared_by_index:
            prepared_by_index[key] = prepare_index(settings, corpus=args.corpus, documents=dataset.documents)
        index = prepared_by_index[key]
        run_settings = settings.with_updates(data_dir=str(index.data_dir), corpus_dir=str(index.corpus_dir),
                                             chroma_url=index.chroma_url)
        with _Bar(label, enabled=show) as bar:
            reports.append(evaluate(items, settings=run_settings, progress=bar.update, judge=judge, label=label))

    out = args.out or DEFAULT_OUT / datetime.now().strftime("%Y%m%d-%H%M%S")
    paths = write_report(reports, out, dataset=str(args.dataset), split=args.split or "")
    if args.json:
        print(json.dumps(summary_json(reports), ensure_ascii=False))
    elif not args.quiet:
        from rich.console import Console

        Console(markup=False, highlight=False).print(
            summary_table(reports, title=f"{dataset.name}{f' ({args.split} split)' if args.split else ''}: "
                                         f"{len(items)} questions"))
    if not args.quiet:
        print(f"reports: {paths['markdown']}, {paths['json']}, {paths['chart']}", file=sys.stderr)
    for report in reports:
        if report.errors:
            print(f"warning: {report.label}: {report.errors} questions failed; see {paths['json']}",
                  file=sys.stderr)
    if thresholds is not None:
        failures = [line for report in reports for line in gate_failures(report, thresholds)]
        for line in failures:
            print(f"gate: {line}", file=sys.stderr)
        if failures:
            return 1
        if not args.quiet:
            print(f"gate: all metrics within {args.gate}", file=sys.stderr)
    return 0


def _judge(args: argparse.Namespace, settings: Any) -> Any:
    from rag.errors import ConfigError
    from rag.eval.judge import Judge

    cfg = settings.eval
    url, model = args.judge_url or cfg.judge_base_url, args.judge_model or cfg.judge_model
    if not url and not model:
        return None
    if not url or not model:
        raise ConfigError("The LLM judge needs both --judge-url and --judge-model "
                          "(FOOTNOTE_EVAL__JUDGE_BASE_URL, FOOTNOTE_EVAL__JUDGE_MODEL).")
    return Judge(base_url=url, model=model, api_key=cfg.judge_api_key.get_secret_value(),
                 max_tokens=cfg.judge_max_tokens, timeout=cfg.judge_timeout)


class _Bar:
    """A tqdm bar on stderr fed by ``evaluate``'s progress callback; silent when disabled."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        self.label, self.enabled = label, enabled
        self._bar: Any = None

    def __enter__(self) -> _Bar:
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


if __name__ == "__main__":
    sys.exit(main())
