"""Parquet rows in bounded memory: the limits are checked against the file's metadata first.

A Parquet file is small on disk and may hold anything once decoded: a 27 KB file can carry one
293 MB string. So before a row group is read, its uncompressed size (from the footer) is checked
against `max_decompressed_bytes` (running total over the file) and against `max_record_bytes`
times its row count (a row group whose rows cannot all fit is one dead letter, unread). Rows are
then read in batches sized so that a batch decodes to about BATCH_BYTES; string and binary
columns stay dictionary-encoded while read (a short dictionary repeated over many rows would
otherwise inflate in the batch), and each row's size is measured before it becomes Python
objects, so a row over `max_record_bytes` is a dead letter that never leaves Arrow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

BATCH_BYTES = 16 << 20
MAX_BATCH_ROWS = 1024


@dataclass(frozen=True, slots=True)
class RowGroupVerdict:
    """What the metadata says of one row group: read it (in batches of `batch_rows`) or not."""

    index: int
    first_row: int
    rows: int
    bytes: int  # uncompressed, from the footer
    error: str = ""  # "" | record_too_large | decompression_bomb
    batch_rows: int = 1


def plan_row_groups(
    meta: pq.FileMetaData, max_record_bytes: int, max_file_bytes: int
) -> Iterator[RowGroupVerdict]:
    """One verdict per row group, in order; stops after the first that passes the file cap."""
    first = 0
    total = 0
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        rows = rg.num_rows
        size = sum(rg.column(c).total_uncompressed_size for c in range(rg.num_columns))
        total += size
        if total > max_file_bytes:
            yield RowGroupVerdict(i, first, rows, size, "decompression_bomb")
            return
        if rows and size > rows * max_record_bytes:
            yield RowGroupVerdict(i, first, rows, size, "record_too_large")
        else:
            per_row = max(1, size // max(rows, 1))
            batch = max(1, min(MAX_BATCH_ROWS, BATCH_BYTES // per_row))
            yield RowGroupVerdict(i, first, rows, size, batch_rows=batch)
        first += rows


def _binary_columns(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if _is_binary(f.type)]


def _lengths(column: pa.Array) -> pa.Array | None:
    """Byte length per row of a string/binary column (dictionary-encoded or not)."""
    if pa.types.is_dictionary(column.type):
        if not _is_binary(column.type.value_type):
            return None
        return pc.take(pc.binary_length(column.dictionary), column.indices)
    return pc.binary_length(column) if _is_binary(column.type) else None


def _is_binary(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    )


def row_sizes(batch: pa.RecordBatch) -> list[int]:
    """Bytes each row holds in its string and binary columns (what may be huge)."""
    sizes = [0] * batch.num_rows
    for column in batch.columns:
        lengths = _lengths(column)
        if lengths is None:
            continue
        for i, n in enumerate(lengths.to_pylist()):
            sizes[i] += n or 0
    return sizes


def open_batches(pf: pq.ParquetFile, verdict: RowGroupVerdict) -> Iterator[pa.RecordBatch]:
    """One row group's batches, string columns kept dictionary-encoded while in Arrow."""
    return pf.iter_batches(batch_size=verdict.batch_rows, row_groups=[verdict.index])


def parquet_file(raw, binary_columns_as_dictionary: bool = True) -> pq.ParquetFile:
    """A ParquetFile over an open file; string columns read as dictionaries (see module doc)."""
    pf = pq.ParquetFile(raw)
    if not binary_columns_as_dictionary:
        return pf
    names = _binary_columns(pf.schema_arrow)
    return pq.ParquetFile(raw, read_dictionary=names) if names else pf
