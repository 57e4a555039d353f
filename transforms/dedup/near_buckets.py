"""Near dedup's candidate pairs in bounded memory, for a runner that holds shuffles in memory.

Every signed document has one (band, bucket) key per band: grouped at once, that is `bands`
entries per document in the runner's memory. A local run's phase 2 instead spills the entries
as run files, one set per hash range of the band key (`SpillBands`, no grouping), then groups
one range at a time (`CandidatePairs`, a pipeline each) and writes its candidate edges; the stage
reads the edges of every range back (`NearOnKeys.candidates`) and keeps each once. A bucket
lies in one range, so the edges are the ones `CandidatePairs` finds over all entries at once.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa

from gristmill.transforms.dedup.lsh import band_key, band_keys
from gristmill.transforms.sorted_runs import ShardSpec, SpillRuns

ENTRIES_SCHEMA = pa.schema([("key", pa.binary()), ("rank", pa.int64()), ("id", pa.string())])
EDGES_SCHEMA = pa.schema(
    [("a_rank", pa.int64()), ("a_id", pa.string()), ("b_rank", pa.int64()), ("b_id", pa.string())]
)
ENTRY_BYTES = 120  # an entry in memory, for the spill limit


def entries_table(rows: list[tuple[bytes, tuple[int, str]]]) -> pa.Table:
    cols = {
        "key": [k for k, _ in rows],
        "rank": [n[0] for _, n in rows],
        "id": [n[1] for _, n in rows],
    }
    return pa.table(cols, schema=ENTRIES_SCHEMA)


def entry_from_row(row: dict) -> tuple[bytes, tuple[int, str]]:
    return row["key"], (row["rank"], row["id"])


def _key_hex(entry) -> str:
    return entry[0].hex()


def _entry_size(entry) -> int:
    return ENTRY_BYTES


def entries_spec(ranges: int) -> ShardSpec:
    """Band entries (band key, node), a shard per hash range of the key."""
    return ShardSpec("bands", ranges, entries_table, entry_from_row, _key_hex, as_is)


def as_is(row):
    """A row as its own sort key."""
    return row


def edges_table(rows: list[tuple]) -> pa.Table:
    cols = {
        "a_rank": [a[0] for a, _ in rows],
        "a_id": [a[1] for a, _ in rows],
        "b_rank": [b[0] for _, b in rows],
        "b_id": [b[1] for _, b in rows],
    }
    return pa.table(cols, schema=EDGES_SCHEMA)


def edge_from_row(row: dict) -> tuple[tuple[int, str], tuple[int, str]]:
    return (row["a_rank"], row["a_id"]), (row["b_rank"], row["b_id"])


def edge_key(edge) -> str:
    return edge[0][1]


def _entries(bands: int, rows: int):
    """A signed Keyed record -> its (band key, node) entries; none without a signature."""

    def split(record):
        if record.key is None:
            return []
        node, sig, _ = record.key
        row = band_keys(np.frombuffer(sig, dtype=np.uint32)[None, :], bands, rows)[0]
        return [(band_key(band, bucket), node) for band, bucket in enumerate(row.tolist())]

    return split


class SpillBands(beam.PTransform):
    """Signed Keyed records -> band entries spilled as run files under `folder`, a shard per
    hash range (`entries_spec(ranges)`); outputs nothing."""

    def __init__(self, bands: int, rows: int, folder: str, ranges: int):
        super().__init__()
        self.bands, self.rows, self.folder, self.ranges = bands, rows, folder, ranges

    def expand(self, records):
        return (
            records
            | "Entries" >> beam.FlatMap(_entries(self.bands, self.rows))
            | "Spill" >> SpillRuns(self.folder, entries_spec(self.ranges), _entry_size)
        )
