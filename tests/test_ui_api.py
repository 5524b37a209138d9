"""The web app's API (`/ask` and the documents endpoints) through gradio_client, auth, and the
startup sync, against a real `python app.py`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError

from rag.config import Settings
from rag.errors import InputError
from rag.pipeline import check_question
from tests.helpers import REPO, SEED, make_docx
from tests.plugins.app import RunningApp, app_env

pytestmark = pytest.mark.slow

SEED_QUESTION = "Which book argues that moving labour out of agriculture caused the collapse?"
OFF_TOPIC = "Who won the 1958 FIFA World Cup?"
ENDPOINTS = {"/ask", "/collections", "/documents", "/add_file", "/add_url", "/remove"}
DNIEPER = "The Dnieper hydroelectric dam at Zaporozhye began producing power in 1932, built with American turbines."
DNIEPER_QUESTION = "When did the Dnieper hydroelectric dam at Zaporozhye begin producing power?"
SECRET = "The vault combination of the Okhrana archive is 7731 ZEBRA, kept in the cellar safe."
SECRET_QUESTION = "What is the vault combination of the Okhrana archive?"


def _client(url: str, **kwargs: object) -> Client:
    return Client(url, verbose=False, download_files=False, **kwargs)


def test_ask_endpoint_answers_seed_question_with_checked_citation(app_url: str) -> None:
    result = _client(app_url).predict(SEED_QUESTION, api_name="/ask")

    assert isinstance(result, dict)
    assert result["refused"] is False
    assert "Chinese Economic Development" in result["answer"]
    citation = result["citations"][0]
    assert citation["source"] == SEED.name
    assert citation["quote"].strip()
    assert citation["quote"] in citation["text"]
    assert citation["supported"] is True
    assert f"[{citation['marker']}]" in result["answer"]


def test_ask_endpoint_refuses_a_question_the_documents_do_not_cover(app_url: str) -> None:
    result = _client(app_url).predict(OFF_TOPIC, api_name="/ask")

    assert result["refused"] is True
    assert result["citations"] == []
    assert result["closest"], "a refusal lists the closest material"


def test_ask_endpoint_returns_the_json_of_the_cli(app_server: RunningApp, tmp_path: Path) -> None:
    api = _client(app_server.url).predict(SEED_QUESTION, api_name="/ask")
    cli = subprocess.run(
        [sys.executable, "-m", "rag", "ask", "--json", "--data-dir", str(app_server.data_dir),
         "--corpus", str(app_server.corpus_dir), SEED_QUESTION],
        cwd=REPO, env=app_env(tmp_path), capture_output=True, text=True, encoding="utf-8", timeout=180,
    )
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)

    assert set(api) == set(expected)
    api.pop("timings")
    expected.pop("timings")
    assert api == expected


def test_only_the_named_endpoints_are_exposed(app_url: str) -> None:
    endpoints = _client(app_url).view_api(print_info=False, return_format="dict")

    assert set(endpoints["named_endpoints"]) == ENDPOINTS
    assert endpoints["unnamed_endpoints"] == {}


def test_question_over_the_cap_is_refused_with_the_pipelines_message(app_url: str) -> None:
    too_long = "Why did the Great Leap Forward fail? " * 60
    with pytest.raises(InputError) as expected:
        check_question(too_long, settings=Settings())

    with pytest.raises(AppError) as caught:
        _client(app_url).predict(too_long, api_name="/ask")

    assert str(caught.value) == str(expected.value)
    assert f"{len(too_long.strip()):,} characters" in str(caught.value)


def _sources(listing: dict[str, Any]) -> list[str]:
    return [d["source"] for d in listing["documents"]]


def test_documents_endpoints_list_add_and_remove_a_file(app_factory: Callable[..., RunningApp],
                                                        tmp_path: Path) -> None:
    app = app_factory()
    client = _client(app.url)
    upload = tmp_path / "dnieper-dam.txt"
    upload.write_text(DNIEPER + "\n", encoding="utf-8")

    listing = client.predict(api_name="/documents")
    assert listing["failed"] == []
    [seed] = listing["documents"]
    assert seed["source"] == SEED.name and seed["chunks"] > 0 and seed["type"] and seed["added"]
    assert seed["title"]

    added = client.predict(handle_file(str(upload)), api_name="/add_file")
    assert added["added"] == ["dnieper-dam.txt"] and added["failed"] == []
    assert (app.corpus_dir / "dnieper-dam.txt").read_text(encoding="utf-8") == DNIEPER + "\n"
    assert sorted(_sources(client.predict(api_name="/documents"))) == ["dnieper-dam.txt", SEED.name]
    answer = client.predict(DNIEPER_QUESTION, api_name="/ask")
    assert answer["citations"][0]["source"] == "dnieper-dam.txt"

    removed = client.predict("dnieper-dam.txt", api_name="/remove")
    assert removed["removed"] == ["dnieper-dam.txt"]
    assert _sources(client.predict(api_name="/documents")) == [SEED.name]
    assert not (app.corpus_dir / "dnieper-dam.txt").exists()
    with pytest.raises(AppError, match="not in the index"):
        client.predict("dnieper-dam.txt", api_name="/remove")


def _raw_call(app: RunningApp, endpoint: str, data: list[Any]) -> str:
    """Call an endpoint over Gradio's plain HTTP API, as a script without gradio_client would;
    return the event stream's text."""
    posted = httpx.post(f"{app.url}gradio_api/call/{endpoint}", json={"data": data}, trust_env=False,
                        timeout=30)
    posted.raise_for_status()
    event = posted.json()["event_id"]
    return httpx.get(f"{app.url}gradio_api/call/{endpoint}/{event}", trust_env=False, timeout=120).text


def test_add_url_and_add_file_never_read_a_server_path(app_factory: Callable[..., RunningApp],
                                                       tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n", encoding="utf-8")
    app = app_factory()
    client = _client(app.url)

    for item in (str(secret), "/etc/hostname", f"file://{secret}", "../outside/secret.txt"):
        with pytest.raises(AppError) as caught:
            client.predict(item, api_name="/add_url")
        assert "only http(s) web addresses" in str(caught.value), item
    # A file parameter naming a server path instead of an upload is refused too.
    for forged in ({"path": str(secret)}, {"path": str(secret), "meta": {"_type": "gradio.FileData"}}):
        stream = _raw_call(app, "add_file", [forged])
        assert "event: error" in stream and "7731" not in stream, forged

    assert sorted(p.name for p in app.corpus_dir.rglob("*") if p.is_file()) == [SEED.name]
    assert _sources(client.predict(api_name="/documents")) == [SEED.name]
    answer = client.predict(SECRET_QUESTION, api_name="/ask")
    assert "7731" not in json.dumps(answer)


def _broken_docx(path: Path) -> Path:
    """A real .docx whose document XML is cut off mid-element."""
    whole = make_docx(path.with_name("whole.docx"), ["Minutes of the Gosplan meeting of March 1929."])
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data[: len(data) // 2] if item.filename == "word/document.xml" else data)
    whole.unlink()
    return path


def test_a_file_that_fails_is_refused_on_upload_and_listed_with_its_reason_from_the_folder(
        app_factory: Callable[..., RunningApp], tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy2(SEED, corpus / SEED.name)
    _broken_docx(corpus / "gosplan-minutes.docx")  # put in the folder by hand: found at startup
    app = app_factory(corpus_dir=corpus)
    client = _client(app.url)

    listing = client.predict(api_name="/documents")
    assert _sources(listing) == [SEED.name]
    # The console says what startup did before the page answered (a first run is a silent minute otherwise).
    assert "passages indexed; documents 1 added, 0 updated, 1 failed" in app.log_text()
    [failed] = listing["failed"]
    assert failed["source"] == "gosplan-minutes.docx"
    assert "gosplan-minutes.docx" in failed["reason"] and len(failed["reason"]) < 500

    assert client.predict("gosplan-minutes.docx", api_name="/remove")["removed"] == ["gosplan-minutes.docx"]
    assert client.predict(api_name="/documents")["failed"] == []
    assert not (corpus / "gosplan-minutes.docx").exists()

    # Uploaded, the same file is refused with its reason and does not linger.
    with pytest.raises(AppError, match="minutes.docx"):
        client.predict(handle_file(str(_broken_docx(tmp_path / "minutes.docx"))), api_name="/add_file")
    assert client.predict(api_name="/documents") == listing | {"failed": []}
    assert sorted(p.name for p in corpus.iterdir()) == [SEED.name]


def test_auth_protects_the_app_and_startup_sync_reembeds_nothing(
        app_factory: Callable[..., RunningApp]) -> None:
    first = app_factory()
    manifest = first.data_dir / "manifest.json"
    before = json.loads(manifest.read_text(encoding="utf-8"))["documents"]
    assert set(before) == {SEED.name}
    first.process.terminate()
    first.process.wait(timeout=20)

    app = app_factory("--auth", "reader:s3cret-pass", corpus_dir=first.corpus_dir,
                      data_dir=first.data_dir, name="again")

    after = json.loads(manifest.read_text(encoding="utf-8"))["documents"]
    assert after == before, "an unchanged corpus is not re-indexed at startup"
    assert httpx.get(app.url + "config", trust_env=False, timeout=10).status_code == 401
    assert httpx.get(app.url + "gradio_api/info", trust_env=False, timeout=10).status_code == 401
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        _client(app.url).predict(SEED_QUESTION, api_name="/ask")
    with pytest.raises(ValueError, match="Could not login"):
        _client(app.url, auth=("reader", "wrong")).predict(SEED_QUESTION, api_name="/ask")
    result = _client(app.url, auth=("reader", "s3cret-pass")).predict(SEED_QUESTION, api_name="/ask")
    assert result["citations"][0]["source"] == SEED.name

    # The documents endpoints sit behind the same login.
    for endpoint, data in (("documents", []), ("add_url", ["http://127.0.0.1:9/"]), ("remove", ["none.txt"])):
        refused = httpx.post(f"{app.url}gradio_api/call/{endpoint}", json={"data": data}, trust_env=False,
                             timeout=10)
        assert refused.status_code == 401, endpoint
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        _client(app.url).predict(api_name="/documents")
    reader = _client(app.url, auth=("reader", "s3cret-pass"))
    assert _sources(reader.predict(api_name="/documents")) == [SEED.name]
    assert (app.corpus_dir / SEED.name).exists()
