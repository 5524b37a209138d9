"""Fixtures: app (the real `python app.py` served on a free loopback port, and a headless Chromium)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO, SEED, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
STARTUP_TIMEOUT = 180.0


@dataclass
class RunningApp:
    """A started `python app.py`: its URL, folders and log file."""

    url: str
    corpus_dir: Path
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        """What the app printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def app_env(folder: Path) -> dict[str, str]:
    """This process's environment without FOOTNOTE_* variables, with analytics off and Gradio's
    temporary files under ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTNOTE_")}
    env.update(GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(folder / "gradio-tmp"),
               PYTHONIOENCODING="utf-8", FOOTNOTE_ANSWER__BACKEND="extractive",
               FOOTNOTE_LOCAL__JUDGE="off")
    return env


def start_app(folder: Path, *extra: str, corpus_dir: Path | None = None, data_dir: Path | None = None,
              env: dict[str, str] | None = None) -> RunningApp:
    """Run `python app.py` over a corpus holding the seed document; return once it answers HTTP.

    ``env`` adds variables (FOOTNOTE_* ones included) to the cleaned environment.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if corpus_dir is None:
        corpus_dir = folder / "corpus"
        corpus_dir.mkdir(exist_ok=True)
        shutil.copy2(SEED, corpus_dir / SEED.name)
    data_dir = data_dir or folder / "data"
    port = free_port()
    log = folder / f"app-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir),
             "--corpus", str(corpus_dir), *extra],
            cwd=REPO, env={**app_env(folder), **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
        )
    app = RunningApp(f"http://127.0.0.1:{port}/", corpus_dir, data_dir, log, process)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{app.log_text()[-3000:]}")
        try:
            if httpx.get(app.url, timeout=2, trust_env=False).status_code == 200:
                return app
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_app(app)
            pytest.fail(f"app.py did not answer within {STARTUP_TIMEOUT:.0f} s:\n{app.log_text()[-3000:]}")
        time.sleep(0.3)


def stop_app(app: RunningApp) -> None:
    """Terminate the app (SIGTERM, then SIGKILL) and wait for it."""
    app.process.terminate()
    try:
        app.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        app.process.kill()
        app.process.wait()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """One `python app.py` for the session, over a tmp corpus holding the seed document; its URL
    box may fetch from 127.0.0.1 (the tests' page server) and no other private address."""
    app = start_app(tmp_path_factory.mktemp("app"), env={"FOOTNOTE_ALLOWED_URL_NETWORKS": '["127.0.0.1/32"]'})
    try:
        yield app
    finally:
        stop_app(app)


@pytest.fixture(scope="session")
def app_url(app_server: RunningApp) -> str:
    """URL of the session's app (ends with /)."""
    return app_server.url


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., RunningApp]]:
    """Start extra apps (``factory(*flags, corpus_dir=..., data_dir=..., env=...)``); all stopped at the end."""
    started: list[RunningApp] = []

    def factory(*extra: str, corpus_dir: Path | None = None, data_dir: Path | None = None,
                env: dict[str, str] | None = None, name: str = "app") -> RunningApp:
        app = start_app(tmp_path / name, *extra, corpus_dir=corpus_dir, data_dir=data_dir, env=env)
        started.append(app)
        return app

    try:
        yield factory
    finally:
        for app in started:
            stop_app(app)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (sync API), shared by the session."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
