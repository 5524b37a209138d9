"""`python -m rag`: ask, chat, ingest and eval commands."""

import sys

from rag.cli import main

sys.exit(main())
