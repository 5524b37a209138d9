"""`python -m rag.eval DATASET ...`: the same as `python -m rag eval DATASET ...`."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the eval command of ``rag.cli``; returns the exit status (1 on an error or a failed gate)."""
    from rag.cli import main as cli_main

    return cli_main(argv, command="eval", prog="python -m rag.eval")


if __name__ == "__main__":
    sys.exit(main())
