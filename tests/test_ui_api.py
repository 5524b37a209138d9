"""The web app's `ask` API through gradio_client, auth, and the startup sync, against a real `python app.py`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError

from tests.helpers import REPO, SEED
from tests.plugins.app import RunningApp, app_env

pytestmark = pytest.mark.slow

SEED_QUESTION = "Which book argues that moving labour out of agriculture caused the collapse?"
OFF_TOPIC = "Who won the 1958 FIFA World Cup?"


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


def test_only_the_ask_endpoint_is_exposed(app_url: str) -> None:
    endpoints = _client(app_url).view_api(print_info=False, return_format="dict")

    assert set(endpoints["named_endpoints"]) == {"/ask"}
    assert endpoints["unnamed_endpoints"] == {}


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
