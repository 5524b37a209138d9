"""The web app in a real headless Chromium: citations, documents, inert markup, follow-ups, settings, evaluation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.helpers import SEED, make_pdf
from tests.plugins.app import ANSWER_TIMEOUT, AppPage, RunningApp, screenshot, table_rows

pytestmark = pytest.mark.slow

SEED_QUESTION = "Which book argues that moving labour out of agriculture caused the collapse?"
OFF_TOPIC = "Who won the 1958 FIFA World Cup?"
PDF_FACT = "The Zhdanov tractor plant in Kharkov opened in 1931 and produced 50,000 tractors by 1934."
PDF_QUESTION = "How many tractors had the Zhdanov tractor plant in Kharkov produced by 1934?"
SCRIPT_PAYLOAD = "<script>window.__pwned=1</script>"
IMG_PAYLOAD = '<img src=x onerror="window.__pwned=2">'
TITLE_PAYLOAD = "<img src=y onerror=window.__pwned=3>"
QUESTION_PAYLOAD = '<img src=q onerror="window.__pwned=4"><script>window.__pwned=5</script>'


def test_clicking_a_citation_shows_its_passage_and_feedback_is_saved(
        app: AppPage, app_server: RunningApp) -> None:
    answer = app.ask(SEED_QUESTION)
    assert "Chinese Economic Development" in answer.inner_text()
    refusal = app.ask(OFF_TOPIC)
    assert refusal.locator(".fn-refusal").is_visible()
    assert "not in the documents" in refusal.inner_text().lower()
    assert "Closest material" in app.current_sources().inner_text()
    first_card = app.page.locator("#fn-src-0-1")
    assert not first_card.is_visible(), "the panel shows the latest answer's sources"

    link = answer.locator("a.fn-cite").first
    link.click()

    card = app.page.locator(".fn-source.fn-active")
    card.wait_for()
    assert card.get_attribute("id") == link.get_attribute("href").lstrip("#")
    assert card.is_visible()
    assert SEED.name in card.inner_text()
    assert "Chris Bramall argues the diversion of labour" in card.locator("mark").inner_text()

    answer.hover()
    app.page.locator("#fn-chat").get_by_role("button", name="Like", exact=True).first.click()
    feedback = app_server.data_dir / "feedback.jsonl"
    deadline = time.monotonic() + 15
    while not (feedback.exists() and SEED_QUESTION in feedback.read_text(encoding="utf-8")):
        assert time.monotonic() < deadline, "no feedback line was written"
        time.sleep(0.2)
    record = [json.loads(line) for line in feedback.read_text(encoding="utf-8").splitlines()][-1]
    assert record["rating"] == "up"
    assert record["question"] == SEED_QUESTION
    assert "Chinese Economic Development" in record["answer"]
    assert record["sources"][0]["source"] == SEED.name
    assert record["sources"][0]["quote"]
    app.page.mouse.move(0, 0)
    screenshot(app.page, "chat.png")


def test_uploaded_pdf_is_cited_then_no_longer_after_delete(app: AppPage, app_server: RunningApp,
                                                           tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "kharkov-tractors.pdf",
                   ["Notes on Soviet tractor building, gathered for a reading group.",
                    PDF_FACT + " Its tractors went to the new collective farms of Ukraine."],
                   title="Kharkov tractor plant", author="R. Davies")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is not really a PDF\n")

    status = app.upload(pdf, broken)

    assert "Added: kharkov-tractors.pdf" in status
    assert "broken.pdf" in app.page.inner_text("#fn-doc-status .fn-status-error")
    assert "kharkov-tractors.pdf" in app.document_files()
    assert "broken.pdf" not in app.document_files()
    assert not (app_server.corpus_dir / "broken.pdf").exists(), "a failed upload does not linger"
    assert SEED.name in app.document_files(), "other documents are unaffected"
    screenshot(app.page, "documents.png")

    answer = app.ask(PDF_QUESTION)
    answer.locator("a.fn-cite").first.click()
    card = app.page.locator(".fn-source.fn-active")
    card.wait_for()
    assert "kharkov-tractors.pdf" in card.inner_text()
    assert "Kharkov tractor plant" in card.locator(".fn-title").inner_text()
    assert "p.\u00a02" in card.locator(".fn-meta").inner_text()
    assert "R. Davies" in card.locator(".fn-meta").inner_text()
    assert "50,000 tractors" in card.locator("mark").inner_text()

    status = app.delete("kharkov-tractors.pdf")
    assert "Removed: kharkov-tractors.pdf" in status
    assert "kharkov-tractors.pdf" not in app.document_files()
    assert not (app_server.corpus_dir / "kharkov-tractors.pdf").exists()

    app.ask(PDF_QUESTION)
    assert "kharkov-tractors.pdf" not in app.current_sources().inner_text()
    assert "50,000" not in app.page.locator("#fn-chat [data-testid=bot]").last.inner_text()


def test_markup_in_a_document_or_a_question_is_shown_as_inert_text(app: AppPage, tmp_path: Path) -> None:
    evil = tmp_path / "magnitka-notes.md"
    evil.write_text(
        f"# Kombinat {TITLE_PAYLOAD} notes\n\n"
        f"The Magnitogorsk steel works poured its first iron in 1932 {SCRIPT_PAYLOAD} and the chief "
        f"engineer wrote {IMG_PAYLOAD} in his diary about the blast furnace.\n",
        encoding="utf-8")

    app.upload(evil)
    titles = [row[0] for row in table_rows(app.page, "#fn-documents")]
    answer = app.ask("When did the Magnitogorsk steel works pour its first iron?")
    answer.locator("a.fn-cite").first.click()
    app.page.locator(".fn-source.fn-active").wait_for()

    assert f"Kombinat {TITLE_PAYLOAD} notes" in titles
    assert SCRIPT_PAYLOAD in answer.inner_text()
    assert IMG_PAYLOAD in answer.inner_text()
    sources = app.current_sources().inner_text()
    assert SCRIPT_PAYLOAD in sources and IMG_PAYLOAD in sources and TITLE_PAYLOAD in sources
    assert app.page.evaluate("typeof window.__pwned") == "undefined"
    assert app.page.locator("#fn-chat script, #fn-sources-panel script").count() == 0
    assert app.page.locator("img[src='x'], img[src='y']").count() == 0

    # Markup in a question is shown as typed, in the chat and above its sources.
    asked = f"What did the chief engineer write about the blast furnace? {QUESTION_PAYLOAD}"
    app.ask(asked)
    assert QUESTION_PAYLOAD in app.page.locator("#fn-chat [data-testid=user]").last.inner_text()
    assert QUESTION_PAYLOAD in app.current_sources().locator(".fn-turn-question").inner_text()
    assert app.page.locator("img[src='q']").count() == 0
    assert app.page.locator("#fn-chat script, #fn-sources-panel script").count() == 0
    assert app.page.evaluate("typeof window.__pwned") == "undefined"
    app.delete("magnitka-notes.md")
    assert app.page.evaluate("typeof window.__pwned") == "undefined"


def test_a_web_page_added_by_url_is_cited_with_its_address(app: AppPage, http_server: Any) -> None:
    url = http_server.url + "/page.html"
    app.documents_tab()
    app.page.fill("#fn-url input, #fn-url textarea", url)
    app.page.click("#fn-fetch")
    app.page.wait_for_function(
        "() => (document.querySelector('#fn-doc-status') || {}).innerText?.includes('Fetched and added')",
        timeout=ANSWER_TIMEOUT)
    added = [row for row in table_rows(app.page, "#fn-documents") if row[0] == "The Stakhanovite movement"]
    assert len(added) == 1 and added[0][1].startswith("web/")
    assert "/page.html" in http_server.requests

    answer = app.ask("How many tonnes of coal did Alexei Stakhanov cut in a single shift?")
    answer.locator("a.fn-cite").first.click()
    card = app.page.locator(".fn-source.fn-active")
    card.wait_for()
    assert "102 tonnes" in card.locator("mark").inner_text()
    assert card.locator("a.fn-url").get_attribute("href") == url
    app.delete(added[0][1])


def test_follow_up_uses_the_conversation_and_new_conversation_forgets_it(app: AppPage) -> None:
    first = app.ask_example(SEED_QUESTION)
    assert "Chinese Economic Development" in first.inner_text()
    follow_up = app.ask("Who wrote it?")
    assert follow_up.locator("a.fn-cite").count() >= 1
    assert "Chris Bramall" in follow_up.inner_text()

    app.new_conversation()
    assert app.page.locator("#fn-chat [data-testid=bot]").count() == 0
    alone = app.ask("Who wrote it?")
    assert alone.locator(".fn-refusal").count() == 1


def test_answer_settings_apply_to_the_next_answer(app: AppPage) -> None:
    app.page.click("#fn-settings button, #fn-settings .label-wrap")
    # Move the slider to its minimum as a keyboard user does (the browser fires input and change
    # events itself), once the accordion has opened; its number box follows.
    slider = app.page.locator("#fn-k input[type=range]")
    expect(slider).to_be_visible()
    slider.focus()
    slider.press("Home")
    expect(slider).to_have_value("1")
    expect(app.page.locator("#fn-k input[type=number]")).to_have_value("1")
    answer = app.ask("Why did Mao oppose the Soviet model?")
    assert answer.locator("a.fn-cite").count() >= 1
    assert app.current_sources().locator(".fn-source").count() == 1

    app.page.get_by_role("radio", name="openai").check()
    app.page.fill("#fn-model textarea, #fn-model input", "any-model")
    app.page.fill("#fn-base-url textarea, #fn-base-url input", "http://127.0.0.1:9/v1")
    failed = app.ask("Why did Mao oppose the Soviet model?")
    assert failed.locator(".fn-error").count() == 1

    app.page.get_by_role("radio", name="extractive").check()
    again = app.ask("Why did Mao oppose the Soviet model?")
    assert again.locator("a.fn-cite").count() >= 1


def test_evaluate_tab_runs_an_uploaded_dataset(app: AppPage, tmp_path: Path) -> None:
    dataset = tmp_path / "three.jsonl"
    rows = [
        {"id": "book", "question": SEED_QUESTION, "answers": ["Chinese Economic Development"],
         "reference_contexts": ["In Chinese Economic Development, Chris Bramall argues the diversion "
                                "of labour from agriculture to industry led to a collapse of productivity "
                                "due to labour shortages."]},
        {"id": "cadres", "question": "What role did overreporting by local cadres play?",
         "answers": ["overreporting"]},
        {"id": "football", "question": OFF_TOPIC, "answerable": False},
    ]
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    page = app.page
    page.get_by_role("tab", name="Evaluate").click()
    page.set_input_files("#fn-eval-upload input[type=file]", [str(dataset)])
    page.wait_for_function("() => document.querySelector('#fn-eval-dataset input').value.startsWith('Upload')")

    page.click("#fn-eval-run")

    page.wait_for_selector("#fn-eval-note p", timeout=ANSWER_TIMEOUT)
    assert "3 questions from three.jsonl" in page.inner_text("#fn-eval-note")
    metrics = {row[0]: row[1] for row in table_rows(page, "#fn-eval-table")}
    assert metrics["hit@5"] == "1.000"
    assert metrics["refusal_accuracy"] == "1.000"
    page.locator("#fn-eval-chart img").wait_for()
    links = page.eval_on_selector_all("#fn-eval-report a[href]", "els => els.map(a => a.href)")
    markdown = [href for href in links if href.split("?")[0].endswith("report.md")]
    assert markdown and any(href.split("?")[0].endswith("report.json") for href in links)
    downloaded = page.request.get(markdown[0])
    assert downloaded.ok
    assert downloaded.text().startswith("# Evaluation")
    screenshot(page, "evaluate.png")


def test_upload_over_the_size_limit_is_refused(browser: Any, app_factory: Any, tmp_path: Path) -> None:
    limited = app_factory(env={"FOOTNOTE_UI__MAX_UPLOAD_MB": "0.05"}, name="limited")
    big = tmp_path / "dnieper-dam.txt"
    big.write_text("The Dnieper dam was finished in 1932. " * 4000, encoding="utf-8")
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        page = AppPage(context.new_page())
        page.page.goto(limited.url, wait_until="load")
        page.documents_tab()
        assert "up to 0.05 MB" in page.page.inner_text("#fn-upload")

        page.page.set_input_files("#fn-upload input[type=file]", [str(big)])

        toast = page.page.get_by_text("exceed the maximum allowed size")
        toast.wait_for()
        assert "dnieper-dam.txt" in toast.inner_text()
        assert sorted(p.name for p in limited.corpus_dir.iterdir()) == [SEED.name]
        assert [row[1] for row in table_rows(page.page, "#fn-documents")] == [SEED.name]
    finally:
        context.close()
