"""Plain helpers for tests: real PDF and Word files, free ports, the ingest CLI in a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.types import Passage

REPO = Path(__file__).resolve().parent.parent
FIXTURE_CORPUS = REPO / "tests" / "fixtures" / "corpus"
SEED = REPO / "corpus" / "stalin-industrialisation-vs-great-leap-forward.txt"
# The one FOOTNOTE_* variable subprocesses inherit: the suite's one folder of exported models.
KEPT_VARIABLE = "FOOTNOTE_MODELS_DIR"


def make_pdf(path: Path, pages: list[str], title: str | None = None, author: str | None = None) -> Path:
    """Write a real PDF with one page per string (text wrapped into lines), and optional metadata.

    An empty string gives a page without a text layer: only a drawn rectangle.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=A4)
    if title is not None:
        pdf.setTitle(title)
    if author is not None:
        pdf.setAuthor(author)
    _, height = A4
    for text in pages:
        if not text:
            pdf.rect(100, 400, 200, 150, stroke=1, fill=1)
        else:
            y = height - 72
            for paragraph in text.split("\n"):
                words, line = paragraph.split(), ""
                for word in words:
                    if len(line) + len(word) + 1 > 80:
                        pdf.drawString(72, y, line)
                        y -= 14
                        line = word
                    else:
                        line = f"{line} {word}".strip()
                pdf.drawString(72, y, line)
                y -= 20
        pdf.showPage()
    pdf.save()
    return path


def make_docx(path: Path, paragraphs: list[str], title: str | None = None, author: str | None = None) -> Path:
    """Write a real Word file with these paragraphs and optional core-property title and author."""
    import docx

    path.parent.mkdir(parents=True, exist_ok=True)
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if title is not None:
        document.core_properties.title = title
    if author is not None:
        document.core_properties.author = author
    document.save(str(path))
    return path


def copy_fixture_corpus(target: Path) -> list[Path]:
    """Copy tests/fixtures/corpus into ``target``; return the copies, sorted."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(FIXTURE_CORPUS.iterdir()):
        if path.is_file():
            copied.append(Path(shutil.copy2(path, target / path.name)))
    return copied


def stop(process: subprocess.Popen[bytes], *, timeout: float = 15) -> None:
    """Terminate a server started by a fixture; kill it if it will not go."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_ingest(*args: str, corpus: Path, data: Path, env: dict[str, str] | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `python ingest.py ARGS` from the repository root, as a user would.

    No FOOTNOTE_* variable but the models folder is inherited: the corpus and data folders and
    ``env`` are all it sees.
    """
    return run_script("ingest.py", *args, corpus=corpus, data=data, env=env, timeout=timeout)


def run_script(*command: str, corpus: Path, data: Path, env: dict[str, str] | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `python COMMAND...` (a script or ``-m rag ...``) from the repository root, as a user would,
    with no inherited FOOTNOTE_* variable but the models folder: the corpus and data folders and
    ``env`` are all it sees."""
    full_env = clean_env()
    full_env.update(PYTHONIOENCODING="utf-8", COLUMNS="200", FOOTNOTE_CORPUS_DIR=str(corpus),
                    FOOTNOTE_DATA_DIR=str(data), **(env or {}))
    return subprocess.run(
        [sys.executable, *command], cwd=REPO, env=full_env, capture_output=True,
        text=True, encoding="utf-8", timeout=timeout,
    )


def clean_env() -> dict[str, str]:
    """This process's environment without FOOTNOTE_* variables, except the models folder
    (``KEPT_VARIABLE``), so that subprocesses use the export the suite already made."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FOOTNOTE_") or k == KEPT_VARIABLE}


def error_lines(stderr: str) -> list[str]:
    """The `error: ...` lines the CLI printed."""
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def written_from(question: str, settings: Settings) -> dict[int, Passage]:
    """The passages, by number, an accepted question's answer is written from and cites: the
    judge's retrieval read again as ``pipeline.stream`` does (``retrieval.answer_rerank``)."""
    from rag.pipeline import reading_passages, retrieve_passages

    judged = retrieve_passages(question, settings=settings)
    reading = reading_passages(question, judged, settings=settings, k=None, sources=None, hybrid=None, mmr=None)
    return {p.marker: p for p in reading.passages}
