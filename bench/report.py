"""The bench's report: docs/benchmarks.md (machine, versions, a table per size, targets) and its chart."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

Row = dict[str, Any]

# (label, key, format, target text): the rows of each per-size table.
METRICS: list[tuple[str, str, str, str]] = [
    ("measured at commit / load average at the end", "commit", "{} / {}", ""),
    ("chunks indexed (actual)", "chunks_indexed", "{:,.0f}", ""),
    ("documents", "documents", "{:,.0f}", ""),
    ("first ingest, chunks/s", "ingest_chunks_per_s", "{:.1f}", ""),
    ("textbook recipe, chunks/s", "recipe_chunks_per_s", "{:.1f}", ""),
    ("ingest ratio (Footnote / recipe)", "ingest_ratio", "{:.2f}x", ">= 3x"),
    ("first ingest, s (wall, incl. start-up)", "ingest_wall_s", "{:.1f}", ""),
    ("re-ingest unchanged, s (wall)", "reingest_s", "{:.2f} ({:.1f})", ""),
    ("re-ingest after 1% changed, s (wall)", "reingest_changed_s", "{:.2f} ({:.1f})", ""),
    ("  chunks embedded on that re-ingest", "reingest_changed_embedded", "{:,.0f}", ""),
    ("remove the large document, s (wall)", "remove_doc_s", "{:.2f} ({:.1f})", "<= 5 s for 10,000 chunks"),
    ("  chunks in that document", "large_document_chunks", "{:,.0f}", ""),
    ("`ingest.py list`, s (wall)", "list_s", "{:.2f}", "<= 2 s for 20,000 documents"),
    ("  `ingest.py --help`, s (CLI start-up alone)", "cli_start_s", "{:.2f}", ""),
    ("retrieval hybrid p50 / p95, ms", "retrieval_p50_ms", "{:.0f} / {:.0f}", "<= 50 / 100 ms"),
    ("retrieval dense p50 / p95, ms", "retrieval_dense_p50_ms", "{:.0f} / {:.0f}", ""),
    ("recipe similarity_search p50 / p95, ms", "recipe_retrieval_p50_ms", "{:.0f} / {:.0f}", ""),
    ("first retrieval in a fresh process, ms", "retrieval_cold_ms", "{:.0f}", ""),
    ("answer p50 / p95, ms (extractive)", "answer_p50_ms", "{:.0f} / {:.0f}", ""),
    ("app start with the index in place, s", "app_start_s", "{:.1f}", "<= 15 s"),
    ("app RSS after start / after answering, MB", "app_rss_start_mb", "{:.0f} / {:.0f}", "<= 1,536 MB"),
    ("answer p50 / p95, ms, default backend (small sample)", "default_answer_p50_ms", "{:.0f} / {:.0f}", ""),
    ("app with the local model: start s / RSS MB", "app_local_start_s", "{:.1f} / {:.0f}", "RSS <= 3,584 MB"),
    ("ingest peak RSS, MB", "ingest_peak_mb", "{:.0f}", "flat within 20%"),
    ("recipe ingest peak RSS, MB", "recipe_ingest_peak_mb", "{:.0f}", ""),
]
PAIRS = {"reingest_s": "reingest_wall_s", "reingest_changed_s": "reingest_changed_wall_s",
         "remove_doc_s": "remove_doc_wall_s", "retrieval_p50_ms": "retrieval_p95_ms",
         "retrieval_dense_p50_ms": "retrieval_dense_p95_ms", "answer_p50_ms": "answer_p95_ms",
         "recipe_retrieval_p50_ms": "recipe_retrieval_p95_ms", "app_rss_start_mb": "app_rss_mb",
         "default_answer_p50_ms": "default_answer_p95_ms", "app_local_start_s": "app_local_rss_mb",
         "commit": "load"}


def cell(row: Row, key: str, fmt: str) -> str:
    """One table cell; ``-`` when the row lacks the figure."""
    values = [row.get(key)] + ([row.get(PAIRS[key])] if key in PAIRS else [])
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return "-"
    text = fmt.format(*values)
    if key == "ingest_chunks_per_s" and row.get("embeddings_cached"):
        text += f" (vectors cached: rate of the run that embedded, {row.get('ingest_measured', '?')}, " \
                f"commit {row.get('ingest_commit', '?')})"
    if key == "chunks_indexed" and row.get("embeddings_cached"):
        text += (f" (vectors: {row.get('vectors_from_cache', 0):,} cached, {row.get('vectors_standin', 0):,} "
                 f"stand-ins, {row.get('chunks_embedded', 0) - row.get('vectors_from_cache', 0) - row.get('vectors_standin', 0):,} embedded)")
    if key == "ingest_chunks_per_s" and row.get("ingest_cached_chunks_per_s"):
        text += f"; {row['ingest_cached_chunks_per_s']:.0f} chunks/s now with cached vectors"
    if key == "recipe_chunks_per_s" and row.get("recipe_extrapolated"):
        text += f" (on a {row.get('recipe_chunks', 0):,}-chunk prefix, extrapolated)"
    return text


def table(rows: list[Row]) -> str:
    """The table of one corpus size: a column per store."""
    stores = [r["store"] for r in rows]
    lines = ["| | " + " | ".join(stores) + " | target |", "|---|" + "---|" * (len(stores) + 1)]
    for label, key, fmt, target in METRICS:
        lines.append(f"| {label} | " + " | ".join(cell(r, key, fmt) for r in rows) + f" | {target} |")
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    """Hit, missed or not measured, as a table word."""
    return {True: "**met**", False: "**missed**", None: "not measured"}[ok]


def targets(rows: list[Row]) -> list[str]:
    """One line per target of issue 12, judged from the rows (at the largest size measured)."""
    if not rows:
        return []
    top = max(r["chunks"] for r in rows)
    at_top = [r for r in rows if r["chunks"] == top]

    def judge(name: str, pick: list[Row], good: Callable[[Row], bool], show: Callable[[Row], str]) -> str:
        if not pick:
            return f"- {name}: not measured in this run."
        ok = all(good(r) for r in pick)
        shown = "; ".join(f"{r['store']} {r['chunks']:,}: {show(r)}" for r in pick)
        return f"- {name}: {verdict(ok)} ({shown})."

    big_doc = [r for r in rows if r.get("large_document_chunks", 0) >= 10_000 and "remove_doc_s" in r]
    many_docs = [r for r in rows if r.get("list_documents", 0) >= 19_000]
    lines = [
        judge("First ingest >= 3x the recipe's chunks/s", [r for r in rows if r.get("ingest_ratio")], lambda r: r["ingest_ratio"] >= 3,
              lambda r: f"{r['ingest_ratio']:.2f}x"),
        judge("Removing a 10,000-chunk document <= 5 s", big_doc, lambda r: r["remove_doc_s"] <= 5,
              lambda r: f"{r['remove_doc_s']:.1f} s in-process, {r['remove_doc_wall_s']:.1f} s wall"),
        judge("`list` of 20,000 documents <= 2 s (wall, CLI start-up included)", many_docs,
              lambda r: r["list_s"] <= 2, lambda r: f"{r['list_s']:.2f} s for {r['list_documents']:,}"),
        judge(f"Retrieval p50 <= 50 ms and p95 <= 100 ms, hybrid, at {top:,} chunks", at_top,
              lambda r: r["retrieval_p50_ms"] <= 50 and r["retrieval_p95_ms"] <= 100,
              lambda r: f"{r['retrieval_p50_ms']:.0f} / {r['retrieval_p95_ms']:.0f} ms"),
        judge(f"App start <= 15 s at {top:,} chunks", at_top, lambda r: r["app_start_s"] <= 15,
              lambda r: f"{r['app_start_s']:.1f} s"),
        judge("App resident memory <= 1.5 GB without the local model", rows,
              lambda r: r.get("app_rss_mb", math.inf) <= 1536, lambda r: f"{r.get('app_rss_mb', math.nan):.0f} MB"),
        judge("App resident memory <= 3.5 GB with the local model (after one answer)",
              [r for r in rows if r.get("app_local_answers")], lambda r: r["app_local_rss_mb"] <= 3584,
              lambda r: f"{r['app_local_rss_mb']:.0f} MB"),
    ]
    for store in sorted({r["store"] for r in rows}):
        peaks = [(r["chunks"], r["ingest_peak_mb"]) for r in rows if r["store"] == store and r.get("ingest_peak_mb")]
        if len(peaks) > 1:
            low, high = min(p for _, p in peaks), max(p for _, p in peaks)
            shown = ", ".join(f"{c:,}: {p:.0f} MB" for c, p in peaks)
            lines.append(f"- Ingest peak memory flat within 20% ({store}): {verdict(high <= low * 1.2)} "
                         f"({shown}; largest/smallest {high / low:.2f}).")
    lines.append("- hit@5 within one point of torch: not measured by this bench (the evaluation gate in "
                 "`.ci/run` checks retrieval quality).")
    return lines


def chart(rows: list[Row], path: Path) -> None:
    """Cost against corpus size: ingest rate, latency, start-up and removal, memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    panels = [
        (axes[0][0], "first ingest, chunks/s", [("ingest_chunks_per_s", "Footnote"), ("recipe_chunks_per_s", "recipe")]),
        (axes[0][1], "retrieval, ms", [("retrieval_p50_ms", "hybrid p50"), ("retrieval_p95_ms", "hybrid p95"),
                                       ("retrieval_dense_p50_ms", "dense p50"), ("recipe_retrieval_p50_ms", "recipe p50")]),
        (axes[1][0], "seconds", [("app_start_s", "app start"), ("remove_doc_s", "remove large doc"),
                                 ("list_s", "ingest.py list"), ("reingest_changed_s", "re-ingest 1% changed")]),
        (axes[1][1], "resident memory, MB", [("ingest_peak_mb", "ingest peak"), ("app_rss_mb", "app after answers"),
                                             ("recipe_ingest_peak_mb", "recipe ingest peak")]),
    ]
    for ax, title, series in panels:
        for store, style in (("local", "-o"), ("server", "--s")):
            mine = sorted((r for r in rows if r["store"] == store), key=lambda r: r["chunks"])
            if not mine:
                continue
            for key, label in series:
                points = [(r["chunks"], r[key]) for r in mine if isinstance(r.get(key), (int, float))]
                if points:
                    ax.plot(*zip(*points), style, label=f"{label} ({store})")
        ax.set_xscale("log")
        if title in {"retrieval, ms", "seconds"}:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("chunks in the corpus")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(rows: list[Row], meta: dict[str, Any], chart_name: str) -> str:
    """The whole of benchmarks.md."""
    m = meta["machine"]
    out = [
        "# Benchmarks", "",
        "Generated by `python bench/run.py " + meta["argv"] + "`; do not edit by hand (rerun it).", "",
        (f"- Assembled {meta['finished']} at commit `{meta['commit']}` from rows of earlier runs (each table "
         "gives the commit and load average of its rows; the commands are under Notes)." if meta.get("report_only")
         else f"- Run: {meta['started']} to {meta['finished']}, commit `{meta['commit']}`."),
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; load average "
        f"{m['load'][0]} at the start, {meta['load_end'][0]} at the end of this command (the machine is shared: "
        "ratios measured side by side mean more than absolute figures).",
        f"- Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        f"- Footnote settings: defaults of this commit (embedding backend and index fingerprint "
        f"`{meta['fingerprint']}`)" + "".join(f", `FOOTNOTE_{k.upper()}={v}`" for k, v in meta.get("settings", {}).items())
        + ", with "
        "`FOOTNOTE_ANSWER__BACKEND=extractive` and `FOOTNOTE_LOCAL__JUDGE=off` for answers and the app.", "",
        "## Method", "",
        "- Corpus: synthetic, seeded (`--seed`), from an order-2 word Markov chain trained on `evals/corpus` "
        "and `corpus/`; document lengths log-normal (median 3 passages); one document holds a tenth of the "
        "corpus (removed at the end). Sizes are nominal Footnote chunks; the actual count is in each table.",
        "- Every Footnote figure comes from a fresh subprocess of the public CLI or API: `ingest.py --json` "
        "(first ingest, re-ingests, `remove`), `ingest.py list --json`, `bench/probe.py` (`rag.pipeline`: "
        f"{meta['questions']} development-set questions x 2 rounds for retrieval, {meta['answers']} answers), "
        "and `app.py` timed until its page answers HTTP, then asked through `/ask`.",
        "- First ingest: the data folder is first set up on a one-file corpus (model export for onnx, "
        "collection), so chunks/s is the real corpus's `chunks_embedded / seconds` from the JSON report, "
        "model load included; the recipe's figure likewise covers model load, read, split, embed and write. "
        "Wall times include interpreter start and imports. Peak RSS is the kernel's `ru_maxrss` of that child.",
        "- The recipe runs once per size on the local store; the same figures appear in both store columns. "
        "Above `--recipe-max-chunks` it runs on a prefix of the corpus and its rate is taken as the rate "
        "at the full size (marked *extrapolated*; its cost per chunk is embedding-bound and flat).",
        "- At sizes of `--cache-min-chunks` and more, the first ingest runs under `bench/cached_embed.py`: "
        "passage vectors computed by an earlier run come from `bench/out/cache/vectors` (git-ignored). "
        "Such rows say *vectors cached*: their chunks/s and ingest peak memory are those of the run that "
        "embedded (its date and commit shown), and the live ingest without embedding is given beside them. "
        "Everything after the first ingest is measured live. With `--standin-vectors`, passages missing "
        "from that cache get stand-in vectors (a cached real vector plus a little noise, normalised): "
        "Chroma and BM25 do the same work, but dense relevance is meaningless for those passages, so "
        "the row's answer figures (and refusals) are only indicative.", "",
        f"![cost against corpus size]({chart_name})", "",
        "## Targets of issue 12", "", *targets(rows), "",
    ]
    missing = meta.get("missing", [])
    if missing:
        out += ["**Not measured in this run:** " + "; ".join(missing), ""]
    for size in sorted({r["chunks"] for r in rows}):
        out += [f"## {size:,} chunks", "", table([r for r in rows if r["chunks"] == size]), ""]
    if meta.get("notes"):
        out += ["## Notes", "", *meta["notes"], ""]
    return "\n".join(out)


def write(rows: list[Row], meta: dict[str, Any], folder: Path) -> Path:
    """Write benchmarks.md and bench-scale.png into ``folder``; the markdown's path."""
    folder.mkdir(parents=True, exist_ok=True)
    chart(rows, folder / "bench-scale.png")
    path = folder / "benchmarks.md"
    path.write_text(markdown(rows, meta, "bench-scale.png"), encoding="utf-8")
    return path
