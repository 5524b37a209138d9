"""Collections: one folder of the corpus per collection; adding into one, and asking, listing and
evaluating within some, through the CLI, the library and the app's API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from rag import pipeline
from rag.cli import main
from rag.config import Settings
from rag.corpus import check_collection, collection_of
from rag.errors import InputError
from tests.plugins.app import RunningApp
from tests.plugins.core import LoopbackServer

DAM_QUESTION = "When did the Dnieper dam start producing electricity?"
HISTORY = "The Dnieper hydroelectric dam at Zaporozhye began producing power in 1932, built with American turbines."
NOVEL = ("In the novel Cement Sky, the Dnieper hydroelectric dam began producing power in 1929, a date the author "
         "invented for the story.")
RAILWAY = "The Turksib railway linking Turkestan and Siberia was completed in May 1930 after three years of work."


def _corpus(settings: Settings) -> Settings:
    """A corpus with the history note in `soviet`, the novel's in `fiction` and the railway note in main."""
    for folder, name, text in (("soviet", "dam.txt", HISTORY), ("fiction", "cement-sky.txt", NOVEL),
                               ("", "turksib.txt", RAILWAY)):
        (settings.corpus_dir / folder).mkdir(parents=True, exist_ok=True)
        (settings.corpus_dir / folder / name).write_text(text + "\n", encoding="utf-8")
    pipeline.ingest(settings)
    return settings


def _cli(capsys: pytest.CaptureFixture[str], settings: Settings, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--data-dir", str(settings.data_dir), "--corpus", str(settings.corpus_dir)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("source", "collection"), [
    ("notes.txt", "main"), ("web/example-com-page.md", "main"), ("papers/a.pdf", "papers"),
    ("papers/web/b.md", "papers"), ("Baltic trade/deep/c.txt", "Baltic trade"), ("main/d.txt", "main"),
])
def test_a_documents_collection_is_the_top_folder_it_sits_in(source: str, collection: str) -> None:
    assert collection_of(source) == collection


@pytest.mark.parametrize("name", ["", "  ", "web", "../up", "a/b", "a\\b", ".hidden", "x" * 65, "what?", "tab\there"])
def test_a_name_that_cannot_be_a_folder_is_refused(name: str) -> None:
    with pytest.raises(InputError):
        check_collection(name)


def test_add_puts_files_in_the_collection_folder_and_list_shows_it(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "dam.txt"
    note.write_text(HISTORY + "\n", encoding="utf-8")

    code, _, err = _cli(capsys, settings, "ingest", "add", str(note), "--collection", "Soviet history", "-q")
    assert code == 0, err
    assert (settings.corpus_dir / "Soviet history" / "dam.txt").read_text(encoding="utf-8").startswith("The Dnieper")

    code, out, _ = _cli(capsys, settings, "ingest", "list", "--json")
    assert [(d["source"], d["collection"]) for d in json.loads(out)] == [("Soviet history/dam.txt", "Soviet history")]
    code, out, _ = _cli(capsys, settings, "ingest", "list", "--json", "--collection", "main")
    assert json.loads(out) == []


@pytest.mark.parametrize("name", ["../escape", "web", ".hidden"])
def test_add_with_an_unusable_name_copies_nothing(
        name: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "dam.txt"
    note.write_text(HISTORY + "\n", encoding="utf-8")

    code, _, err = _cli(capsys, settings, "ingest", "add", str(note), "--collection", name)

    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert list(settings.corpus_dir.rglob("*")) == []
    assert not (settings.corpus_dir.parent / "escape").exists()


def test_ask_searches_only_the_named_collections(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    _corpus(settings)
    cited: dict[str, set[str]] = {}
    for name in ("soviet", "fiction"):
        code, out, err = _cli(capsys, settings, "ask", DAM_QUESTION, "--collection", name, "--json")
        assert code == 0, err
        answer = json.loads(out)
        assert not answer["refused"]
        cited[name] = {c["source"] for c in answer["citations"]}
    assert cited == {"soviet": {"soviet/dam.txt"}, "fiction": {"fiction/cement-sky.txt"}}
    assert "1932" in pipeline.ask(DAM_QUESTION, settings=settings, collections=["soviet"]).text


def test_a_question_outside_the_chosen_collections_is_refused(settings: Settings) -> None:
    _corpus(settings)

    answer = pipeline.ask("When was the Turksib railway completed?", settings=settings, collections=["fiction"])

    assert answer.refused and not answer.citations
    assert {p.source for p in answer.closest} <= {"fiction/cement-sky.txt"}
    assert "May 1930" in pipeline.ask("When was the Turksib railway completed?", settings=settings,
                                      collections=["main", "fiction"]).text


def test_an_unknown_collection_is_one_error_line_naming_the_known_ones(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    _corpus(settings)

    code, out, err = _cli(capsys, settings, "ask", DAM_QUESTION, "--collection", "letters")

    assert code == 1 and out == ""
    assert err == ("error: No indexed documents in the collection letters. "
                   "Collections: fiction, main, soviet.\n")


def test_collections_count_their_documents_and_follow_folders_made_by_hand(settings: Settings) -> None:
    _corpus(settings)
    assert pipeline.collections(settings) == {"fiction": 1, "main": 1, "soviet": 1}

    (settings.corpus_dir / "letters").mkdir()
    (settings.corpus_dir / "letters" / "to-gorky.txt").write_text("A letter to Gorky about the dam.\n", encoding="utf-8")
    (settings.corpus_dir / "fiction" / "cement-sky.txt").unlink()
    pipeline.ingest(settings)

    assert pipeline.collections(settings) == {"letters": 1, "main": 1, "soviet": 1}


def test_removing_a_collections_last_document_removes_its_empty_folder(settings: Settings) -> None:
    _corpus(settings)
    (settings.corpus_dir / "soviet" / "drafts").mkdir()  # a folder the user made stays while it is theirs
    (settings.corpus_dir / "fiction" / "deep").mkdir()
    (settings.corpus_dir / "fiction" / "deep" / "more.txt").write_text(NOVEL + "\n", encoding="utf-8")
    pipeline.ingest(settings)

    pipeline.remove(["soviet/dam.txt", "fiction/deep/more.txt", "fiction/cement-sky.txt"], settings=settings)

    assert not (settings.corpus_dir / "fiction").exists()
    assert (settings.corpus_dir / "soviet" / "drafts").is_dir()
    assert (settings.corpus_dir / "turksib.txt").is_file()
    assert pipeline.collections(settings) == {"main": 1}


def test_a_web_page_added_to_a_collection_stays_in_it(
        settings: Settings, http_server: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, settings, "ingest", "add", http_server.url + "/page.html",
                        "--collection", "press", "--allow-private-urls", "-q")
    assert code == 0, err

    [entry] = pipeline.documents(settings)
    assert entry.source.startswith("press/web/") and collection_of(entry.source) == "press"


def test_eval_runs_against_one_collection(settings: Settings, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _corpus(settings)
    dataset = tmp_path / "dam.jsonl"
    dataset.write_text(json.dumps({"id": "dam", "question": DAM_QUESTION, "answers": ["1929"],
                                   "answerable": True}) + "\n", encoding="utf-8")
    out = tmp_path / "report"

    code, stdout, err = _cli(capsys, settings, "eval", str(dataset), "--collection", "fiction", "--out", str(out),
                             "--json")

    assert code == 0, err
    assert json.loads(stdout)["answer_contains"] == 1.0
    [run] = json.loads((out / "report.json").read_text(encoding="utf-8"))["runs"]
    assert run["settings"]["collections"] == ["fiction"]
    retrieved = {p["source"] for record in run["questions"] for p in record["retrieved"]}
    assert retrieved == {"fiction/cement-sky.txt"}


@pytest.mark.slow
def test_the_api_lists_adds_to_and_asks_within_collections(app_factory, tmp_path: Path) -> None:
    app: RunningApp = app_factory()
    client = Client(app.url, verbose=False, download_files=False)
    for folder, text in (("soviet", HISTORY), ("fiction", NOVEL)):
        note = tmp_path / folder / "dam.txt"
        note.parent.mkdir()
        note.write_text(text + "\n", encoding="utf-8")
        result = client.predict(handle_file(str(note)), folder, api_name="/add_file")
        assert result["added"] == [f"{folder}/dam.txt"]

    assert client.predict(api_name="/collections") == {"fiction": 1, "main": 1, "soviet": 1}
    answer = client.predict(DAM_QUESTION, ["fiction"], api_name="/ask")
    assert {c["source"] for c in answer["citations"]} == {"fiction/dam.txt"}
    answer = client.predict(DAM_QUESTION, ["soviet"], api_name="/ask")
    assert {c["source"] for c in answer["citations"]} == {"soviet/dam.txt"}
    with pytest.raises(AppError, match="No indexed documents in the collection letters"):
        client.predict(DAM_QUESTION, ["letters"], api_name="/ask")
