"""Browser tests of what users of other document-chat apps expect: scanned PDFs read with OCR and
shown as the highlighted page, tables, collections, conversations that survive a restart, and export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.app import ANSWER_TIMEOUT, AppPage, RunningApp, screenshot, stop_app, table_rows
from tests.scans import make_scanned_pdf, make_table_docx

pytestmark = pytest.mark.slow

SCAN_LINES = [["Reading group notes, spring term.", "The Turksib railway linked Turkestan and",
               "Siberia and carried its first trains in May 1930."]]
SCAN_QUESTION = "When did the Turksib railway carry its first trains?"
TABLE_ROWS = [["Steel works", "Output in 1932"], ["Magnitogorsk", "1,200,000 tonnes"],
              ["Kuznetsk", "850,000 tonnes"], ["Zaporizhstal", "420,000 tonnes"]]
TABLE_QUESTION = "How many tonnes of steel did Kuznetsk produce in 1932?"
DAM_QUESTION = "When did the Dnieper dam start producing electricity?"
DAM_NOTES = {"Browser history": "The Dnieper hydroelectric dam at Zaporozhye began producing power in 1932.",
             "Browser fiction": "In the novel Cement Sky, the Dnieper hydroelectric dam began producing power "
                                "in 1929, a date the author invented."}


def open_history(app: AppPage) -> None:
    if not app.page.locator("#fn-history-choice").is_visible():
        app.page.click("#fn-history button, #fn-history .label-wrap")
    app.page.locator("#fn-history-choice").wait_for()


def test_scanned_pdf_is_read_with_ocr_and_cited(app: AppPage, tmp_path: Path) -> None:
    scan = make_scanned_pdf(tmp_path / "turksib-scan.pdf", SCAN_LINES)

    status = app.upload(scan)

    assert "Added: turksib-scan.pdf" in status
    rows = {row[1]: row for row in table_rows(app.page, "#fn-documents")}
    assert rows["turksib-scan.pdf"][2] == "pdf (OCR)"
    answer = app.ask(SCAN_QUESTION)
    assert "May 1930" in answer.inner_text()
    answer.locator("a.fn-cite").first.click()
    card = app.page.locator(".fn-source.fn-active")
    card.wait_for()
    assert "turksib-scan.pdf" in card.inner_text()
    assert "p.\u00a01" in card.locator(".fn-meta").inner_text()
    assert "May 1930" in card.locator("mark").inner_text()
    # The page itself, rendered on the server with the passage highlighted from OCR boxes.
    app.page.wait_for_function(
        "() => document.querySelector('#fn-page-note')?.innerText.includes('passage highlighted')",
        timeout=ANSWER_TIMEOUT)
    caption = app.page.inner_text("#fn-page-note")
    assert "page 1 of turksib-scan.pdf" in caption and "located with OCR" in caption
    image = app.page.locator("#fn-page-image img")
    image.wait_for()
    assert app.page.request.get(image.get_attribute("src")).ok
    assert image.evaluate("img => img.naturalWidth") > 500
    screenshot(app.page, "page-view.png")
    app.delete("turksib-scan.pdf")


def test_a_question_about_a_table_cell_cites_the_table(app: AppPage, tmp_path: Path) -> None:
    report = make_table_docx(tmp_path / "steel-output.docx", "Steel output of the new works, from the "
                             "commissariat's annual report.", TABLE_ROWS, "The report then turns to housing.")
    app.upload(report)

    answer = app.ask(TABLE_QUESTION)

    answer.locator("a.fn-cite").first.click()
    card = app.page.locator(".fn-source.fn-active")
    card.wait_for()
    assert "steel-output.docx" in card.inner_text()
    passage = card.locator(".fn-passage").inner_text()
    assert "| Steel works | Output in 1932 |" in passage
    assert "| Kuznetsk | 850,000 tonnes |" in passage
    # A Word file is shown as text: the passage in its surrounding text.
    app.page.wait_for_function(
        "() => document.querySelector('#fn-page-note')?.innerText.includes('surrounding text')",
        timeout=ANSWER_TIMEOUT)
    assert "| Kuznetsk | 850,000 tonnes |" in app.page.locator("#fn-page-note .fn-context mark").inner_text()
    app.delete("steel-output.docx")


def pick_option(app: AppPage, box: str, name: str) -> None:
    """Choose ``name`` in the dropdown ``box`` (its list opens on a click)."""
    app.page.click(f"{box} input")
    app.page.get_by_role("option", name=name, exact=True).click()
    app.page.keyboard.press("Escape")


def test_files_go_into_a_collection_and_the_chat_searches_only_the_chosen_one(app: AppPage, tmp_path: Path) -> None:
    app.documents_tab()
    for collection, text in DAM_NOTES.items():
        note = tmp_path / collection / "dam-notes.txt"
        note.parent.mkdir()
        note.write_text(text + "\n", encoding="utf-8")
        app.page.fill("#fn-target-collection input", collection)
        app.page.keyboard.press("Enter")
        assert f"Added: {collection}/dam-notes.txt" in app.upload(note)
    rows = {row[1]: row for row in table_rows(app.page, "#fn-documents")}
    assert rows["Browser fiction/dam-notes.txt"][-1] == "Browser fiction"

    app.page.get_by_role("tab", name="Chat").click()
    pick_option(app, "#fn-collections", "Browser fiction")
    answer = app.ask(DAM_QUESTION)

    assert "1929" in answer.inner_text() and "1932" not in answer.inner_text()
    sources = app.current_sources().inner_text()
    assert "Browser fiction/dam-notes.txt" in sources and "Browser history" not in sources
    screenshot(app.page, "collections.png")
    for collection in DAM_NOTES:
        app.delete(f"{collection}/dam-notes.txt")


def test_answer_and_conversation_export_as_markdown_and_csl_json(app: AppPage) -> None:
    app.ask("Which book argues that moving labour out of agriculture caused the collapse?")
    app.ask("Why did Mao oppose the Soviet model?")
    open_history(app)

    app.page.click("#fn-export-md")
    markdown = download(app, ".md")
    app.page.get_by_role("radio", name="Last answer").check()
    app.page.click("#fn-export-csl")
    items = json.loads(download(app, ".json"))

    assert markdown.startswith("# Footnote conversation")
    assert "## Which book argues" in markdown and "## Why did Mao oppose" in markdown
    assert "[^1]" in markdown and "\n[^1]: " in markdown
    assert "## Bibliography" in markdown and "Accessed " in markdown
    assert items and all(item["title"] and item["accessed"]["date-parts"] for item in items)
    assert all(item["source"] == "stalin-industrialisation-vs-great-leap-forward.txt" for item in items)


def download(app: AppPage, suffix: str) -> str:
    """The text of the file the export box offers once it ends with ``suffix``."""
    app.page.wait_for_function(
        "s => [...document.querySelectorAll('#fn-export-file a[href]')].some(a => a.href.split('?')[0].endsWith(s))",
        arg=suffix, timeout=ANSWER_TIMEOUT)
    href = app.page.eval_on_selector_all(
        "#fn-export-file a[href]", "(els, s) => els.map(a => a.href).filter(h => h.split('?')[0].endsWith(s))[0]",
        suffix)
    response = app.page.request.get(href)
    assert response.ok
    return str(response.text())


def test_a_conversation_survives_a_restart_and_can_be_continued_and_deleted(
        browser: Any, app_factory: Any) -> None:
    first = app_factory(name="before")
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        page = AppPage(context.new_page())
        page.page.goto(first.url, wait_until="load")
        page.page.wait_for_selector("#fn-question textarea")
        page.ask("Which book argues that moving labour out of agriculture caused the collapse?")
        open_history(page)
        page.page.wait_for_function(
            "() => document.querySelector('#fn-history-choice input').value.startsWith('Which book argues')")
    finally:
        context.close()
    stop_app(first)

    again: RunningApp = app_factory(corpus_dir=first.corpus_dir, data_dir=first.data_dir, name="after")
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        page = AppPage(context.new_page())
        page.page.goto(again.url, wait_until="load")
        page.page.wait_for_selector("#fn-question textarea")
        open_history(page)
        page.page.click("#fn-history-choice input")
        page.page.get_by_role("option").filter(has_text="Which book argues").click()
        page.page.click("#fn-history-open")
        restored = page.wait_for_answer()
        assert "Chinese Economic Development" in restored.inner_text()
        assert page.page.locator("#fn-chat [data-testid=user]").count() == 1

        follow_up = page.ask("Who wrote it?")
        assert "Chris Bramall" in follow_up.inner_text(), "the reopened conversation is the follow-up's context"
        # The turn is saved by an event chained after the answer is shown: wait for it to land.
        expected = ["Which book argues that moving labour out of agriculture caused the collapse?", "Who wrote it?"]
        questions: list[str] = []
        for _ in range(120):
            saved = list((again.data_dir / "conversations").glob("*.json"))
            assert len(saved) == 1
            questions = [t["question"] for t in json.loads(saved[0].read_text(encoding="utf-8"))["turns"]]
            if questions == expected:
                break
            page.page.wait_for_timeout(250)
        assert questions == expected

        page.page.once("dialog", lambda dialog: dialog.accept())
        page.page.click("#fn-history-delete")
        page.page.wait_for_function(
            "() => !document.querySelector('#fn-history-choice input').value")
        assert not list((again.data_dir / "conversations").glob("*.json"))
    finally:
        context.close()
