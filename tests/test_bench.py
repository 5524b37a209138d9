"""The scale bench (bench/run.py) runs end to end at a tiny size; shapes only, never timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_env

REPO = Path(__file__).resolve().parent.parent
KEYS = {"chunks", "store", "ingest_chunks_per_s", "recipe_chunks_per_s", "ingest_ratio", "reingest_s",
        "remove_doc_s", "list_s", "retrieval_p50_ms", "retrieval_p95_ms", "answer_p50_ms", "app_start_s",
        "app_rss_mb", "ingest_peak_mb"}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_bench_prints_one_row_per_size_and_store_and_writes_its_report_where_told(tmp_path: Path) -> None:
    docs = REPO / "docs" / "benchmarks.md"
    before = docs.stat().st_mtime_ns if docs.exists() else None
    env = clean_env()
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--chunks", "120", "--stores", "local", "--json",
         "--docs", str(tmp_path / "docs"), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
         "--questions", "2", "--answers", "1", "--app-questions", "1"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=1700, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    rows = json.loads(done.stdout.strip().splitlines()[-1])["rows"]
    assert [(r["chunks"], r["store"]) for r in rows] == [(120, "local")]
    row = rows[0]
    assert KEYS <= set(row)
    assert all(isinstance(row[k], (int, float)) and row[k] >= 0 for k in KEYS - {"store"})
    assert row["reingest_embedded"] == 0
    assert row["answer_backend"] == "extractive"
    assert row["embeddings_cached"] is False
    assert row["app_answers"] == 1 and not row["app_error"], row["app_error"]  # memory after a real answer

    report = (tmp_path / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert "## 120 chunks" in report and "## Targets of issue 12" in report
    assert (tmp_path / "docs" / "bench-scale.png").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "rows.json").read_text(encoding="utf-8"))[0]["chunks"] == 120
    assert (docs.stat().st_mtime_ns if docs.exists() else None) == before
