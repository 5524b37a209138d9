"""Evaluation output: console table, JSON with per-question detail, Markdown report, bar chart, CI gate."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.eval.records import LATENCY_METRICS, LOWER_IS_BETTER, STAGES, EvalReport

logger = logging.getLogger(__name__)

DESCRIPTIONS = {
    "hit": "a top-k chunk holds a reference context (or lies mostly inside one)",
    "recall": "share of reference contexts in the top k",
    "mrr": "1/rank of the first chunk holding a reference context",
    "ndcg": "rank-discounted gain of reference contexts in the top k",
    "answer_hit": "hit@k of the passages an accepted answer is written from (retrieval.answer_rerank)",
    "token_f1": "SQuAD token F1 of answer vs reference answer",
    "rouge_l": "LCS-based F1 of answer vs reference answer",
    "semantic_similarity": "embedding cosine of answer and reference answer",
    "answer_contains": "answer contains an acceptable short answer",
    "groundedness": "claims the answer path marked supported by their citations",
    "citation_precision": "(sentence, cited passage) pairs where the passage supports the sentence",
    "citation_recall": "claims supported by the passages they cite",
    "refusal_accuracy": "unanswerable questions refused",
    "false_refusal_rate": "answerable questions refused (lower is better)",
    "latency_p50_ms": "median time of ask(), ms",
    "latency_p95_ms": "95th percentile time of ask(), ms",
    "judge_faithfulness": "LLM judge: claims supported by the retrieved passages",
    "judge_correctness": "LLM judge: answer states the reference answer's facts",
    "n": "questions",
}


def describe_metric(name: str) -> str:
    """One-line meaning of a summary key (``hit@5`` -> the hit description)."""
    return DESCRIPTIONS.get(name.split("@")[0], "")


def format_value(value: float | int | None, name: str) -> str:
    """A summary value for tables: ratios with 3 decimals, ms with 0, missing as n/a."""
    if value is None:
        return "n/a"
    if name == "n" or isinstance(value, int):
        return str(value)
    if name in LATENCY_METRICS:
        return f"{value:.0f}"
    return f"{value:.3f}"


def summary_table(reports: Sequence[EvalReport], *, title: str = "Evaluation") -> Any:
    """A rich ``Table``: one row per metric, one column per configuration."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for report in reports:
        table.add_column(report.label, justify="right")
    for name in _keys(reports):
        table.add_row(name, *(format_value(r.summary.get(name), name) for r in reports))
    return table


def to_json(reports: Sequence[EvalReport], *, dataset: str = "", split: str = "") -> dict[str, Any]:
    """The report file's content: every run with its settings, summary and per-question detail.

    ``split`` is the dataset split evaluated ("" for the whole dataset).
    """
    return {
        "dataset": dataset,
        "split": split,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": [r.to_dict() for r in reports],
    }


def summary_json(reports: Sequence[EvalReport]) -> dict[str, Any]:
    """What ``--json`` prints: the summary of a single run, or ``{label: summary}`` when comparing."""
    if len(reports) == 1:
        return dict(reports[0].summary)
    return {r.label: dict(r.summary) for r in reports}


def to_markdown(reports: Sequence[EvalReport], *, dataset: str = "", split: str = "") -> str:
    """A Markdown report: configurations, metrics side by side, then every question of every run."""
    lines = [f"# Evaluation: {dataset or 'dataset'}{f' ({split} split)' if split else ''}", "",
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {reports[0].summary.get('n', 0)} questions.", ""]
    lines += ["## Configurations", "", "| configuration | backend | k | hybrid | mmr | index | seconds | errors |",
              "|---|---|---|---|---|---|---|---|"]
    for r in reports:
        s = r.settings
        lines.append(f"| {_cell(r.label)} | {s.get('backend', '')} {_cell(s.get('model', ''))} | {r.k} | "
                     f"{s.get('hybrid', '')} | {s.get('mmr', '')} | {s.get('index', '')} | "
                     f"{r.seconds:.1f} | {r.errors} |")
    lines += ["", "## Metrics", "", "| metric | " + " | ".join(_cell(r.label) for r in reports) + " | meaning |",
              "|---|" + "---:|" * len(reports) + "---|"]
    for name in _keys(reports):
        values = " | ".join(format_value(r.summary.get(name), name) for r in reports)
        lines.append(f"| {name} | {values} | {describe_metric(name)} |")
    if any(r.judge_unparsable for r in reports):
        lines += ["", "Unparsable judge replies (scored 0): "
                  + ", ".join(f"{_cell(r.label)}: {r.judge_unparsable}" for r in reports)]
    lines += ["", "Retrieval and answer metrics cover answerable questions; refusal metrics both kinds.", ""]
    lines += _stage_table(reports)
    for r in reports:
        k = r.k
        lines += [f"## Questions: {_cell(r.label)}", "",
                  f"| id | answerable | refused | hit@{k} | token_f1 | contains | grounded | ms | question | answer |",
                  "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
        for q in r.records:
            m = q.metrics
            answer = q.error and f"error: {q.error}" or q.answer
            lines.append(
                f"| {_cell(q.id)} | {'yes' if q.answerable else 'no'} | {'yes' if q.refused else 'no'} | "
                f"{format_value(m.get(f'hit@{k}'), '')} | {format_value(m.get('token_f1'), '')} | "
                f"{format_value(m.get('answer_contains'), '')} | {format_value(m.get('groundedness'), '')} | "
                f"{q.latency_ms:.0f} | {_cell(q.question, 120)} | {_cell(answer, 200)} |")
        lines.append("")
    return "\n".join(lines)


def _stage_table(reports: Sequence[EvalReport]) -> list[str]:
    """Latency by stage of the answer (p50 / p95 ms, and how many questions reached the stage)."""
    stages = [name for name in (s.removesuffix("_s") for s in STAGES) if any(name in r.stages for r in reports)]
    if not stages:
        return []
    lines = ["## Latency by stage", "", "| stage | " + " | ".join(_cell(r.label) for r in reports) + " |",
             "|---|" + "---:|" * len(reports)]
    for name in stages:
        cells = [f"{t['p50_ms']:.0f} / {t['p95_ms']:.0f} ms (n={t['n']})" if (t := r.stages.get(name)) else "n/a"
                 for r in reports]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + ["", "p50 / p95 over the questions that reached the stage (refusals stop after the judge).", ""]


def write_chart(reports: Sequence[EvalReport], path: Path) -> Path:
    """A PNG with grouped bars: score metrics (0 to 1) on the left, latency (ms) on the right."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Figure + Agg canvas, not pyplot: no global state, safe inside the Gradio app's threads.
    keys = [k for k in _keys(reports) if k != "n"]
    scores = [k for k in keys if k not in LATENCY_METRICS]
    latency = [k for k in keys if k in LATENCY_METRICS]
    width = min(18.0, 5.0 + len(scores) * (0.35 + 0.15 * len(reports)))
    figure = Figure(figsize=(width, 5.0), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=[max(len(scores), 1), max(len(latency), 1) + 1])
    _bars(left, reports, scores)
    left.set_ylim(0, 1.05)
    left.set_ylabel("score (higher is better; false_refusal_rate: lower)")
    left.set_title("Quality")
    _bars(right, reports, latency)
    right.set_ylabel("ms")
    right.set_title("Latency")
    if len(reports) > 1:
        left.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.25), ncols=min(len(reports), 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _bars(axes: Any, reports: Sequence[EvalReport], keys: list[str]) -> None:
    width = 0.8 / max(len(reports), 1)
    for i, report in enumerate(reports):
        values = [_number(report.summary.get(key)) for key in keys]
        positions = [x + (i - (len(reports) - 1) / 2) * width for x in range(len(keys))]
        axes.bar(positions, values, width=width, label=report.label)
    axes.set_xticks(range(len(keys)), keys, rotation=45, ha="right", fontsize=8)
    axes.grid(axis="y", alpha=0.3)


def write_report(reports: Sequence[EvalReport], out_dir: Path, *, dataset: str = "",
                 split: str = "") -> dict[str, Path]:
    """Write report.json, report.md and report.png into ``out_dir``; return their paths by kind."""
    if not reports:
        raise ValueError("no runs to report")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "chart": out_dir / "report.png"}
    content = to_json(reports, dataset=dataset, split=split)
    paths["json"].write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(to_markdown(reports, dataset=dataset, split=split) + "\n", encoding="utf-8")
    write_chart(reports, paths["chart"])
    logger.info("evaluation report written to %s", out_dir)
    return paths


# -------------------------------------------------------------------------------- gate
def load_thresholds(path: Path) -> dict[str, dict[str, float]]:
    """Read a gate file: ``{"min": {metric: value}, "max": {metric: value}}`` (other keys are notes).

    Raises:
        ConfigError: the file is missing, not JSON, or not of that shape.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"Threshold file {path} does not exist.") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read threshold file {path} ({exc}).") from exc
    if not isinstance(data, dict) or not any(key in data for key in ("min", "max")):
        raise ConfigError(f"Threshold file {path} needs \"min\" and/or \"max\" objects of metric: value.")
    thresholds: dict[str, dict[str, float]] = {}
    for bound in ("min", "max"):
        values = data.get(bound, {})
        if not isinstance(values, dict) or not all(isinstance(v, (int, float)) for v in values.values()):
            raise ConfigError(f"Threshold file {path}: \"{bound}\" must map metric names to numbers.")
        thresholds[bound] = {str(k): float(v) for k, v in values.items()}
    return thresholds


def gate_failures(report: EvalReport, thresholds: dict[str, dict[str, float]]) -> list[str]:
    """Human-readable lines for every metric of ``report`` outside its threshold (empty: pass).

    A gated metric missing from the summary, or None there, fails: the gate cannot vouch for it.
    """
    failures = []
    for bound, limits in thresholds.items():
        for name, limit in limits.items():
            value = report.summary.get(name)
            if not isinstance(value, (int, float)):
                failures.append(f"{report.label}: {name} was not measured (threshold {bound} {limit:g})")
            elif bound == "min" and value < limit:
                failures.append(f"{report.label}: {name} = {value:g} is below the minimum {limit:g}")
            elif bound == "max" and value > limit:
                failures.append(f"{report.label}: {name} = {value:g} is above the maximum {limit:g}")
    for name in thresholds.get("min", {}):
        if name in LOWER_IS_BETTER:
            logger.warning("threshold file sets a minimum for %s, where lower is better", name)
    return failures


def _keys(reports: Sequence[EvalReport]) -> list[str]:
    keys: list[str] = []
    for report in reports:
        keys.extend(k for k in report.summary if k not in keys)
    return keys


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _cell(text: Any, limit: int = 0) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if not limit or len(text) <= limit else text[: limit - 1] + "…"
