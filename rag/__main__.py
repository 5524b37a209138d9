"""`python -m rag COMMAND`: the command tree of ``rag.cli`` (ingest, ask, chat, eval, serve)."""

import sys

from rag.cli import main

sys.exit(main())
