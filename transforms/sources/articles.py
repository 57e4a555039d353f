"""Articles: JSON lines and Parquet files with configurable text and id fields."""

from __future__ import annotations

import datetime
import decimal
import json
import re
from collections.abc import Iterator
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.transforms.sources.budget import RecordTimeout
from gristmill.transforms.sources.parquet_rows import (
    RowGroupVerdict,
    open_batches,
    parquet_file,
    plan_row_groups,
    row_sizes,
)
from gristmill.transforms.sources.reader_api import (
    BadRecord,
    RawRecord,
    ReadContext,
    ReaderOutput,
    decode_text,
)
from gristmill.transforms.sources.streams import InputFile, file_head

META_MAX_CHARS = 512
BOM = b"\xef\xbb\xbf"


def _meta_value(value: Any) -> Any:
    """A JSON-safe scalar, or None when the value is not small metadata."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _clean(value) if len(value) <= META_MAX_CHARS else None
    if isinstance(value, datetime.date | datetime.datetime | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return None  # bytes, nested objects, lists


def _small_meta(obj: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    """Scalar fields other than the text, kept small so meta stays metadata."""
    meta = {}
    for key, value in obj.items():
        if key in skip:
            continue
        kept = _meta_value(value)
        if kept is not None or value is None:
            meta[str(key)] = kept
    return meta


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """JSON may escape lone surrogates, which are not text: they become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _record(obj: Any, offset: int, ctx: ReadContext) -> Iterator[ReaderOutput]:
    text_field = ctx.options.get("text_field", "text")
    id_field = ctx.options.get("id_field", "id")
    if not isinstance(obj, dict):
        yield BadRecord(offset, "not_an_object", f"JSON {type(obj).__name__}, expected an object")
        return
    text = obj.get(text_field)
    if text is None:
        yield RawRecord(offset, "", drop="no_text", detail=f"missing field {text_field!r}")
        return
    if not isinstance(text, str):
        yield BadRecord(offset, "wrong_type", f"field {text_field!r} is {type(text).__name__}")
        return
    cleaned = _clean(text)
    if cleaned is not text:  # the readable text is kept; the bad escapes are reported
        yield BadRecord(offset, "invalid_utf8", "lone surrogate escapes replaced by U+FFFD")
    text = cleaned
    record_id = obj.get(id_field)
    meta = _small_meta(obj, {text_field})
    if not text.strip():
        yield RawRecord(offset, "", drop="empty")
        return
    yield RawRecord(
        offset, text, meta=meta, record_id="" if record_id is None else _clean(str(record_id))
    )


def _skip_line(f: InputFile, line: bytes = b"") -> None:
    """Past the end of the line begun (in bounded reads)."""
    while not line.endswith(b"\n"):
        line = f.stream.readline(1 << 20)
        if not line:
            return


def read_jsonl(f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]:
    """A piece (`ctx.span`) reads the lines that start in it: it is opened one byte early,
    and the line that byte ends (or that it is inside of) belongs to the piece before."""
    limit = ctx.max_record_bytes
    start, end = ctx.span or (0, -1)
    if start:
        _skip_line(f)
    while True:
        offset = f.tell()
        if 0 <= end <= offset:
            return
        line = f.stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            yield BadRecord(offset, "record_too_large", f"line longer than {limit} bytes")
            _skip_line(f, line)
            continue
        if not line.strip():
            continue
        if offset == 0 and line.startswith(BOM):
            line = line[len(BOM) :]
        text, bad = decode_text(line, offset, ctx)
        yield from bad
        if text is None:
            continue
        try:
            with ctx.budget.record():
                obj = json.loads(text)
        except RecordTimeout:
            yield BadRecord(offset, "record_timeout", ctx.budget.detail())
            continue
        except json.JSONDecodeError as err:
            yield BadRecord(offset, "invalid_json", f"{err.msg} (column {err.colno})")
            continue
        except RecursionError:  # nested past the parser's depth limit: this line only
            yield BadRecord(offset, "json_too_deep", "nested deeper than the JSON parser allows")
            continue
        yield from _record(obj, offset, ctx)


def read_parquet(f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]:
    """Row offsets are row numbers; Parquet needs a seekable file, so it is opened on its own.
    Every row group is checked against the limits from the footer before it is read."""
    text_field = ctx.options.get("text_field", "text")
    with FileSystems.open(ctx.path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        pf = parquet_file(raw)
        if text_field not in pf.schema_arrow.names:
            names = pf.schema_arrow.names[:20]  # the schema's names, never a value
            if not ctx.span or not ctx.span[0]:  # said once, by the file's first piece
                yield BadRecord(0, "missing_column", f"no column {text_field!r} in {names}")
            return
        cap = ctx.max_decompressed_bytes
        decoded = 0
        for verdict in plan_row_groups(pf.metadata, ctx.max_record_bytes, cap):
            if ctx.span and not _in_span(pf.metadata, verdict.index, ctx.span):
                continue
            if verdict.error:
                yield BadRecord(verdict.first_row, verdict.error, _row_group_detail(verdict))
                continue
            row = verdict.first_row
            for batch in open_batches(pf, verdict):
                for i, size in enumerate(row_sizes(batch)):
                    decoded += size
                    if decoded > cap:  # dictionaries repeat short values into many rows
                        yield BadRecord(row, "decompression_bomb", f"rows decode past {cap} bytes")
                        return
                    if size > ctx.max_record_bytes:
                        yield BadRecord(row, "record_too_large", f"row {row}: {size} bytes")
                    else:
                        yield from _record(batch.slice(i, 1).to_pylist()[0], row, ctx)
                    row += 1


def _in_span(meta, index: int, span: tuple[int, int]) -> bool:
    """A piece of a Parquet file reads the row groups whose first byte lies in it."""
    column = meta.row_group(index).column(0)
    first = column.data_page_offset
    if column.has_dictionary_page and column.dictionary_page_offset:
        first = min(first, column.dictionary_page_offset)
    return span[0] <= first < span[1]


def _row_group_detail(v: RowGroupVerdict) -> str:
    return f"row group {v.index}: {v.rows} rows, {v.bytes} bytes uncompressed (from the footer)"


def _head(f: InputFile, ctx: ReadContext) -> bytes:
    """The file's first 4 bytes (a piece is opened further in)."""
    return f.stream.peek(4)[:4] if not f.start else file_head(ctx.path)


def read_articles(f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]:
    fmt = ctx.options.get("format", "auto")
    if fmt == "auto":
        fmt = "parquet" if _head(f, ctx) == b"PAR1" else "jsonl"
    if fmt == "parquet":
        yield from read_parquet(f, ctx)
    else:
        yield from read_jsonl(f, ctx)
