"""The run report (reports/run.html): built only from what the release holds.

Everything on the page comes from the release's own files — manifest.json, reports/run.json
(stage counts, the stages' report rows, timings), reports/privacy.json, and the Parquet tables
for what no row recorded — so `gristmill report RELEASE` rebuilds it at any time, and a section
whose stage did not run is simply left out.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import sys
from collections import Counter
from html import escape
from typing import Any

import apache_beam as beam
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines import report_charts as ch
from gristmill.transforms.accounting import text_bytes

RUN_HTML = "reports/run.html"
LENGTHS = "length_histogram"  # report key of a document-length histogram
BEFORE, AFTER = "read", "documents"  # stage_reports[...] that hold the before/after histograms
SCAN_LIMIT = 4 << 30  # above this many bytes of documents/, lengths come only from report rows
SMALLEST_BIN = 64
LISTED = 5000  # files listed one by one; the manifest lists them all


# ---- document lengths: one binning for the pipeline row and the fallback scan ---------------


def length_bin(nbytes: int) -> int:
    """Lower bound of the power-of-two bin of a UTF-8 length; everything under 64 bytes is 0."""
    return 0 if nbytes < SMALLEST_BIN else 1 << (int(nbytes).bit_length() - 1)


class LengthHistogram(beam.PTransform):
    """Documents -> one report row `(stage, "length_histogram", {bin lower bound: documents})`."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def expand(self, docs):
        stage = self.stage
        return (
            docs
            | "Bin" >> beam.Map(lambda d: (length_bin(text_bytes(d.text)), 1))
            | "Count" >> beam.CombinePerKey(sum)
            | "Gather" >> beam.combiners.ToList()
            | "Row" >> beam.Map(lambda bins: (stage, LENGTHS, {str(k): n for k, n in sorted(bins)}))
        )


# ---- reading the release ---------------------------------------------------------------------


def _join(root: str, rel: str) -> str:
    return posixpath.join(root, rel)


def _exists(root: str, rel: str) -> bool:
    return FileSystems.exists(_join(root, rel))


def read_json(root: str, rel: str) -> Any:
    if not _exists(root, rel):
        return None
    with FileSystems.open(_join(root, rel), compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return json.loads(fh.read().decode("utf-8"))


def _parquet_files(manifest: dict, prefix: str) -> list[dict]:
    return [o for o in manifest.get("outputs", []) if o["path"].startswith(prefix + "/")]


def _scan_lengths(root: str, manifest: dict) -> dict[str, int] | None:
    files = [o for o in _parquet_files(manifest, "documents") if o["path"].endswith(".parquet")]
    if not files or sum(o["bytes"] for o in files) > SCAN_LIMIT:
        return None
    bins: Counter[int] = Counter()
    for entry in files:
        path = _join(root, entry["path"])
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for batch in pq.ParquetFile(fh).iter_batches(columns=["text"], batch_size=4096):
                lengths = pc.binary_length(batch.column(0)).to_numpy(zero_copy_only=False)
                bins.update(length_bin(int(n)) for n in lengths)
    return {str(k): n for k, n in sorted(bins.items())}


def _dead_letter_counts(root: str, manifest: dict) -> list[tuple[str, str, int]]:
    counts: Counter[tuple[str, str]] = Counter()
    for entry in _parquet_files(manifest, "dead_letters"):
        if not entry.get("rows"):
            continue
        path = _join(root, entry["path"])
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            table = pq.read_table(fh, columns=["source", "error"])
        counts.update(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    return [(s, e, n) for (s, e), n in sorted(counts.items())]


def collect(root: str, manifest: dict | None = None) -> dict[str, Any]:
    """The report's data, from the release files (`manifest` when it is not on disk yet)."""
    manifest = manifest if manifest is not None else read_json(root, "manifest.json")
    if manifest is None:
        raise FileNotFoundError(f"{_join(root, 'manifest.json')}: not a complete release")
    run = read_json(root, "reports/run.json") or {}
    reports = run.get("stage_reports", {})
    after = reports.get(AFTER, {}).get(LENGTHS)
    return {
        "root": root,
        "manifest": manifest,
        "run": run,
        "reports": reports,
        "lengths": {
            "before": reports.get(BEFORE, {}).get(LENGTHS),
            "after": after if after is not None else _scan_lengths(root, manifest),
        },
        "dead_letters": _dead_letter_counts(root, manifest),
        "privacy": read_json(root, "reports/privacy.json"),
        "privacy_html": _exists(root, "reports/privacy.html"),
    }


# ---- sections ----------------------------------------------------------------------------------


def _rows(d: dict, test) -> list[tuple[str, str, Any]]:
    """(stage, key, value) of the report rows whose key passes `test`."""
    return [
        (s, k, v) for s, keys in sorted(d["reports"].items()) for k, v in keys.items() if test(k)
    ]


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


def _funnel(stages: list[dict]) -> str:
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


def _drops(stages: list[dict]) -> str:
    parts = []
    for s in (s for s in stages if s["dropped"]):
        by_reason: dict[str, dict[str, float]] = {r: {} for r in s["dropped"]}
        for source, entry in sorted(s.get("by_source", {}).items()):
            for reason, n in entry.get("dropped", {}).items():
                by_reason.setdefault(reason, {})[source] = n
        rows = sorted(by_reason.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        parts += [
            f"<h3>{escape(s['name'])}</h3>",
            ch.stacked_bars(rows, f"{s['name']}: drop reasons by source"),
            ch.table(
                ["reason", "source", "documents"],
                ((r, src, ch.count(n)) for r, srcs in rows for src, n in sorted(srcs.items())),
                (2,),
            ),
        ]
    body = parts or [ch.note("No stage dropped a document.")]
    return ch.section("drops", "Drop reasons per stage and source", *body)


def _languages(d: dict) -> str:
    per_lang: dict[str, dict[str, float]] = {}
    rows = []
    for _, key, langs in _rows(d, lambda k: k.startswith("languages/")):
        source = key.split("/", 1)[1]
        for lang, e in langs.items():
            per_lang.setdefault(lang, {})[source] = e.get("documents", 0)
            rows.append((lang, source, e.get("documents", 0), e.get("kept", 0), e.get("bytes", 0)))
    if not per_lang:
        return ""
    top = sorted(per_lang.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:25]
    rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    return ch.section(
        "languages",
        "Language distribution",
        ch.stacked_bars(top, "Documents per identified language, by source"),
        ch.table(
            ["language", "source", "documents", "kept", "bytes"],
            ((a, b, ch.count(c), ch.count(k), ch.size(n)) for a, b, c, k, n in rows),
            (2, 3, 4),
        ),
    )


def _dedup(d: dict) -> str:
    parts = []
    for stage, _, sizes in _rows(d, lambda k: k == "cluster_sizes"):
        keys = d["reports"][stage]
        removed, largest = keys.get("removed_by_source") or {}, keys.get("largest_clusters") or []
        title = f"{stage}: duplicate clusters by size (documents, survivor included)"
        parts += [
            f"<h3>{escape(stage)}</h3>",
            ch.histogram([(k, [v]) for k, v in sizes.items()], ["clusters"], title)
            if sizes
            else ch.note("No duplicate clusters."),
            ch.bar_chart(sorted(removed.items()), f"{stage}: removed by source") if removed else "",
            # survivors and sizes only: the snippets are text from before the PII stage
            ch.table(
                ["largest clusters: survivor", "size"],
                ((c["survivor"], ch.count(c["size"])) for c in largest),
                (1,),
            )
            if largest
            else "",
        ]
    return ch.section("dedup", "Duplicate clusters", *parts) if parts else ""


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
        ch.histogram(rows, [n for n, _ in named], "Documents per length bin"),
        missing,
    )


def _tokens(d: dict) -> str:
    tok = d["manifest"].get("tokenizer")
    parts = [ch.table(["tokenizer", "value"], sorted(tok.items()))] if tok else []
    for stage, _, info in _rows(d, lambda k: k == "tokenizer"):
        parts.append(
            ch.table(
                [f"{stage}: tokenizer", "value"],
                sorted(
                    (k, json.dumps(v) if isinstance(v, dict | list) else v) for k, v in info.items()
                ),
            )
        )
    splits = {k[6:]: v for _, k, v in _rows(d, lambda k: k.startswith("split:"))}
    if splits:
        fields = sorted({f for v in splits.values() for f in v})
        cells = ((s, *(ch.count(v.get(f, 0)) for f in fields)) for s, v in sorted(splits.items()))
        parts.append(ch.table(["split", *fields], cells, tuple(range(1, len(fields) + 1))))
        parts.append(
            ch.bar_chart(
                [(s, v.get("tokens", 0)) for s, v in sorted(splits.items())], "Tokens per split"
            )
        )
    return ch.section("tokens", "Tokens", *parts) if parts else ""


def _shards(d: dict) -> str:
    outputs = d["manifest"].get("outputs", [])
    tokens = {
        k: v["tokens"]
        for _, k, v in _rows(d, lambda k: "/" in k)
        if isinstance(v, dict) and "tokens" in v
    }
    by_dir: dict[str, list[dict]] = {}
    for o in outputs:
        by_dir.setdefault(
            o["path"].split("/", 1)[0] if "/" in o["path"] else "(top level)", []
        ).append(o)
    summary = (
        (k, len(v), ch.count(sum(o["rows"] for o in v)), ch.size(sum(o["bytes"] for o in v)))
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
    priv, rows = d["privacy"] or {}, d["reports"].get("pii") or {}
    sources = priv.get("sources") or rows.get("sources") or {}
    by_type: Counter[str] = Counter()
    for src in sources.values():
        for kind, ent in (src.get("entities") or {}).items():
            by_type[kind] += ent.get("findings", 0)
    return dict(by_type), sources, priv.get("residual") or rows.get("residual") or {}


def _privacy(d: dict) -> str:
    link = '<p><a href="privacy.html">Open the privacy report (privacy.html)</a></p>'
    by_type, sources, residual = _pii_by(d)
    if not (d["privacy"] or d["reports"].get("pii") or d["privacy_html"]):
        return ch.section("privacy", "Privacy summary", ch.note("The PII stage did not run."))
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
    return ch.section(
        "timings",
        "Timings",
        ch.table(
            ["timing", "value"],
            sorted((k, v) for k, v in t.items() if not isinstance(v, dict) and k != "stages_note"),
        ),
        ch.bar_chart(list(stages.items()), "Seconds per stage", ch.seconds) if stages else "",
        ch.note(
            t.get("stages_note", "Time spent inside each stage's transforms, summed over workers.")
        )
        if stages
        else "",
    )


def _inputs(d: dict) -> str:
    per: dict[str, Counter] = {}
    for i in d["manifest"].get("inputs", []):
        per.setdefault(i["source"], Counter()).update(
            files=1, bytes=i["bytes"], records=i.get("records", 0), dead=i.get("dead_letters", 0)
        )
    rows = (
        (s, ch.count(c["files"]), ch.size(c["bytes"]), ch.count(c["records"]), ch.count(c["dead"]))
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


def _other(d: dict) -> str:
    parts = []
    for stage, keys in sorted(d["reports"].items()):
        if stage == "pii":  # the privacy section and privacy.html speak for it
            continue
        rest = {
            k: v
            for k, v in keys.items()
            if k not in SHOWN and not k.startswith(("languages/", "split:")) and "/" not in k
        }
        if rest:
            parts.append(f"<h3>{escape(stage)}</h3>" + ch.key_values(stage, rest))
    return ch.section("other", "Other stage reports", *parts) if parts else ""


SHOWN = {LENGTHS, "cluster_sizes", "removed_by_source", "largest_clusters", "tokenizer"}


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


def render(d: dict) -> str:
    stages = d["manifest"].get("stages", [])
    sections = [
        ("overview", _overview(d)),
        ("funnel", _funnel(stages)),
        ("drops", _drops(stages)),
        ("languages", _languages(d)),
        ("dedup", _dedup(d)),
        ("lengths", _lengths(d)),
        ("tokens", _tokens(d)),
        ("shards", _shards(d)),
        ("privacy", _privacy(d)),
        ("timings", _timings(d)),
        ("inputs", _inputs(d)),
        ("other", _other(d)),
        ("config", _config(d)),
    ]
    present = [(a, html) for a, html in sections if html]
    nav = [(a, a.capitalize()) for a, _ in present]
    subtitle = f"{d['root']} · created {d['manifest'].get('created_at', '?')}"
    return ch.page("gristmill run report", subtitle, nav, [html for _, html in present])


def write_run_report(root: str, manifest: dict | None = None) -> None:
    """Writes reports/run.html. The release step passes the manifest it is about to write, so
    that manifest.json stays the last file of a release; `gristmill report` reads it from disk."""
    html = render(collect(root, manifest))
    with FileSystems.create(
        _join(root, RUN_HTML), compression_type=CompressionTypes.UNCOMPRESSED
    ) as fh:
        fh.write(html.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    """`gristmill report RELEASE`: rebuild reports/run.html from the release's files."""
    parser = argparse.ArgumentParser(prog="gristmill report")
    parser.add_argument("release", help="release directory (holds manifest.json)")
    args = parser.parse_args(argv)
    try:
        write_run_report(args.release)
    except FileNotFoundError as err:
        print(f"gristmill report: {err}", file=sys.stderr)
        return 2
    print(_join(args.release, RUN_HTML))
    return 0
