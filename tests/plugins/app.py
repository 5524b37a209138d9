"""Fixtures: app_server (the real `python app.py` on a free loopback port), a headless Chromium, and
`app`: a browser tab on the app with the few actions a user takes (``AppPage``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.helpers import REPO, SEED, clean_env, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
STARTUP_TIMEOUT = 180.0
ANSWER_TIMEOUT = 90_000  # ms, for Playwright waits
# Git-ignored: a test run must not rewrite the README's pictures.
SCREENSHOTS = REPO / "tests" / "artifacts" / "screenshots"


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
    """This process's environment without FOOTNOTE_* variables (but the models folder), with
    analytics off and Gradio's temporary files under ``folder``."""
    env = clean_env()
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


class AppPage:
    """One browser tab on the app, with the few actions a user takes."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.turns = 0

    # -- chat ------------------------------------------------------------------
    def ask(self, question: str) -> Any:
        """Type a question, send it, and wait for the finished answer; return its bubble."""
        self.page.get_by_role("tab", name="Chat").click()
        self.page.fill("#fn-question textarea", question)
        self.page.click("#fn-ask")
        return self.wait_for_answer()

    def ask_example(self, question: str) -> Any:
        """Click one of the example questions shown in an empty chat; return the answer's bubble."""
        self.page.locator("#fn-chat").get_by_role("button", name=question).click()
        return self.wait_for_answer()

    def wait_for_answer(self) -> Any:
        """Wait for the next turn's finished answer; return its bubble."""
        turn = self.turns
        self.turns += 1
        bubbles = self.page.locator("#fn-chat [data-testid=bot]")
        # A finished turn is a final answer, a refusal or an error (never the streaming view).
        self.page.wait_for_function(
            """n => { const b = document.querySelectorAll('#fn-chat [data-testid=bot]');
                      if (b.length <= n) return false;
                      const last = b[n];
                      return !!last.querySelector('.fn-answer:not(.fn-streaming), .fn-refusal'); }""",
            arg=turn, timeout=ANSWER_TIMEOUT)
        return bubbles.nth(turn)

    def current_sources(self) -> Any:
        """The section of the sources panel on show."""
        return self.page.locator("#fn-sources-panel .fn-turn.fn-current")

    def new_conversation(self) -> None:
        self.page.click("#fn-clear")
        self.page.wait_for_selector("#fn-sources-panel .fn-empty")
        self.turns = 0

    # -- documents -------------------------------------------------------------
    def documents_tab(self) -> None:
        self.page.get_by_role("tab", name="Documents").click()
        self.page.wait_for_selector("#fn-upload input[type=file]", state="attached")
        self.page.wait_for_selector("#fn-doc-summary p")  # the documents list has loaded

    def upload(self, *paths: Path) -> str:
        """Upload files through the Documents tab; return the status text shown afterwards."""
        self.documents_tab()
        old = self.page.inner_text("#fn-doc-status")
        self.page.set_input_files("#fn-upload input[type=file]", [str(p) for p in paths])
        self.page.wait_for_function(
            "old => { const s = document.querySelector('#fn-doc-status');"
            " return s && s.querySelector('li') && s.innerText !== old; }", arg=old, timeout=ANSWER_TIMEOUT)
        return self.page.inner_text("#fn-doc-status")

    def document_files(self) -> list[str]:
        """The File column of the documents table."""
        return [row[1] for row in table_rows(self.page, "#fn-documents")]

    def delete(self, source: str) -> str:
        """Pick a document, press Delete and accept the confirmation; return the status text."""
        self.documents_tab()
        self.page.click("#fn-delete-choice input")
        self.page.get_by_role("option", name=source, exact=True).click()
        self.page.once("dialog", lambda dialog: dialog.accept())
        self.page.click("#fn-delete")
        self.page.wait_for_function(
            "name => (document.querySelector('#fn-doc-status') || {}).innerText?.includes('Removed: ' + name)",
            arg=source, timeout=ANSWER_TIMEOUT)
        return self.page.inner_text("#fn-doc-status")


def table_rows(page: Any, selector: str) -> list[list[str]]:
    """The cells shown by a gr.Dataframe (Gradio 6 draws rows as divs in a virtual table)."""
    return page.eval_on_selector(
        selector,
        """el => [...el.querySelectorAll('.virtual-body .virtual-row')].map(
               row => [...row.querySelectorAll('.body-cell')].map(cell => cell.innerText.trim()))""")


@pytest.fixture
def app(browser: Any, app_server: RunningApp) -> Iterator[AppPage]:
    """A fresh browser context on the session's app; fails if the page reached beyond loopback or
    raised a JavaScript error."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    outside: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).hostname not in {"127.0.0.1", "localhost", None, ""} else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_server.url, wait_until="load")
    page.wait_for_selector("#fn-question textarea")
    try:
        yield AppPage(page)
    finally:
        context.close()
    assert outside == [], f"the page requested non-loopback URLs: {outside}"
    assert errors == [], f"JavaScript errors: {errors}"


def screenshot(page: Any, name: str) -> None:
    """Save a picture of ``page`` under tests/artifacts/screenshots (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)  # Gradio fades updated components in
    page.screenshot(path=str(SCREENSHOTS / name))
