"""What an ingest reports: progress callbacks while it runs, and its summary when done."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class Progress(Protocol):
    """What an ingest reports while it runs (the CLI draws bars from it)."""

    def files(self, total: int) -> None: ...
    def file_done(self, source: str) -> None: ...
    def chunks(self, total: int) -> None: ...
    def embedded(self, n: int) -> None: ...


class NoProgress:
    """A ``Progress`` that shows nothing."""

    def files(self, total: int) -> None: ...
    def file_done(self, source: str) -> None: ...
    def chunks(self, total: int) -> None: ...
    def embedded(self, n: int) -> None: ...


@dataclass
class IngestReport:
    """What an ingest did; ``to_dict`` is the ``--json`` output."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary of ``python ingest.py --json``."""
        return {
            "added": len(self.added), "updated": len(self.updated),
            "unchanged": len(self.unchanged), "removed": len(self.removed),
            "failed": [{"source": s, "error": e} for s, e in self.failed],
            "chunks_embedded": self.chunks_embedded, "chunks_reused": self.chunks_reused,
            "chunks_total": self.chunks_total, "seconds": round(self.seconds, 3),
        }

    def merge(self, other: IngestReport) -> None:
        """Fold another report's counts into this one."""
        for name in ("added", "updated", "unchanged", "removed", "failed"):
            getattr(self, name).extend(getattr(other, name))
        self.chunks_embedded += other.chunks_embedded
        self.chunks_reused += other.chunks_reused
        self.chunks_total = other.chunks_total or self.chunks_total
