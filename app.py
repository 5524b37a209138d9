"""Footnote web app: `python app.py [--host H] [--port P] [--data-dir DIR] [--corpus DIR] [--auth USER:PASS]`.

The same as `python -m rag serve`: sync the index with the corpus, then serve the app (``rag.ui``).
"""

import sys

from rag.cli import main

if __name__ == "__main__":
    sys.exit(main(command="serve", prog="app.py"))
