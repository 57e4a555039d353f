"""Run report sections on what the release holds and how it was made: tokens, files and
shards, the privacy summary, timings, inputs and dead letters, other stage rows, the config."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from html import escape

from gristmill.pipelines.report import charts as ch
from gristmill.pipelines.report.data import LENGTHS, report_rows, rows_of, stages_with

LISTED = 5000  # files listed one by one; the manifest lists them all


def _tokens(d: dict) -> str:
    tok = d["manifest"].get("tokenizer")
    parts = [ch.table(["tokenizer", "value"], sorted(tok.items()))] if tok else []
    for stage, _, info in report_rows(d, lambda k: k == "tokenizer"):
        parts.append(
            ch.table(
                [f"{stage}: tokenizer", "value"],
                sorted(
                    (k, json.dumps(v) if isinstance(v, dict | list) else v) for k, v in info.items()
                ),
            )
        )
    splits = {k[6:]: v for _, k, v in report_rows(d, lambda k: k.startswith("split:"))}
    if splits:
        fields = sorted({f for v in splits.values() for f in v})
        cells = ((s, *(ch.count(v.get(f, 0)) for f in fields)) for s, v in sorted(splits.items()))
        parts.append(ch.table(["split", *fields], cells, tuple(range(1, len(fields) + 1))))
        parts.append(
            ch.bar_chart(
                [(s, v.get("tokens", 0)) for s, v in sorted(splits.items())],
                "Tokens per split",
                axis="tokens",
            )
        )
    parts += _validation_warning(d) + _tokens_by_source(d)
    return ch.section("tokens", "Tokens", *parts) if parts else ""


def _validation_warning(d: dict) -> list[str]:
    """The training step's warning when the validation split is empty or under its share."""
    out = []
    for _, _, info in report_rows(d, lambda k: k == "validation"):
        if isinstance(info, dict) and info.get("warning"):
            out.append(ch.warning(f"Validation split: {info['warning']}"))
        elif isinstance(info, dict) and "share" in info:
            out.append(
                ch.note(
                    f"Validation split: {info['share']:.2%} of the tokens "
                    f"({ch.count(info.get('documents', 0))} documents; asked at least "
                    f"{info.get('min_share', 0):.2%})."
                )
            )
    return out


def _by_total(row: tuple[str, dict[str, float]]) -> tuple[float, str]:
    return -sum(row[1].values()), row[0]


def _tokens_by_source(d: dict) -> list[str]:
    """Tokens per source (by language) and per language (by source), from the shards' rows."""
    per_source: dict[str, dict[str, float]] = {}
    per_lang: dict[str, dict[str, float]] = {}
    for _, _, table in report_rows(d, lambda k: k == "tokens_by_source"):
        for source, langs in (table or {}).items():
            for lang, e in langs.items():
                n = e.get("tokens", 0) if isinstance(e, dict) else 0
                per_source.setdefault(source, {})[lang or "und"] = n
                per_lang.setdefault(lang or "und", {})[source] = n
    if not per_source:
        return []
    return [
        ch.stacked_bars(
            sorted(per_source.items(), key=_by_total),
            "Tokens per source, by language",
            axis="tokens",
        ),
        ch.stacked_bars(
            sorted(per_lang.items(), key=_by_total)[:25],
            "Tokens per language, by source",
            axis="tokens",
        ),
    ]


def _shards(d: dict) -> str:
    outputs = d["manifest"].get("outputs", [])
    tokens = {
        k: v["tokens"]
        for _, k, v in report_rows(d, lambda k: "/" in k)
        if isinstance(v, dict) and "tokens" in v
    }
    by_dir: dict[str, list[dict]] = {}
    for o in outputs:
        by_dir.setdefault(
            o["path"].split("/", 1)[0] if "/" in o["path"] else "(top level)", []
        ).append(o)
    summary = (
        (
            k,
            len(v),
            ch.count(sum(o["rows"] for o in v)),
            ch.size(sum(o["bytes"] for o in v)),
        )
        for k, v in sorted(by_dir.items())
    )
    listing = (
        (
            o["path"],
            ch.count(o["rows"]),
            ch.size(o["bytes"]),
            ch.count(tokens[o["path"]]) if o["path"] in tokens else "",
            o["sha256"][:16] + "…",
        )
        for o in outputs[:LISTED]
    )
    return ch.section(
        "shards",
        "Files and shards",
        ch.table(["folder", "files", "rows", "bytes"], summary, (1, 2, 3)),
        f"<details><summary>All {len(outputs)} files</summary>"
        + ch.table(["file", "rows", "bytes", "tokens", "sha256"], listing, (1, 2, 3))
        + "</details>",
        ch.note(f"{len(outputs) - LISTED} more files are listed in manifest.json.")
        if len(outputs) > LISTED
        else "",
    )


def _pii_by(d: dict) -> tuple[dict[str, int], dict[str, dict], dict]:
    """(findings per entity type, per-source summary, residual scan) from reports/privacy.json,
    else from the pii stage's own report rows."""
    priv, rows = d["privacy"] or {}, rows_of(d, "privacy")
    sources = priv.get("sources") or rows.get("sources") or {}
    by_type: Counter[str] = Counter()
    for src in sources.values():
        for kind, ent in (src.get("entities") or {}).items():
            by_type[kind] += ent.get("findings", 0)
    return dict(by_type), sources, priv.get("residual") or rows.get("residual") or {}


def _privacy(d: dict) -> str:
    link = '<p><a href="privacy.html">Open the privacy report (privacy.html)</a></p>'
    by_type, sources, residual = _pii_by(d)
    if not (d["privacy"] or rows_of(d, "privacy") or d["privacy_html"]):
        return ch.section(
            "privacy", "Privacy summary", ch.note("No stage scanned for personal data.")
        )
    per_source = (
        (
            s,
            ch.count(v.get("documents", 0)),
            ch.count(v.get("documents_with_findings", 0)),
            ch.count(sum(e.get("findings", 0) for e in (v.get("entities") or {}).values())),
        )
        for s, v in sorted(sources.items())
    )
    verdict = [
        (k, residual[k])
        for k in ("verdict", "pattern_findings", "other_findings", "note")
        if residual.get(k) not in (None, "")
    ]
    return ch.section(
        "privacy",
        "Privacy summary",
        link if d["privacy_html"] else "",
        ch.bar_chart(
            sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0])),
            "Findings removed, by entity type",
            axis="findings",
        )
        if by_type
        else "",
        ch.table(["source", "documents", "with findings", "findings"], per_source, (1, 2, 3))
        if sources
        else "",
        ch.table(["residual scan", "value"], verdict) if verdict else "",
        ch.note("Counts only: the masked examples are in privacy.html."),
    )


def _timings(d: dict) -> str:
    t = d["run"].get("timings", {})
    stages = t.get("stages") if isinstance(t.get("stages"), dict) else {}
    if not t:
        return ""
    notes = ("stages_note", "phase_peak_note")
    return ch.section(
        "timings",
        "Timings",
        ch.table(
            ["timing", "value"],
            sorted((k, v) for k, v in t.items() if not isinstance(v, dict) and k not in notes),
        ),
        _phases(t),
        ch.bar_chart(list(stages.items()), "Seconds per stage", ch.seconds, axis="seconds")
        if stages
        else "",
        ch.note(
            t.get(
                "stages_note",
                "Time spent inside each stage's transforms, summed over workers.",
            )
        )
        if stages
        else "",
    )


def _phases(t: dict) -> str:
    """A local run's phases: wall seconds and the peak resident memory of a process in each."""
    phases, peaks = t.get("phases") or {}, t.get("phase_peak_mb") or {}
    if not phases:
        return ""
    rows = [(name, secs, peaks.get(name, "")) for name, secs in phases.items()]
    return ch.table(["phase", "seconds", "peak MB"], rows) + (
        ch.note(t["phase_peak_note"]) if t.get("phase_peak_note") else ""
    )


def _inputs(d: dict) -> str:
    per: dict[str, Counter] = {}
    for i in d["manifest"].get("inputs", []):
        per.setdefault(i["source"], Counter()).update(
            files=1,
            bytes=i["bytes"],
            records=i.get("records", 0),
            dead=i.get("dead_letters", 0),
        )
    rows = (
        (
            s,
            ch.count(c["files"]),
            ch.size(c["bytes"]),
            ch.count(c["records"]),
            ch.count(c["dead"]),
        )
        for s, c in sorted(per.items())
    )
    dead = d["dead_letters"]
    return ch.section(
        "inputs",
        "Inputs and dead letters",
        ch.table(["source", "files", "bytes", "records", "dead letters"], rows, (1, 2, 3, 4)),
        ch.table(["source", "error", "dead letters"], dead, (2,))
        if dead
        else ch.note("No dead letters: every input record could be read."),
    )


def _refresh(d: dict) -> str:
    """A refresh: where the older documents live and what this run left out as already there."""
    r = d["manifest"].get("refresh")
    if not r:
        return ""
    present = r.get("already_present", {})
    rows = [
        ("parent release", r.get("parent", "")),
        ("lineage (nearest first)", " · ".join(r.get("lineage", []))),
        ("tokenizer", r.get("tokenizer", "")),
        ("inputs read", ch.count(r.get("inputs_read", 0))),
        ("inputs skipped (read by an earlier release)", ch.count(len(r.get("inputs_skipped", [])))),
        ("documents added", ch.count(r.get("documents_added", 0))),
        ("already present: exact", ch.count(present.get("exact", 0))),
        ("already present: near", ch.count(present.get("near", 0))),
    ]
    return ch.section("refresh", "Refresh", ch.table(["", ""], rows))


def _other(d: dict) -> str:
    parts = []
    private = set(stages_with("privacy"))  # the privacy section and privacy.html speak for them
    for stage, keys in sorted(d["reports"].items()):
        if stage in private:
            continue
        rest = {
            k: v
            for k, v in keys.items()
            if k not in SHOWN and not k.startswith(("languages/", "split:")) and "/" not in k
        }
        if rest:
            parts.append(f"<h3>{escape(stage)}</h3>" + ch.key_values(stage, rest))
    return ch.section("other", "Other stage reports", *parts) if parts else ""


SHOWN = {
    LENGTHS,
    "cluster_sizes",
    "removed_by_source",
    "largest_clusters",
    "tokenizer",
    "tokens_by_source",
    "validation",
}


def _config(d: dict) -> str:
    m, run = d["manifest"], d["run"]
    info = [
        ("gristmill", m.get("gristmill_version", "")),
        ("schema version", m.get("schema_version", "")),
        ("config sha256", m.get("config_sha256", "")),
        ("seeds", json.dumps(m.get("seeds", {}))),
        ("runner", json.dumps(run.get("runner", {}))),
        ("created", m.get("created_at", "")),
    ]
    config = json.dumps(m.get("config", {}), indent=2, ensure_ascii=False)
    return ch.section(
        "config",
        "Configuration and versions",
        ch.table(["release", "value"], info),
        ch.table(["package", "version"], sorted(m.get("versions", {}).items())),
        f"<details><summary>Job configuration</summary><pre>{escape(config)}</pre></details>",
    )


# (anchor, section of the report data) in page order; a section without data draws as ""
SECTIONS: list[tuple[str, Callable[[dict], str]]] = [
    ("tokens", _tokens),
    ("shards", _shards),
    ("privacy", _privacy),
    ("timings", _timings),
    ("inputs", _inputs),
    ("refresh", _refresh),
    ("other", _other),
    ("config", _config),
]
