"""Run report sections on what happened to the documents: the overview, the funnel through
the stages, drop reasons, languages, duplicate clusters, lengths."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from gristmill.pipelines.report import charts as ch
from gristmill.pipelines.report.data import SMALLEST_BIN, report_rows
from gristmill.pipelines.report.examples import survivor_of


def _overview(d: dict) -> str:
    m, t = d["manifest"], d["run"].get("timings", {})
    inputs, counts = m.get("inputs", []), m.get("counts", {})
    cards = [
        ("input files", ch.count(len(inputs))),
        ("input bytes", ch.size(sum(i["bytes"] for i in inputs))),
        ("documents kept", ch.count(counts.get("documents", 0))),
        ("dropped", ch.count(counts.get("drops", 0))),
        ("dead letters", ch.count(counts.get("dead_letters", 0))),
        ("output files", ch.count(len(m.get("outputs", [])))),
    ] + ([("elapsed", ch.seconds(t["elapsed_s"]))] if "elapsed_s" in t else [])
    html = "".join(f'<div class="card"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in cards)
    return ch.section("overview", "Overview", f'<div class="cards">{html}</div>')


def _funnel(d: dict) -> str:
    stages = d["manifest"].get("stages", [])
    if not stages:
        return ""
    io = [(s, s.get("bytes_in", 0), s.get("bytes_kept", 0)) for s in stages]
    return ch.section(
        "funnel",
        "Documents and bytes through the stages",
        ch.grouped_bars(
            [(s["name"], [s["in"], s["kept"]]) for s in stages],
            ["in", "kept"],
            "Documents in and kept per stage",
        ),
        ch.grouped_bars(
            [(s["name"], [a, b]) for s, a, b in io],
            ["in", "kept"],
            "Bytes in and kept per stage",
            ch.size,
            axis="bytes",
        ),
        ch.table(
            ["stage", "in", "kept", "dropped", "bytes in", "bytes kept"],
            (
                (
                    s["name"],
                    ch.count(s["in"]),
                    ch.count(s["kept"]),
                    ch.count(sum(s["dropped"].values())),
                    ch.size(a),
                    ch.size(b),
                )
                for s, a, b in io
            ),
            (1, 2, 3, 4, 5),
        ),
        ch.note(
            "Bytes are UTF-8 text bytes, except what the read stage takes in: the input files as stored."
        ),
    )


def _drops(d: dict) -> str:
    stages = d["manifest"].get("stages", [])
    parts = []
    for s in (s for s in stages if s["dropped"]):
        by_reason: dict[str, dict[str, float]] = {r: {} for r in s["dropped"]}
        for source, entry in sorted(s.get("by_source", {}).items()):
            for reason, n in entry.get("dropped", {}).items():
                by_reason.setdefault(reason, {})[source] = n
        rows = sorted(by_reason.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        parts += [
            f"<h3>{escape(s['name'])}</h3>",
            ch.stacked_bars(rows, f"{s['name']}: drop reasons by source", axis="documents dropped"),
            ch.table(
                ["reason", "source", "documents"],
                ((r, src, ch.count(n)) for r, srcs in rows for src, n in sorted(srcs.items())),
                (2,),
            ),
            _drop_examples(d, s["name"], [r for r, _ in rows]),
        ]
    body = parts or [ch.note("No stage dropped a document.")]
    if parts:
        body.append(ch.note(EXAMPLES_NOTE))
    return ch.section("drops", "Drop reasons per stage and source", *body)


EXAMPLES_NOTE = (
    "Examples: the dropped document with the lowest id per reason. A release keeps no text of "
    "dropped documents: the example is its source, id and measured value, and for a duplicate "
    "the start of the text it repeats (the kept survivor's, after PII scrubbing, with emails, "
    "URLs and digit runs masked)."
)


def _short(doc_id: str) -> str:
    return doc_id if len(doc_id) <= 12 else doc_id[:12] + "…"


def _drop_examples(d: dict, stage: str, reasons: list[str]) -> str:
    """One example row per drop reason of a stage (pipelines/report/examples.py)."""
    found, texts = d.get("examples", {}).get("drops", {}), d.get("examples", {}).get("texts", {})
    rows = []
    for reason in reasons:
        row = found.get((stage, reason))
        if row is None:
            continue
        survivor = survivor_of(row.get("detail", ""))
        repeats = texts.get(survivor, "(not in this release)") if survivor else ""
        rows.append((reason, f"{row['source']} · {_short(row['id'])}", row["detail"], repeats))
    if not rows:
        return ""
    return ch.table(["reason", "example (source · id)", "detail", "repeats"], rows)


def _languages(d: dict) -> str:
    per_lang: dict[str, dict[str, float]] = {}
    rows = []
    for _, key, langs in report_rows(d, lambda k: k.startswith("languages/")):
        source = key.split("/", 1)[1]
        for lang, e in langs.items():
            per_lang.setdefault(lang, {})[source] = e.get("documents", 0)
            rows.append(
                (
                    lang,
                    source,
                    e.get("documents", 0),
                    e.get("kept", 0),
                    e.get("bytes", 0),
                )
            )
    if not per_lang:
        return ""
    top = sorted(per_lang.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:25]
    rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    return ch.section(
        "languages",
        "Language distribution",
        ch.stacked_bars(top, "Documents per identified language, by source", axis="documents"),
        ch.table(
            ["language", "source", "documents", "kept", "bytes"],
            ((a, b, ch.count(c), ch.count(k), ch.size(n)) for a, b, c, k, n in rows),
            (2, 3, 4),
        ),
    )


def _clusters(d: dict) -> str:
    parts = []
    texts = d.get("examples", {}).get("texts", {})
    for stage, _, sizes in report_rows(d, lambda k: k == "cluster_sizes"):
        keys = d["reports"][stage]
        removed, largest = (
            keys.get("removed_by_source") or {},
            keys.get("largest_clusters") or [],
        )
        title = f"{stage}: duplicate clusters by size (documents, survivor included)"
        parts += [
            f"<h3>{escape(stage)}</h3>",
            ch.histogram(
                [(k, [v]) for k, v in sizes.items()],
                ["clusters"],
                title,
                axes=("cluster size (documents)", "clusters"),
            )
            if sizes
            else ch.note("No duplicate clusters."),
            ch.bar_chart(
                sorted(removed.items()), f"{stage}: removed by source", axis="documents removed"
            )
            if removed
            else "",
            # the stage's own snippets are text from before the PII stage: the survivor's text
            # is read from documents/ instead (scrubbed), and masked again
            ch.table(
                ["largest clusters: survivor", "size", "text kept (start, masked)"],
                (
                    (_short(c["survivor"]), ch.count(c["size"]), texts.get(c["survivor"], ""))
                    for c in largest
                ),
                (1,),
            )
            if largest
            else "",
        ]
    return ch.section("clusters", "Duplicate clusters", *parts) if parts else ""


def _lengths(d: dict) -> str:
    named = [
        ("before (read)", d["lengths"]["before"]),
        ("after (documents/)", d["lengths"]["after"]),
    ]
    named = [(n, {int(k): v for k, v in h.items()}) for n, h in named if h]
    if not named:
        return ""
    bins = sorted({b for _, h in named for b in h})
    rows = [
        (
            f"<{ch.binary_size(SMALLEST_BIN)}" if b == 0 else ch.binary_size(b),
            [h.get(b, 0) for _, h in named],
        )
        for b in bins
    ]
    missing = (
        "" if d["lengths"]["before"] else ch.note("No read-stage length histogram in this release.")
    )
    return ch.section(
        "lengths",
        "Document lengths (UTF-8 bytes, power-of-two bins)",
        ch.histogram(
            rows,
            [n for n, _ in named],
            "Documents per length bin",
            axes=("length (UTF-8 bytes, bin's lower bound)", "documents"),
        ),
        missing,
    )


# (anchor, section of the report data) in page order; a section without data draws as ""
SECTIONS: list[tuple[str, Callable[[dict], str]]] = [
    ("overview", _overview),
    ("funnel", _funnel),
    ("drops", _drops),
    ("languages", _languages),
    ("clusters", _clusters),
    ("lengths", _lengths),
]
