"""Reading what a phase staged: Parquet files read back as records, a bounded batch at a time."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from gristmill.schemas.records import FileInfo
from gristmill.transforms.accounting import text_bytes
from gristmill.transforms.sinks import parquet_file, shard_name
from gristmill.transforms.sorted_runs import SpillRuns  # noqa: F401  (the phases spill with it)

BATCH_ROWS = 1024


class ReadStaged(beam.DoFn):
    """A staged Parquet file -> its rows as records, one bounded batch at a time. Documents are
    counted as the read stage counts them (`read.<source>` bytes, documents): what the live
    progress reads."""

    def __init__(self, from_row: Callable[[dict], Any], counted: bool = False):
        self.from_row = from_row
        self.counted = counted

    def setup(self):
        self._counters: dict[str, tuple[Any, Any]] = {}

    def process(self, path: str) -> Iterator[Any]:
        for row in read_rows(path):
            record = self.from_row(row)
            if self.counted:
                self._count(record)
            yield record

    def _count(self, doc) -> None:
        pair = self._counters.get(doc.source)
        if pair is None:
            ns = f"read.{doc.source}"
            pair = Metrics.counter(ns, "bytes"), Metrics.counter(ns, "documents")
            self._counters[doc.source] = pair
        pair[0].inc(text_bytes(doc.text))
        pair[1].inc()


def staged_files(folders: list[str], name: str) -> list[str]:
    """Each folder's one file of a staged table (the phases write it as shard 0 of 1)."""
    return [posixpath.join(f, shard_name(name, 0, 1, ".parquet")) for f in folders]


def doc_size(doc) -> int:
    """About what a document holds in memory, for the spill limit."""
    return len(doc.text) + len(doc.url_or_path) + 200


def release_files(summary: dict) -> list[FileInfo]:
    """The release files a phase's summary lists (index/...), not its staged tables: those
    are named at the top of the folder and read again by a later phase."""
    return [FileInfo(**f) for f in summary["files"] if "/" in f["path"]]


def _batches(path: str, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        yield from parquet_file(fh).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def id_set(paths: list[str]) -> pa.Array:
    """The `id` column of staged tables as one Arrow array: a partition's ids, the value set
    that `among` filters by (a few bytes per document of the partition, not of the corpus)."""
    ids = [batch.column(0) for path in paths for batch in _batches(path, ["id"])]
    return pa.concat_arrays(ids) if ids else pa.array([], pa.string())


def read_rows(path: str, among: pa.Array | None = None) -> Iterator[dict]:
    """A staged table's rows, a bounded batch at a time; `among`: only those whose id it holds
    (filtered in Arrow, before a row becomes Python objects)."""
    for batch in _batches(path):
        if among is not None:
            batch = batch.filter(pc.is_in(batch.column("id"), value_set=among))
        yield from batch.to_pylist()


def read_ids(path: str, among: pa.Array | None = None) -> Iterator[str]:
    """The `id` column of a staged table, a batch at a time (`among`: as read_rows)."""
    for batch in _batches(path, ["id"]):
        ids = batch.column(0)
        if among is not None:
            ids = ids.filter(pc.is_in(ids, value_set=among))
        yield from ids.to_pylist()


class SkipListed(beam.DoFn):
    """Records whose id a staged table lists are left out. The ids are loaded once per worker:
    ids only, and with `among` (staged tables of one partition: its documents) only the listed
    ids of that partition, so a partition's worker holds no list the size of the corpus."""

    def __init__(self, paths: list[str], among: list[str] | None = None):
        self.paths = paths
        self.among = among

    def setup(self):
        among = None if self.among is None else id_set(self.among)
        self.ids = {i for path in self.paths for i in read_ids(path, among)}

    def process(self, record):
        if record.id not in self.ids:
            yield record
