"""Index the corpus: `python ingest.py [sync|add|remove|list] --help` (same as `python -m rag ingest`)."""

import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main(command="ingest", prog="ingest.py"))
