"""What the run report shows, gathered from a release's own files, and the length histogram
rows the job records for it.

One binning serves both the pipeline's report row and the fallback scan of documents/, so a
release written before the row existed still gets a histogram from its Parquet files.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines.report.examples import collect_examples
from gristmill.transforms.accounting import text_bytes
from gristmill.transforms.sinks import parquet_file

LENGTHS = "length_histogram"  # report key of a document-length histogram
BEFORE, AFTER = (
    "read",
    "documents",
)  # stage_reports[...] that hold the before/after histograms
SCAN_LIMIT = 4 << 30  # above this many bytes of documents/, lengths come only from report rows
SMALLEST_BIN = 64

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


def join(root: str, rel: str) -> str:
    return posixpath.join(root, rel)


def exists(root: str, rel: str) -> bool:
    return FileSystems.exists(join(root, rel))


def read_json(root: str, rel: str) -> Any:
    if not exists(root, rel):
        return None
    with FileSystems.open(join(root, rel), compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return json.loads(fh.read().decode("utf-8"))


def _parquet_files(manifest: dict, prefix: str) -> list[dict]:
    return [o for o in manifest.get("outputs", []) if o["path"].startswith(prefix + "/")]


def _scan_lengths(root: str, manifest: dict) -> dict[str, int] | None:
    files = [o for o in _parquet_files(manifest, "documents") if o["path"].endswith(".parquet")]
    if not files or sum(o["bytes"] for o in files) > SCAN_LIMIT:
        return None
    bins: Counter[int] = Counter()
    for entry in files:
        path = join(root, entry["path"])
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for batch in parquet_file(fh).iter_batches(columns=["text"], batch_size=4096):
                lengths = pc.binary_length(batch.column(0)).to_numpy(zero_copy_only=False)
                bins.update(length_bin(int(n)) for n in lengths)
    return {str(k): n for k, n in sorted(bins.items())}


def _dead_letter_counts(root: str, manifest: dict) -> list[tuple[str, str, int]]:
    counts: Counter[tuple[str, str]] = Counter()
    for entry in _parquet_files(manifest, "dead_letters"):
        if not entry.get("rows"):
            continue
        path = join(root, entry["path"])
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            table = pq.read_table(fh, columns=["source", "error"])
        counts.update(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    return [(s, e, n) for (s, e), n in sorted(counts.items())]


def stages_with(shape: str) -> list[str]:
    """The registry's stages whose report rows take this shape (e.g. "privacy")."""
    from gristmill.pipelines import registry

    return [s.name for s in registry.with_report(shape)]


def rows_of(d: dict, shape: str) -> dict[str, Any]:
    """The report rows of every stage of one shape, merged (usually one stage)."""
    out: dict[str, Any] = {}
    for name in stages_with(shape):
        out.update(d["reports"].get(name) or {})
    return out


def collect(root: str, manifest: dict | None = None) -> dict[str, Any]:
    """The report's data, from the release files (`manifest` when it is not on disk yet)."""
    manifest = manifest if manifest is not None else read_json(root, "manifest.json")
    if manifest is None:
        raise FileNotFoundError(f"{join(root, 'manifest.json')}: not a complete release")
    run = read_json(root, "reports/run.json") or {}
    reports = run.get("stage_reports", {})
    after = reports.get(AFTER, {}).get(LENGTHS)
    survivors = {
        c["survivor"]
        for keys in reports.values()
        if isinstance(keys, dict)
        for c in keys.get("largest_clusters") or []
        if isinstance(c, dict) and c.get("survivor")
    }
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
        "privacy_html": exists(root, "reports/privacy.html"),
        "examples": collect_examples(root, manifest, survivors),
    }


def report_rows(d: dict, test: Callable[[str], bool]) -> list[tuple[str, str, Any]]:
    """(stage, key, value) of the report rows whose key passes `test`, for the sections."""
    return [
        (s, k, v) for s, keys in sorted(d["reports"].items()) for k, v in keys.items() if test(k)
    ]
