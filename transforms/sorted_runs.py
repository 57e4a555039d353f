"""Sharded Parquet without grouping: sorted runs spilled while rows stream past, merged after.

`WriteShardedParquet` groups every row of a shard in the runner before it sorts and writes
them; on an in-process runner that is the whole table in memory. `SpillSortedRuns` instead
keeps at most `limit_bytes` of rows, sorts what it holds by shard and writes each shard's part
as one sorted run file; `merge_runs` then streams every shard's runs through a k-way merge into
the shard's file. Same shard membership, same order, same Parquet writer settings: the same
bytes as `WriteShardedParquet`, with memory bounded by the spill limit and one batch per run.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import posixpath
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.schemas.records import FileInfo
from gristmill.transforms.sinks import (
    PARQUET_OPTIONS,
    WriteShardedParquet,
    parquet_file,
    shard_of,
    shard_path,
)

READ_ROWS = 64  # rows per batch read back from each run during the merge
# a run's row groups: a reader decodes a whole row group, so a merge of FAN_IN runs holds
# FAN_IN groups; runs are scratch files, only merged files take the release's row groups
RUN_GROUP_ROWS = READ_ROWS


@dataclass(frozen=True)
class ShardSpec:
    """What a sharded table is: where, how many shards, and how rows map to shards and order."""

    relprefix: str
    num_shards: int
    to_table: Callable[[list], Any]
    from_row: Callable[[dict], Any]
    shard_key: Callable[[Any], str]
    sort_key: Callable[[Any], Any]
    partition: Callable[[Any], str] | None = None  # a folder per value; only non-empty files


class SpillSortedRuns(beam.DoFn):
    """Rows -> sorted run files under `folder/<partition>/<shard>/`; yields nothing. `size`
    estimates a row's bytes in memory (the spill limit counts them)."""

    def __init__(self, folder: str, spec: ShardSpec, size: Callable[[Any], int], limit_bytes: int):
        self.folder, self.spec, self.size, self.limit = folder, spec, size, limit_bytes

    def setup(self):
        self.token, self.seq = uuid.uuid4().hex, 0

    def start_bundle(self):
        self.held: dict[tuple[str, int], list] = {}
        self.bytes = 0

    def process(self, row):
        spec = self.spec
        part = spec.partition(row) if spec.partition else ""
        self.held.setdefault((part, shard_of(spec.shard_key(row), spec.num_shards)), []).append(row)
        self.bytes += self.size(row)
        if self.bytes >= self.limit:
            self._spill()

    def finish_bundle(self):
        self._spill()

    def _spill(self) -> None:
        for (part, shard), rows in sorted(self.held.items()):
            rows.sort(key=self.spec.sort_key)
            name = f"{self.token}-{self.seq:06d}.parquet"
            path = posixpath.join(self.folder, part or "_", f"{shard:05d}", name)
            write_rows(path, self.spec.to_table, rows, RUN_GROUP_ROWS)
        self.seq += 1
        self.held, self.bytes = {}, 0


class _Counted:
    """A writable stream that counts and hashes what passes through it."""

    def __init__(self, fh):
        self.fh, self.sha, self.n, self.closed = fh, hashlib.sha256(), 0, False

    def write(self, data) -> int:
        data = bytes(data)
        self.sha.update(data)
        self.n += len(data)
        self.fh.write(data)
        return len(data)

    def flush(self) -> None:
        self.fh.flush()

    def tell(self) -> int:
        return self.n

    def close(self) -> None:
        self.closed = True


def write_rows(
    path: str, to_table, rows: Iterable, group: int = PARQUET_OPTIONS["row_group_size"]
) -> tuple[int, int, str]:
    """Sorted rows -> one Parquet file, a row group of `group` rows at a time (by default the
    same bytes as writing the whole table at once with PARQUET_OPTIONS); (rows, bytes, sha256)."""
    options = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}
    parent = posixpath.dirname(path)
    if "://" not in path:
        os.makedirs(parent, exist_ok=True)
    count, chunk = 0, []
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        out = _Counted(fh)
        writer = None
        for row in rows:
            chunk.append(row)
            if len(chunk) == group:
                writer = _write_chunk(writer, out, to_table(chunk), options, group)
                count, chunk = count + len(chunk), []
        if chunk or writer is None:
            writer = _write_chunk(writer, out, to_table(chunk), options, group)
            count += len(chunk)
        writer.close()
    return count, out.n, out.sha.hexdigest()


def _write_chunk(writer, out, table, options, group: int):
    if writer is None:
        writer = pq.ParquetWriter(out, table.schema, **options)
    writer.write_table(table, row_group_size=group)
    return writer


def _read_run(path: str, from_row) -> Iterator[Any]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        for batch in parquet_file(fh).iter_batches(batch_size=READ_ROWS):
            for row in batch.to_pylist():
                yield from_row(row)


def _runs(folder: str) -> dict[tuple[str, int], list[str]]:
    """(partition, shard) -> its run files, sorted by name."""
    found: dict[tuple[str, int], list[str]] = {}
    if not FileSystems.exists(folder):
        return found
    for meta in FileSystems.match([posixpath.join(folder, "**.parquet")])[0].metadata_list:
        part, shard, _ = meta.path[len(folder) :].lstrip("/").split("/")
        found.setdefault(("" if part == "_" else part, int(shard)), []).append(meta.path)
    return {k: sorted(v) for k, v in found.items()}


def run_files(folders: list[str]) -> dict[tuple[str, int], list[str]]:
    """(partition, shard) -> the run files of every folder (several phases' or partitions')."""
    found: dict[tuple[str, int], list[str]] = {}
    for folder in folders:
        for key, paths in _runs(folder).items():
            found.setdefault(key, []).extend(paths)
    return found


def shard_keys(spec: ShardSpec, runs: dict[tuple[str, int], list[str]]) -> list[tuple[str, int]]:
    """The files a merge writes: every shard of an unpartitioned table, empty ones too (as
    WriteShardedParquet does); a partitioned table's non-empty (partition, shard) pairs."""
    return sorted(runs) if spec.partition else [("", i) for i in range(spec.num_shards)]


FAN_IN = 16  # runs one merge reads at once: each holds a batch, and its file's reader


def merge_shard(
    paths: list[str], root: str, spec: ShardSpec, part: str, shard: int, scratch: str = ""
) -> FileInfo:
    """One shard's runs merged into its file under `root`. Past FAN_IN runs, consecutive
    groups of FAN_IN are first merged into runs under `scratch` (removed after), level by
    level, so memory does not grow with the number of runs; heapq.merge is stable (ties keep
    the runs' order), so the bytes are those of one merge of every run."""
    relpath = shard_path(spec.relprefix, part, shard, spec.num_shards)
    level = 0
    while len(paths) > FAN_IN and scratch:
        folder = posixpath.join(scratch, relpath, f"level{level}")
        paths = [
            _merge_into(paths[i : i + FAN_IN], posixpath.join(folder, f"{i:06d}.parquet"), spec)
            for i in range(0, len(paths), FAN_IN)
        ]
        level += 1
    merged = heapq.merge(*(_read_run(path, spec.from_row) for path in paths), key=spec.sort_key)
    rows, nbytes, sha = write_rows(posixpath.join(root, relpath), spec.to_table, merged)
    if level:
        FileSystems.delete([posixpath.join(scratch, relpath)])
    return FileInfo(relpath, rows, nbytes, sha)


def _merge_into(paths: list[str], target: str, spec: ShardSpec) -> str:
    merged = heapq.merge(*(_read_run(path, spec.from_row) for path in paths), key=spec.sort_key)
    write_rows(target, spec.to_table, merged, RUN_GROUP_ROWS)
    return target


def merge_runs(folder: str, root: str, spec: ShardSpec) -> list[FileInfo]:
    """Every shard's runs merged into its file under `root`."""
    runs = _runs(folder)
    return [merge_shard(runs.get(k, []), root, spec, *k) for k in shard_keys(spec, runs)]


# rows held (by `size`) before a sorted run is written; 64 MB raised a 1-worker run's peak by
# ~11 MB on 50 MB of input (a merge reads one row group of each run, so more runs cost little)
SPILL_BYTES = 16 << 20


class SpillRuns(beam.PTransform):
    """Rows -> sorted runs under `folder` (merged after the pipeline: merge_runs); outputs
    nothing."""

    def __init__(self, folder: str, spec: ShardSpec, size: Callable[[Any], int]):
        super().__init__()
        self.folder, self.spec, self.size = folder, spec, size

    def expand(self, rows):
        return rows | "Spill" >> beam.ParDo(
            SpillSortedRuns(self.folder, self.spec, self.size, SPILL_BYTES)
        )


def _row_size(row) -> int:
    return 300


class ShardedTable(beam.PTransform):
    """A stage's sharded table: written by the grouping sink into `output`, or, when `spill`
    is set (a local run's partitions), spilled as sorted runs under `spill/<relprefix>` for the
    driver to merge after every partition (same bytes either way); outputs the FileInfos
    written (none when spilled)."""

    def __init__(self, output: str, spill: str | None, spec: ShardSpec, size=_row_size):
        super().__init__()
        self.output, self.spill, self.spec, self.size = output, spill, spec, size

    def expand(self, rows):
        spec = self.spec
        if self.spill is None:
            return rows | "Write" >> WriteShardedParquet(
                self.output,
                spec.relprefix,
                spec.num_shards,
                spec.to_table,
                spec.shard_key,
                spec.sort_key,
            )
        _ = rows | "SpillRuns" >> SpillRuns(
            posixpath.join(self.spill, spec.relprefix), spec, self.size
        )
        return rows.pipeline | "NoFiles" >> beam.Create([])
