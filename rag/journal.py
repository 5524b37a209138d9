"""Crash safety of the data folder: the write journal, the index version stamp, the reader/writer
lock that keeps other processes' searches off half-done writes, and cleaning up what a killed
process left behind.

Every write to the index follows one order: the journal names the sources about to change, the
store is changed (each change under the exclusive lock, bumping the stamp), the manifest is saved,
the journal is cleared. A run that finds a journal knows exactly which sources to repair.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import StoreError

logger = logging.getLogger(__name__)

JOURNAL_FILE = "journal.json"
STAMP_FILE = "index.stamp"
RW_LOCK_FILE = "index.rwlock"
# A `.NAME.part` copy without a live writer's lock is a leftover; one younger than this may still
# belong to a process that copies before it takes the lock (older versions did).
PART_GRACE_S = 60.0


def read_stamp(data_dir: Path) -> str:
    """The index version: changes with every committed write ("" before the first)."""
    try:
        return (data_dir / STAMP_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return ""
    except OSError as exc:
        raise translate_os_error(exc, "read the index version", data_dir) from exc


def bump_stamp(data_dir: Path) -> str:
    """Record a new index version (atomically) and return it."""
    stamp = uuid.uuid4().hex
    write_atomically(data_dir / STAMP_FILE, stamp, "record the index version")
    return stamp


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the index for writing: searches in every process wait until the block ends."""
    with _flock(data_dir, fcntl.LOCK_EX):
        yield


@contextmanager
def shared(data_dir: Path) -> Iterator[None]:
    """Hold the index for reading: no other process writes to it until the block ends."""
    with _flock(data_dir, fcntl.LOCK_SH):
        yield


@contextmanager
def _flock(data_dir: Path, mode: int) -> Iterator[None]:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / RW_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if mode == fcntl.LOCK_SH and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            yield  # a read-only data folder has no writers to wait for
            return
        raise translate_os_error(exc, "lock the index", data_dir) from exc
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def begin(data_dir: Path, op: str, sources: list[str]) -> None:
    """Record that ``op`` ("write" or "remove") is about to change ``sources``."""
    pending = pending_sources(data_dir)
    for source in sources:
        pending.setdefault(source, op)
    write_atomically(data_dir / JOURNAL_FILE, json.dumps({"sources": pending}, ensure_ascii=False),
                      "write the journal")


def finish(data_dir: Path) -> None:
    """Clear the journal: the manifest now records every change it named."""
    try:
        (data_dir / JOURNAL_FILE).unlink(missing_ok=True)
    except OSError as exc:
        raise translate_os_error(exc, "clear the journal", data_dir) from exc


def pending_sources(data_dir: Path) -> dict[str, str]:
    """Sources an interrupted write was changing, with the operation ("write" or "remove")."""
    try:
        raw = json.loads((data_dir / JOURNAL_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        logger.warning("unreadable journal in %s: every source is checked against the store", data_dir)
        return {"*": "check"}
    sources = raw.get("sources", {}) if isinstance(raw, dict) else {}
    return {str(s): str(op) for s, op in sources.items()} if isinstance(sources, dict) else {"*": "check"}


def remove_leftovers(data_dir: Path, corpus_dir: Path) -> list[Path]:
    """Delete what killed writers left: half-copied corpus files, manifest and stamp temp files.

    Call only while holding the ingest lock (no other writer can be mid-copy).
    """
    removed: list[Path] = []
    candidates = list(data_dir.glob(".manifest.*.tmp")) + list(data_dir.glob(f".{STAMP_FILE}.*.tmp"))
    candidates += list(data_dir.glob(f".{JOURNAL_FILE}.*.tmp"))
    if corpus_dir.is_dir():
        now = time.time()
        for part in corpus_dir.rglob(".*.part"):
            try:
                if now - part.stat().st_mtime > PART_GRACE_S or _owner_dead(part.name):
                    candidates.append(part)
            except OSError:
                continue
    for path in candidates:
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            continue
    if removed:
        logger.info("removed %d leftovers of interrupted writes: %s", len(removed), [p.name for p in removed])
    return removed


def _owner_dead(name: str) -> bool:
    """Whether ``.NAME.PID.part`` names a process that is gone (no PID: assume so)."""
    pid = name[: -len(".part")].rsplit(".", 1)[-1]
    return not pid.isdigit() or not pid_alive(int(pid))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the disk is full."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(seen).lower()
        if "no space left" in text or "disk is full" in text or "disk quota" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_error(where: Path | str) -> StoreError:
    """The error for a full disk, saying what to do."""
    return StoreError(
        f"The disk holding {where} is full. Free some space, then run `python ingest.py` again: "
        "it finishes or undoes the interrupted write."
    )


def translate_os_error(exc: OSError, what: str, where: Path) -> StoreError:
    """A user-facing error for a failed file operation on the data folder."""
    if is_disk_full(exc):
        return disk_full_error(where)
    return StoreError(f"Cannot {what} in {where} ({exc.strerror or exc}). Check that the folder is writable.")


def write_atomically(path: Path, text: str, what: str) -> None:
    """Write ``text`` to a temporary file, flush it to disk, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise translate_os_error(exc, what, path.parent) from exc
