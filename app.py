"""Footnote web app: `python app.py [--host H] [--port P] [--data-dir DIR] [--corpus DIR] [--auth USER:PASS]`."""

from __future__ import annotations

import argparse
import sys

from rag.cli import setup_logging
from rag.config import build_settings
from rag.errors import FootnoteError


def main(argv: list[str] | None = None) -> int:
    """Sync the index with the corpus, then serve the app on loopback (or --host)."""
    parser = argparse.ArgumentParser(prog="app.py", description="Serve Footnote's web app.")
    parser.add_argument("--host", help="interface to listen on (FOOTNOTE_UI__HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (FOOTNOTE_UI__PORT, default 7860)")
    parser.add_argument("--data-dir", dest="data_dir", metavar="DIR", help="index folder (FOOTNOTE_DATA_DIR)")
    parser.add_argument("--corpus", dest="corpus_dir", metavar="DIR", help="corpus folder (FOOTNOTE_CORPUS_DIR)")
    parser.add_argument("--auth", metavar="USER:PASS", help="require this login (FOOTNOTE_UI__AUTH)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    args = parser.parse_args(argv)
    try:
        settings = build_settings().with_updates(**{
            "ui.host": args.host, "ui.port": args.port, "ui.auth": args.auth,
            "data_dir": args.data_dir, "corpus_dir": args.corpus_dir,
        })
        setup_logging(settings, args.verbose)
        from rag.ui import serve

        serve(settings)
    except FootnoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
