"""The privacy report: `reports/privacy.json` and a self-contained `reports/privacy.html`.

Built by the driver after the pipeline, from the pii stage's report rows (counts, score
histograms, masked examples, the residual scan; see `transforms/pii/report_rows.py`) and the
findings files' row counts: per source and entity type, documents scanned and with findings,
findings and findings per MB; scores; examples whose replaced spans are `<TYPE>` placeholders
and other words shapes; what was scanned (fields, mode, salt status: the salt only as a
fingerprint); the bench's measured precision and recall per type for the run's mode
(`transforms/pii/measured.py`); models and versions; and the residual re-scan of a sample.
Nothing in either file is a value from the corpus.
"""

from __future__ import annotations

import html
import json
import posixpath
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill import __version__
from gristmill.pipelines.report.data import stages_with
from gristmill.pipelines.report.privacy_residual import (
    residual_summary,
    scanned,
    shaped_examples,
)
from gristmill.schemas.tables import FINDINGS_DIR
from gristmill.transforms.pii import measured


def _per_mb(count: int, nbytes: int) -> float:
    return round(count / (nbytes / 1e6), 3) if nbytes else 0.0


def _write(path: str, text: str) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(text.encode("utf-8"))


def findings_files(root: str) -> list[dict[str, Any]]:
    """The findings shards under `root/pii/` with their row counts (from Parquet metadata)."""
    import pyarrow.parquet as pq

    pattern = posixpath.join(root, FINDINGS_DIR, "findings-*.parquet")
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception:
        return []
    out = []
    for meta in sorted(matched, key=lambda m: m.path):
        with FileSystems.open(meta.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            rows = pq.ParquetFile(fh).metadata.num_rows
        out.append(
            {"path": posixpath.relpath(meta.path, root), "rows": rows, "bytes": meta.size_in_bytes}
        )
    return out


def _recorded_section(config: dict) -> dict:
    """The privacy stage's section as recorded (the manifest's config holds it so already)."""
    from gristmill.pipelines import registry

    for stage in registry.stages():
        if "privacy" in stage.report and isinstance(config.get(stage.section), dict):
            return config[stage.section]
    return {}


def build_report(rows: list, config: dict, findings: list[dict] | None = None) -> dict[str, Any]:
    """The privacy report as a dict, from the pii stage's report rows."""
    names = set(stages_with("privacy"))
    values = {key: value for stage, key, value in rows if stage in names}
    sources = values.get("sources", {})
    pii_config = values.get("config") or _recorded_section(config)
    mode = (pii_config or {}).get("mode", "fast")
    totals: dict[str, Any] = {"documents": 0, "documents_with_findings": 0, "documents_failed": 0}
    totals.update({"bytes": 0, "findings": 0, "errors": {}})
    by_type: dict[str, dict[str, int]] = {}
    out_sources = {}
    for name in sorted(sources):
        src = sources[name]
        for key in ("documents", "documents_with_findings", "documents_failed", "bytes"):
            totals[key] += src.get(key, 0)
        for group, n in src.get("errors", {}).items():
            totals["errors"][group] = totals["errors"].get(group, 0) + n
        entities = {}
        for kind in sorted(src.get("entities", {})):
            ent = src["entities"][kind]
            entities[kind] = {**ent, "per_mb": _per_mb(ent["findings"], src["bytes"])}
            agg = by_type.setdefault(
                kind, {"findings": 0, "documents": 0, "score_histogram": [0] * 10}
            )
            agg["findings"] += ent["findings"]
            agg["documents"] += ent["documents"]
            agg["score_histogram"] = [
                a + b for a, b in zip(agg["score_histogram"], ent["score_histogram"], strict=True)
            ]
            totals["findings"] += ent["findings"]
        out_sources[name] = {
            **{k: v for k, v in src.items() if k != "entities"},
            "findings": sum(e["findings"] for e in entities.values()),
            "entities": entities,
        }
    totals["findings_per_mb"] = _per_mb(totals["findings"], totals["bytes"])
    totals["by_type"] = {
        k: {**v, "per_mb": _per_mb(v["findings"], totals["bytes"])}
        for k, v in sorted(by_type.items())
    }
    files, what = findings if findings is not None else [], scanned(pii_config or {})
    rows_in_files = sum(f["rows"] for f in files)
    return {
        "gristmill_version": __version__,
        "mode": mode,
        "engine": values.get("engine", {}),
        "config": pii_config or {},
        "totals": totals,
        "sources": out_sources,
        "scanned": what,
        "measured": measured.for_run(mode, what["entities"] + what["ner_entities"]),
        "examples": shaped_examples(values.get("examples", {})),
        "residual": residual_summary(values.get("residual"), mode, totals["documents"]),
        "findings_files": files,
        "checks": {
            "findings_rows": rows_in_files,
            "findings_counted": totals["findings"],
            "findings_match": rows_in_files == totals["findings"] if files else None,
        },
    }


def write_privacy_report(root: str, rows: list, config: dict) -> None:
    """Writes reports/privacy.json and reports/privacy.html under the release `root`.

    `rows` are the run's report rows (stage, key, value) — other stages' rows are ignored;
    `config` is the job config (or its pii section), used only if the rows lack the stage's
    recorded config.
    """
    report = build_report(list(rows), config, findings_files(root))
    _write(
        posixpath.join(root, "reports", "privacy.json"),
        json.dumps(report, indent=2, ensure_ascii=False) + "\n",
    )
    _write(posixpath.join(root, "reports", "privacy.html"), render_html(report))


# -- HTML ----------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:64rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d5dae3;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;width:100%}th,td{padding:.25rem .6rem;border-bottom:1px solid #e6e9ef;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f5f8;font-weight:600}
.pass{color:#0a7a3b;font-weight:700}.fail{color:#b3261e;font-weight:700}.muted{color:#667085}
.ex{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:#f6f7f9;padding:.3rem .5rem;margin:.2rem 0;border-radius:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:1rem}
.card{border:1px solid #e6e9ef;border-radius:6px;padding:.6rem}.kv td{text-align:left}
@media (max-width:40rem){table{display:block;overflow-x:auto}body{margin:1rem auto}}
pre,.ex{overflow-x:auto;overflow-wrap:anywhere}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _bars(values: dict[str, float], width: int = 560, unit: str = "") -> str:
    """A horizontal bar chart as inline SVG."""
    if not values:
        return '<p class="muted">none</p>'
    top = max(values.values()) or 1
    row, label_w = 22, 150
    height = row * len(values) + 6
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'style="max-width:100%;height:auto">'
    ]
    for i, (name, v) in enumerate(values.items()):
        y = 3 + i * row
        w = max(1, int((width - label_w - 90) * v / top))
        parts.append(f'<text x="0" y="{y + 15}" font-size="12">{_e(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="15" fill="#3b6fd8"/>')
        parts.append(
            f'<text x="{label_w + w + 6}" y="{y + 15}" font-size="12">{_e(v)}{_e(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _histogram(bins: list[int], width: int = 230, height: int = 90) -> str:
    """Score histogram (ten bins from 0 to 1) as inline SVG, with a counted y-axis (0, half,
    the top) so bar heights read as numbers; scales down to its card on a narrow screen."""
    top = max(bins) or 1
    left, label_h = 40, 30  # room for the y ticks and the rotated label; the x ticks below
    plot_w = width - left - 4
    bar = plot_w / len(bins)
    full = height + label_h
    parts = [
        f'<svg width="{width}" height="{full}" viewBox="0 0 {width} {full}" role="img" '
        'style="max-width:100%;height:auto" font-size="10">',
        f'<line x1="{left}" y1="8" x2="{left}" y2="{height}" stroke="#667"/>',
        f'<line x1="{left}" y1="{height}" x2="{width - 4}" y2="{height}" stroke="#667"/>',
        f'<text x="9" y="{(8 + height) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 9 {(8 + height) / 2:.0f})">findings</text>',
    ]
    for value in sorted({0, top // 2, top}):
        y = height - (height - 8) * value / top
        parts.append(f'<line x1="{left - 3}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#667"/>')
        parts.append(
            f'<text x="{left - 5}" y="{y + 3.5:.1f}" text-anchor="end">{_e(f"{value:,}")}</text>'
        )
    for i, n in enumerate(bins):
        h = (height - 8) * n / top
        parts.append(
            f'<rect x="{left + i * bar + 1:.1f}" y="{height - h:.1f}" width="{bar - 2:.1f}" '
            f'height="{h:.1f}" fill="#7a5af5"><title>{i / 10:.1f}–{(i + 1) / 10:.1f}: {n}'
            "</title></rect>"
        )
    for x, tick in ((left, "0"), (left + plot_w / 2, "0.5"), (width - 4, "1.0")):
        anchor = "start" if tick == "0" else "end" if tick == "1.0" else "middle"
        parts.append(f'<text x="{x:.1f}" y="{height + 12}" text-anchor="{anchor}">{tick}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{full - 3}" text-anchor="middle">score</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _totals_html(report: dict[str, Any]) -> list[str]:
    """Recognizer errors, if any."""
    errors = sorted(report["totals"]["errors"].items())
    return (
        ["<h3>Recognizer errors</h3>", _table(["recognizer group", "errors"], errors)]
        if errors
        else []
    )


def _scanned_html(report: dict[str, Any]) -> list[str]:
    """What was scanned, in which mode, and the salt's status."""
    sc = report.get("scanned") or {}
    if not sc:
        return []
    rows = [
        ["fields scrubbed", ", ".join(sc["fields"])],
        ["not scanned by this stage", sc["not_scanned_here"]],
        ["mode", sc["mode"]],
        ["pattern entity types", ", ".join(sc["entities"])],
        ["NER entity types", ", ".join(sc["ner_entities"]) or "none (fast mode)"],
        ["HMAC salt", sc["salt"]["status"]],
        ["salt fingerprint", sc["salt"]["fingerprint"]],
    ]
    return ["<h2>What was scanned</h2>", _table(["", ""], rows)]


def _measured_html(report: dict[str, Any]) -> list[str]:
    """The bench's precision and recall per type for this mode: not figures of this run."""
    if not (m := report.get("measured")):
        return []
    out = ["<h2>Measured precision and recall (bench, labelled sample)</h2>",
           f'<p class="muted">{_e(m["note"])}; mode {_e(m["mode"])}, commit '
           f"{_e(m['commit'] or 'unknown')}, {_e(m['date'] or 'undated')}.</p>"]  # fmt: skip
    if not m["by_type"]:
        return [*out, f"<p>No figures measured for mode {_e(m['mode'])}.</p>"]
    out.append(_table(list(measured.HEADERS), measured.table_rows(m)))
    samples = (m.get("sample") or {}).items()
    out.extend(f'<p class="muted">{_e(k)}: {_e(v)}</p>' for k, v in samples if isinstance(v, str))
    return out


def _residual_html(report: dict[str, Any]) -> list[str]:
    """The residual re-scan of scrubbed documents and its verdict."""
    r = report["residual"]
    verdict_class = {"pass": "pass", "fail": "fail"}.get(r["verdict"], "muted")
    out: list[str] = []
    out.append("<h2>Residual scan</h2>")
    out.append(
        f'<p>Verdict: <span class="{verdict_class}">{_e(r["verdict"])}</span> — '
        f"{_e(r.get('documents', 0))} scrubbed documents ({_e(round(r.get('bytes', 0) / 1e6, 3))} MB, "
        f"sample rate {_e(r.get('sample_rate', ''))}) scanned again in full mode without the pre-screen; "
        f"pattern entities left: {r['pattern_findings']}, names/places left: {r['other_findings']}.</p>"
    )
    if r.get("bound"):
        out.append(f"<p>{_e(r['bound'])}.</p>")
    if r.get("note"):
        out.append(f'<p class="muted">{_e(r["note"])}</p>')
    if r.get("findings"):
        out.append(
            _table(
                ["entity type", "residual findings", "per MB"],
                [[k, v, r["per_mb"].get(k, 0)] for k, v in sorted(r["findings"].items())],
            )
        )
    return out


def _sources_html(report: dict[str, Any]) -> list[str]:
    """Findings per source."""
    out: list[str] = []
    out.append("<h2>Per source</h2>")
    for name, src in report["sources"].items():
        out.append(f"<h3>{_e(name)}</h3>")
        out.append(
            f'<p class="muted">{src["documents"]} documents, {src["documents_with_findings"]} with findings, '
            f"{src['bytes'] / 1e6:.3f} MB, {src['findings']} findings</p>"
        )
        out.append(
            _table(
                ["entity type", "findings", "documents", "per MB"],
                [
                    [k, e["findings"], e["documents"], e["per_mb"]]
                    for k, e in src["entities"].items()
                ],
            )
        )
    return out


def _details_html(report: dict[str, Any]) -> list[str]:
    """Score histograms, redacted examples, the config and engine."""
    t = report["totals"]
    out: list[str] = []
    out.append('<h2>Score histograms</h2><div class="grid">')
    for kind, v in t["by_type"].items():
        out.append(
            f'<div class="card"><b>{_e(kind)}</b><br>{_histogram(v["score_histogram"])}</div>'
        )
    out.append("</div>")
    out.append("<h2>Examples (scrubbed, every word but placeholders shown as its shape)</h2>")
    for source, kinds in report["examples"].items():
        for kind, contexts in kinds.items():
            out.append(f"<p><b>{_e(source)}</b> · {_e(kind)}</p>")
            out.extend(f'<div class="ex">{_e(c)}</div>' for c in contexts)
    out.append("<h2>Configuration and models</h2>")
    out.append(
        _table(
            ["setting", "value"],
            [[k, json.dumps(v, ensure_ascii=False)] for k, v in sorted(report["config"].items())],
        )
    )
    out.append(
        _table(
            ["component", "version"],
            [[k, json.dumps(v, ensure_ascii=False)] for k, v in sorted(report["engine"].items())],
        )
    )
    if report["findings_files"]:
        out.append("<h3>Findings files</h3>")
        out.append(
            _table(
                ["path", "rows", "bytes"],
                [[f["path"], f["rows"], f["bytes"]] for f in report["findings_files"]],
            )
        )
    return out


SUMMARY = {
    "documents": "documents scanned",
    "documents_with_findings": "with findings",
    "documents_failed": "not scannable (dropped)",
    "findings": "findings",
    "findings_per_mb": "findings per MB",
}


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page: inline CSS and SVG, no scripts, no external references."""
    t = report["totals"]
    out = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>gristmill privacy report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Privacy report</h1>",
        f'<p class="muted">gristmill {_e(report["gristmill_version"])} · mode <b>{_e(report["mode"])}</b> · '
        f"{t['documents']} documents, {t['bytes'] / 1e6:.2f} MB scanned</p>",
        "<h2>Summary</h2>",
        _table(list(SUMMARY.values()), [[t[k] for k in SUMMARY]]),
        "<h3>Findings per MB by entity type</h3>",
        _bars({k: v["per_mb"] for k, v in t["by_type"].items()}, unit=" /MB"),
        _table(
            ["entity type", "findings", "documents", "per MB"],
            [[k, v["findings"], v["documents"], v["per_mb"]] for k, v in t["by_type"].items()],
        ),
    ]
    for part in (_scanned_html, _measured_html, _totals_html, _residual_html, _sources_html):
        out.extend(part(report))
    return "\n".join([*out, *_details_html(report), "</body></html>\n"])
