"""Evaluation summary, reports (JSON, Markdown, PNG, console table), the CI gate and --compare syntax."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from rag.config import build_settings
from rag.errors import ConfigError
from rag.eval import EvalReport
from rag.eval.report import (
    gate_failures, load_thresholds, summary_json, summary_table, to_markdown, write_report)
from rag.eval.configs import configure, parse_config
from rag.eval.records import QuestionRecord, metric_names, summarize

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _records() -> list[QuestionRecord]:
    full: dict[str, float | None] = {"hit@5": 1.0, "recall@5": 1.0, "mrr": 1.0, "ndcg@5": 1.0, "token_f1": 0.5, "rouge_l": 0.4,
            "semantic_similarity": 0.8, "answer_contains": 1.0, "groundedness": 1.0,
            "citation_recall": 1.0, "citation_precision": 0.5}
    missed: dict[str, float | None] = {"hit@5": 0.0, "recall@5": 0.0, "mrr": 0.0, "ndcg@5": 0.0, "token_f1": 0.0, "rouge_l": 0.0,
              "semantic_similarity": 0.0, "answer_contains": 0.0}
    return [
        QuestionRecord("a1", "Who announced the NEP?", True, "Lenin.", "Lenin announced it [1].", False, 100.0,
                       retrieved=[{"rank": 1, "source": "nep.txt", "holds_reference": True}],
                       cited=[{"marker": 1, "source": "nep.txt", "supported": True}], metrics=full),
        QuestionRecord("a2", "Which dam | which river?", True, "Dneprostroi.", "The documents do not cover this.",
                       True, 300.0, metrics=missed),
        QuestionRecord("u1", "Harvest in 1937?", False, "", "The documents do not cover this.", True, 200.0),
        QuestionRecord("u2", "Premier in 1950?", False, "", "Someone [1].", False, 400.0),
    ]


def _report(label: str = "dense", records: list[QuestionRecord] | None = None) -> EvalReport:
    records = records if records is not None else _records()
    return EvalReport(label=label, settings={"backend": "extractive", "hybrid": False}, k=5, records=records,
                      summary=summarize(records, k=5), seconds=1.5)


def test_summary_averages_each_metric_over_the_questions_it_applies_to() -> None:
    summary = summarize(_records(), k=5)

    assert list(summary) == metric_names(5) + ["n"]
    assert summary["hit@5"] == 0.5               # (1 + 0) / 2 answerable
    assert summary["token_f1"] == 0.25           # (0.5 + 0) / 2
    assert summary["groundedness"] == 1.0        # only a1: a2 was refused, u* are unanswerable
    assert summary["citation_precision"] == 0.5
    assert summary["refusal_accuracy"] == 0.5    # u1 refused, u2 not
    assert summary["false_refusal_rate"] == 0.5  # a2 refused of a1, a2
    assert summary["latency_p50_ms"] == 250.0    # 100 200 300 400 -> 250
    assert summary["latency_p95_ms"] == 385.0    # position 2.85 -> 300 + 0.85 * 100
    assert summary["n"] == 4


def test_summary_of_only_answerable_questions_has_no_refusal_accuracy() -> None:
    records = [r for r in _records() if r.answerable]
    assert summarize(records, k=5)["refusal_accuracy"] is None


def test_metric_names_follow_k_and_judge() -> None:
    names = metric_names(3, judge=True)
    assert names[:4] == ["hit@3", "recall@3", "mrr", "ndcg@3"]
    assert names[-2:] == ["judge_faithfulness", "judge_correctness"]
    assert "hit@5" not in names


def test_write_report_produces_json_markdown_and_png(tmp_path: Path) -> None:
    reports = [_report("dense"), _report("hybrid", _records()[:1])]

    paths = write_report(reports, tmp_path / "out", dataset="dev.jsonl", split="heldout")

    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert data["dataset"] == "dev.jsonl" and data["split"] == "heldout"
    assert [run["label"] for run in data["runs"]] == ["dense", "hybrid"]
    first = data["runs"][0]
    assert first["summary"]["hit@5"] == 0.5
    assert [q["id"] for q in first["questions"]] == ["a1", "a2", "u1", "u2"]
    detail = first["questions"][0]
    assert detail["answer"] == "Lenin announced it [1]."
    assert detail["retrieved"][0]["source"] == "nep.txt"
    assert detail["metrics"]["token_f1"] == 0.5

    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert markdown.startswith("# Evaluation: dev.jsonl (heldout split)\n")
    assert "| metric | dense | hybrid | meaning |" in markdown
    assert "| hit@5 | 0.500 | 1.000 |" in markdown
    assert "| latency_p50_ms | 250 | 100 |" in markdown
    assert "Which dam \\| which river?" in markdown  # pipes in text cannot break the table
    assert "## Questions: hybrid" in markdown

    png = paths["chart"].read_bytes()
    assert png.startswith(PNG_MAGIC)
    from matplotlib.image import imread

    height, width, _ = imread(paths["chart"]).shape
    assert width > height > 300


def test_markdown_and_table_show_missing_metrics_as_na() -> None:
    records = [r for r in _records() if r.answerable]
    report = _report("only-answerable", records)

    assert "| refusal_accuracy | n/a |" in to_markdown([report])
    console = Console(record=True, width=120)
    console.print(summary_table([report, _report("all")]))
    text = console.export_text()
    assert "only-answerable" in text and "all" in text
    assert "n/a" in text and "0.500" in text


def test_summary_json_is_flat_for_one_run_and_by_label_when_comparing() -> None:
    one = summary_json([_report()])
    assert set(one) == set(metric_names(5)) | {"n"}
    two = summary_json([_report("dense"), _report("hybrid,k=3")])
    assert set(two) == {"dense", "hybrid,k=3"}
    assert two["dense"]["n"] == 4


def test_gate_reports_each_metric_outside_its_threshold() -> None:
    report = _report()
    thresholds = {"min": {"hit@5": 0.6, "token_f1": 0.2, "judge_correctness": 0.1},
                  "max": {"false_refusal_rate": 0.4, "latency_p95_ms": 1000}}

    failures = gate_failures(report, thresholds)

    assert failures == [
        "dense: hit@5 = 0.5 is below the minimum 0.6",
        "dense: judge_correctness was not measured (threshold min 0.1)",
        "dense: false_refusal_rate = 0.5 is above the maximum 0.4",
    ]
    assert gate_failures(report, {"min": {"hit@5": 0.5}, "max": {"false_refusal_rate": 0.5}}) == []


def test_load_thresholds_validates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"note": "x", "min": {"hit@5": 0.8}}), encoding="utf-8")
    assert load_thresholds(path) == {"min": {"hit@5": 0.8}, "max": {}}

    path.write_text(json.dumps({"min": {"hit@5": "high"}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="numbers"):
        load_thresholds(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="Cannot read"):
        load_thresholds(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_thresholds(tmp_path / "missing.json")


def test_repository_thresholds_gate_known_metrics() -> None:
    thresholds = load_thresholds(REPO / "evals" / "thresholds.json")
    known = set(metric_names(5))
    gated = set(thresholds["min"]) | set(thresholds["max"])
    assert gated and gated <= known
    assert not set(thresholds["min"]) & {"false_refusal_rate", "latency_p50_ms", "latency_p95_ms"}
    assert all(0 <= v <= 1 for k, v in thresholds["min"].items())


# ------------------------------------------------------------------- --compare syntax
def test_parse_config_presets_and_pairs() -> None:
    assert parse_config("dense") == {"retrieval.hybrid": False, "retrieval.mmr": False}
    assert parse_config("hybrid,k=3") == {"retrieval.hybrid": True, "retrieval.mmr": False, "retrieval.top_k": 3}
    assert parse_config("backend=openai, model=smol, temperature=0.5") == {
        "answer.backend": "openai", "answer.model": "smol", "answer.temperature": 0.5}
    assert parse_config("hybrid=off,retrieval.rrf_k=10") == {"retrieval.hybrid": False, "retrieval.rrf_k": 10}
    assert parse_config("embedding_model=other") == {"embedding_model": "other"}


@pytest.mark.parametrize("spec, message", [
    ("fast", "Unknown configuration 'fast'"),
    ("k=3,colour=red", "Unknown setting 'colour'"),
    ("retrieval.nope=1", "Unknown setting 'retrieval.nope'"),
    ("retrieval=1", "Unknown setting 'retrieval'"),
    (" , ", "Empty --compare configuration"),
])
def test_parse_config_rejects_unknown_names(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(spec)


def test_configure_applies_and_validates(tmp_path: Path) -> None:
    base = build_settings(data_dir=tmp_path)

    settings = configure(base, "dense,k=3,backend=openai")

    assert (settings.retrieval.top_k, settings.retrieval.hybrid, settings.answer.backend) == (3, False, "openai")
    assert base.retrieval.top_k == 5
    with pytest.raises(ConfigError, match="top_k"):
        configure(base, "k=0")
    with pytest.raises(ConfigError, match="hybrid"):
        configure(base, "hybrid=maybe")
