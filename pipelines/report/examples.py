"""Examples for the run report: one dropped document per (stage, reason), and the text that
duplicates repeat, never showing personal data.

A release does not keep the text of a dropped document, so an example of a drop is its drop row
(source, id, the measured value in `detail`, already scrubbed by the stage that wrote it) and,
for a duplicate, the start of the text it repeats: its survivor's, read from documents/ (text
that went through the PII stage) and masked again by the dedup stages' own `snippet` (emails,
URLs and digit runs). The example of a reason is its lowest id: the same on every run.

Both reads stream (a batch of one Parquet file at a time, only the columns needed; texts only
from the row groups whose ids hold a survivor asked for) and keep one row per (stage, reason)
and the few survivor texts asked for, so a large release costs reading time, never memory.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any

import pyarrow.compute as pc
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.transforms.dedup.survivors import snippet
from gristmill.transforms.sinks import parquet_file

DROP_COLUMNS = ("id", "source", "stage", "reason", "detail")
SURVIVOR = re.compile(r"\bsurvivor=(\S+)")
MAX_TEXTS = 64  # survivor texts looked up for one report
SCAN_LIMIT = 4 << 30  # above this many bytes of documents/, no texts are looked up


def _files(manifest: dict, folder: str) -> list[str]:
    return [
        o["path"]
        for o in manifest.get("outputs", [])
        if o["path"].startswith(folder + "/") and o["path"].endswith(".parquet") and o.get("rows")
    ]


@contextmanager
def _parquet(root: str, rel: str):
    path = f"{root.rstrip('/')}/{rel}"
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        yield parquet_file(fh)


def _batches(root: str, rel: str, columns: list[str]):
    with _parquet(root, rel) as parquet:
        have = [c for c in columns if c in parquet.schema_arrow.names]
        yield from parquet.iter_batches(columns=have, batch_size=8192)


def drop_examples(root: str, manifest: dict) -> dict[tuple[str, str], dict[str, Any]]:
    """(stage, reason) -> the drop row with the lowest id."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for rel in _files(manifest, "drops"):
        for batch in _batches(root, rel, [*DROP_COLUMNS, "url_or_path"]):
            for row in batch.to_pylist():
                key = (row["stage"], row["reason"])
                if key not in best or row["id"] < best[key]["id"]:
                    best[key] = row
    return best


def survivor_of(detail: str) -> str | None:
    found = SURVIVOR.search(detail or "")
    return found.group(1) if found else None


def texts(root: str, manifest: dict, ids: set[str]) -> dict[str, str]:
    """id -> masked start of its text, for the ids that are documents of this release."""
    files = _files(manifest, "documents")
    size = sum(o["bytes"] for o in manifest.get("outputs", []) if o["path"] in files)
    wanted = sorted(ids)[:MAX_TEXTS]
    if not wanted or size > SCAN_LIMIT:
        return {}
    found: dict[str, str] = {}
    value_set = _array(wanted)
    for rel in files:
        for hits in _rows_with(root, rel, value_set):
            for row in hits.to_pylist():
                found[row["id"]] = snippet(row["text"])
    return found


def _rows_with(root: str, rel: str, ids):
    """(id, text) of the rows whose id `ids` holds: the id column is read first, and the text
    only of the row groups that hold one (a row group's text, not a file's, is in memory)."""
    with _parquet(root, rel) as parquet:
        for group in range(parquet.num_row_groups):
            mask = pc.is_in(parquet.read_row_group(group, ["id"]).column(0), value_set=ids)
            if pc.any(mask).as_py():
                yield parquet.read_row_group(group, ["id", "text"]).filter(mask)


def _array(values: list[str]):
    import pyarrow as pa

    return pa.array(values, pa.string())


def collect_examples(root: str, manifest: dict, cluster_survivors: set[str]) -> dict[str, Any]:
    """The report's examples: the drop rows, and the texts of the survivors they and the
    largest duplicate clusters name."""
    drops = drop_examples(root, manifest)
    ids = {s for row in drops.values() if (s := survivor_of(row.get("detail", "")))}
    return {"drops": drops, "texts": texts(root, manifest, ids | cluster_survivors)}
