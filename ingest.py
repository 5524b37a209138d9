"""Index the corpus: `python ingest.py [sync|add|remove|list] --help`."""

import sys

from rag.cli import ingest_main

if __name__ == "__main__":
    sys.exit(ingest_main())
