"""`python -m rag.eval` end to end on a tiny corpus (real model, real Chroma), and the LLM judge on llama.cpp."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import BackendError
from rag.eval.__main__ import main
from rag.eval.judge import Judge, claims_of, parse_verdict
from rag.eval.records import metric_names
from tests.helpers import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
REPO = Path(__file__).resolve().parent.parent
TINY = FIXTURES / "tiny.jsonl"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The tiny evaluation corpus, copied so a test may change it."""
    target = tmp_path / "eval-corpus"
    shutil.copytree(FIXTURES / "corpus", target)
    return target


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _indexed(data_dir: Path, corpus: Path) -> list[tuple[str, str, int]]:
    """(source, updated, chunks) of what the one evaluation index under ``data_dir`` holds."""
    from rag.config import build_settings
    from rag.indexer import Indexer

    [chroma] = (data_dir / "eval").glob("*/chroma")
    settings = build_settings(data_dir=chroma.parent, corpus_dir=corpus)
    return [(e.source, e.updated, e.chunks) for e in Indexer(settings).documents()]


@pytest.mark.slow
def test_eval_with_corpus_prints_the_metric_keys_and_writes_reports(
        tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, out = tmp_path / "data", tmp_path / "out"

    code, stdout, _ = _run(capsys, TINY, "--corpus", corpus, "--data-dir", data, "--out", out, "--k", "1", "--json")

    assert code == 0
    summary = json.loads(stdout)
    assert list(summary) == metric_names(1) + ["n"]
    assert summary["n"] == 4
    # Three distinct one-paragraph documents: the right one ranks first and holds the answer.
    assert summary["hit@1"] == 1.0 and summary["mrr"] == 1.0
    assert summary["answer_hit@1"] == 1.0  # what the answers were written from holds it too
    assert summary["answer_contains"] == 1.0
    assert summary["false_refusal_rate"] == 0.0
    assert summary["refusal_accuracy"] == 1.0  # tungsten's boiling point is nowhere near the corpus
    assert summary["latency_p50_ms"] is not None and summary["latency_p95_ms"] is not None

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    [run] = report["runs"]
    assert run["summary"] == summary
    by_id = {q["id"]: q for q in run["questions"]}
    # The summary is the mean of the per-question values over the questions each applies to.
    contains = [q["metrics"]["answer_contains"] for q in run["questions"] if "answer_contains" in q["metrics"]]
    assert len(contains) == 3 and summary["answer_contains"] == round(sum(contains) / 3, 4)
    assert by_id["tungsten"]["refused"] and not by_id["brunat"]["refused"]
    # Why each question was answered or refused travels with it into the report.
    assert by_id["tungsten"]["judgement"]["answerable"] is False and by_id["tungsten"]["judgement"]["reason"]
    assert by_id["brunat"]["judgement"]["answerable"] is True and by_id["brunat"]["fallback"] == ""
    assert "Paul Brunat" in by_id["brunat"]["answer"]
    assert by_id["brunat"]["retrieved"][0]["source"] == "tomioka.txt"
    assert by_id["brunat"]["retrieved"][0]["holds_reference"] is True
    assert by_id["brunat"]["cited"][0]["source"] == "tomioka.txt"
    assert (out / "report.md").read_text(encoding="utf-8").count("| brunat |") == 1
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")
    # Latency by stage: every question is retrieved and judged; the refused one stops there.
    stages = run["stages"]
    assert stages["retrieve"]["n"] == stages["judge"]["n"] == stages["total"]["n"] == 4
    assert stages["check"]["n"] == 3
    assert all(0 <= t["p50_ms"] <= t["p95_ms"] for t in stages.values()), stages
    assert stages["retrieve"]["p50_ms"] > 0
    assert stages["total"]["p50_ms"] == summary["latency_p50_ms"]
    assert "| judge |" in (out / "report.md").read_text(encoding="utf-8")

    # The evaluation corpus gets its own index folder; the user's data folder holds no index.
    assert not (data / "chroma").exists()
    assert len(list((data / "eval").glob("*/chroma"))) == 1
    before = _indexed(data, corpus)
    assert [source for source, _, _ in before] == ["dust-bowl.txt", "magnitogorsk.txt", "tomioka.txt"]

    # A second run reuses the unchanged index: nothing is re-indexed.
    code, stdout, _ = _run(capsys, TINY, "--corpus", corpus, "--data-dir", data, "--out", out, "--k", "1",
                           "--json", "--limit", "1")
    assert code == 0 and json.loads(stdout)["n"] == 1
    assert _indexed(data, corpus) == before


@pytest.mark.slow
def test_compare_reports_configurations_side_by_side(
        tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"

    code, stdout, _ = _run(capsys, TINY, "--corpus", corpus, "--data-dir", tmp_path / "data", "--out", out,
                           "--limit", "2", "--json", "--compare", "dense", "hybrid,k=2")

    assert code == 0
    summary = json.loads(stdout)
    assert list(summary) == ["dense", "hybrid,k=2"]
    assert "hit@5" in summary["dense"] and "hit@2" in summary["hybrid,k=2"]
    assert summary["dense"]["n"] == summary["hybrid,k=2"]["n"] == 2
    runs = json.loads((out / "report.json").read_text(encoding="utf-8"))["runs"]
    assert [(r["settings"]["hybrid"], r["settings"]["top_k"]) for r in runs] == [(False, 5), (True, 2)]
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| metric | dense | hybrid,k=2 | meaning |" in markdown
    assert "| hit@2 | n/a | 1.000 |" in markdown
    assert (out / "report.png").stat().st_size > 10_000
    # Both configurations share one index: retrieval options do not change the vectors.
    assert len(list((tmp_path / "data" / "eval").iterdir())) == 1


@pytest.mark.slow
def test_gate_exits_1_and_names_the_metrics_that_fell_short(
        tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strict, lenient = tmp_path / "strict.json", tmp_path / "lenient.json"
    strict.write_text(json.dumps({"min": {"token_f1": 0.99, "hit@5": 0.5}, "max": {"latency_p50_ms": 0.001}}))
    lenient.write_text(json.dumps({"min": {"hit@5": 0.5, "answer_contains": 0.5}, "max": {"false_refusal_rate": 0.5}}))
    common: list[str | Path] = [TINY, "--corpus", corpus, "--data-dir", tmp_path / "data", "--limit", "2", "-q"]

    code, _, stderr = _run(capsys, *common, "--out", tmp_path / "a", "--gate", strict)
    assert code == 1
    failed = [line for line in stderr.splitlines() if line.startswith("gate: ")]
    assert len(failed) == 2
    assert "token_f1" in failed[0] and "below the minimum 0.99" in failed[0]
    assert "latency_p50_ms" in failed[1] and "above the maximum 0.001" in failed[1]

    code, _, stderr = _run(capsys, *common, "--out", tmp_path / "b", "--gate", lenient)
    assert code == 0
    assert "gate:" not in stderr  # -q: silent on success


@pytest.mark.slow
def test_squad_without_corpus_indexes_its_own_paragraphs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"

    code, stdout, _ = _run(capsys, FIXTURES / "squad_v2.json", "--data-dir", data, "--out", tmp_path / "out",
                           "--k", "1", "--json")

    assert code == 0
    summary = json.loads(stdout)
    assert summary["n"] == 3
    assert summary["hit@1"] == 1.0
    written = sorted(p.name for p in (data / "eval").glob("*/corpus/*.txt"))
    assert len(written) == 2 and written[0].startswith("0000-meiji-restoration")


@pytest.mark.slow
def test_module_entry_point_prints_only_json_on_stdout(tmp_path: Path, corpus: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rag.eval", str(TINY), "--corpus", str(corpus), "--data-dir", str(tmp_path / "data"),
         "--out", str(tmp_path / "out"), "--limit", "1", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 1
    assert done.stdout.count("\n") == 1
    assert "\r" not in done.stderr  # no progress bar when stderr is not a terminal


@pytest.mark.parametrize("argv, message", [
    (["missing.jsonl"], "error: Dataset missing.jsonl does not exist"),
    ([str(TINY), "--compare", "dense", "turbo"], "error: Unknown configuration 'turbo'"),
    ([str(TINY), "--judge-url", "http://127.0.0.1:9/v1"], "error: The LLM judge needs both"),
    ([str(TINY), "--gate", "nope.json"], "error: Threshold file nope.json does not exist"),
    ([str(REPO / "evals" / "paraphrase.jsonl"), "--split", "test"],
     f"error: {REPO / 'evals' / 'paraphrase.jsonl'} has no split 'test'; its splits are calibration, heldout"),
])
def test_bad_input_is_a_one_line_error(argv: list[str], message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, stderr = _run(capsys, *argv, "--data-dir", tmp_path / "data", "--out", tmp_path / "out")

    assert code == 1
    assert stdout == ""
    assert stderr.startswith(message) and stderr.count("\n") == 1


def test_limit_below_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = _run(capsys, TINY, "--limit", "0")
    assert code == 2 and "--limit" in stderr


# ------------------------------------------------------------------------------ judge
def test_parse_verdict_reads_the_first_verdict_word() -> None:
    assert parse_verdict("Yes.") is True
    assert parse_verdict("  supported, because the context says so") is True
    assert parse_verdict("No, it is not.") is False
    assert parse_verdict("The statement is not supported by the context.") is False
    assert parse_verdict("Incorrect") is False
    assert parse_verdict("Lenin was a revolutionary leader who") is None
    assert parse_verdict("") is None
    # Words merely containing a verdict do not count.
    assert parse_verdict("Yesterday nobody noticed") is None


def test_claims_are_sentences_without_markers() -> None:
    assert claims_of("Lenin announced it [1]. It began in 1921 [2]. Yes.") == ["Lenin announced it.", "It began in 1921."]
    assert claims_of("") == []


def test_unreachable_judge_is_a_retryable_backend_error() -> None:
    judge = Judge(base_url=f"http://127.0.0.1:{free_port()}/v1", model="smollm2", timeout=5)

    with pytest.raises(BackendError, match="The LLM judge at .* cannot be reached") as info:
        judge.correctness("Who?", "Lenin.", "Lenin.")
    assert info.value.retryable


@pytest.mark.slow
def test_judge_scores_claims_with_a_real_llama_server(llama_server: str) -> None:
    judge = Judge(base_url=llama_server, model="smollm2", max_tokens=8)
    contexts = ["The New Economic Policy was announced by Lenin at the Tenth Party Congress in March 1921."]

    faithful = judge.faithfulness("Lenin announced the NEP in 1921 [1]. It replaced requisitioning [1].", contexts)
    correct = judge.correctness("Who announced the NEP?", "Lenin announced it [1].", "Lenin.")

    assert faithful is not None
    assert faithful.verdicts == 2  # one verdict per claim
    assert correct.verdicts == 1
    assert judge.faithfulness("[1]", contexts) is None  # nothing to judge


@pytest.mark.slow
def test_openai_backend_and_judge_on_llama_server_report_judge_metrics(
        llama_server: str, tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"

    code, stdout, stderr = _run(
        capsys, TINY, "--corpus", corpus, "--data-dir", tmp_path / "data", "--out", out, "--limit", "2", "--json",
        "--compare", f"backend=openai,model=smollm2,base_url={llama_server},max_tokens=80",
        "--judge-url", llama_server, "--judge-model", "smollm2")

    assert code == 0, stderr
    summary = json.loads(stdout)
    assert list(summary) == metric_names(5, judge=True) + ["n"]
    assert summary["n"] == 2
    assert summary["judge_correctness"] is not None  # both questions are answerable with references
    [run] = json.loads((out / "report.json").read_text(encoding="utf-8"))["runs"]
    assert run["settings"]["backend"] == "openai" and run["errors"] == 0
    for question in run["questions"]:
        assert "judge_correctness" in question["metrics"]
