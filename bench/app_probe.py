"""The web app as a user meets it: start-up time with the index in place, answers over HTTP, memory."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from measure import PYTHON, REPO, free_port, percentile, stop, tree_rss_mb, wait_http


def ask_over_http(url: str, question: str, *, timeout: float = 300) -> dict[str, Any]:
    """One question through the app's `/ask` endpoint (Gradio's two-step REST call), searching
    every collection (Gradio's REST API wants every argument, the empty list included)."""
    with httpx.Client(base_url=url, timeout=timeout, trust_env=False) as client:
        posted = client.post("/gradio_api/call/ask", json={"data": [question, []]})
        posted.raise_for_status()
        event = posted.json()["event_id"]
        kind, data = "", ""
        with client.stream("GET", f"/gradio_api/call/ask/{event}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = line.split(":", 1)[1].strip()
                    if kind in {"complete", "error"}:
                        break
    if kind != "complete":
        raise RuntimeError(f"/ask ended with {kind or 'nothing'}: {data[:300]}")
    got = json.loads(data)
    return got[0] if isinstance(got, list) and got else {}


def measure_app(env: dict[str, str], questions: list[str], log: Path, *, timeout: float = 900) -> dict[str, Any]:
    """Start `python app.py` on a free loopback port; seconds until it answers HTTP, RSS after
    start and after answering ``questions`` through `/ask`, and their latencies."""
    port = free_port()
    with log.open("w") as sink:
        started = time.perf_counter()
        process = subprocess.Popen([PYTHON, "app.py", "--host", "127.0.0.1", "--port", str(port)],
                                   stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/", process, timeout=timeout, log=log)
        start_s = time.perf_counter() - started
        rss_start, _ = tree_rss_mb(process.pid)
        http_ms: list[float] = []
        error = ""
        for question in questions:
            mark = time.perf_counter()
            try:
                ask_over_http(url, question)
            except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as exc:
                error = str(exc)[:300]
                break
            http_ms.append((time.perf_counter() - mark) * 1000)
        rss_now, rss_peak = tree_rss_mb(process.pid)
    finally:
        stop(process)
    with contextlib.suppress(OSError):
        log.unlink()
    return {"app_start_s": start_s, "app_rss_start_mb": rss_start, "app_rss_mb": rss_now,
            "app_peak_mb": rss_peak, "app_answer_p50_ms": percentile(http_ms, 0.5),
            "app_answers": len(http_ms), "app_error": error}
