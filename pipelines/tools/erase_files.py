"""The files of an erased release: each one copied, or rewritten a batch at a time.

`gristmill erase` (erase.py) never loads a whole table: every Parquet file is read one record
batch at a time, once to see whether it holds a listed value or a removed document, and again,
only when it does, to write it (transforms/sorted_runs.write_rows: the job's Parquet options,
a row group at a time, the same bytes as the job's own writer). A file with nothing to change
is copied byte for byte. Values are matched as `gristmill audit` matches them
(audit.value_pattern), so what erase leaves, audit does not find.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines.tools.audit import value_pattern
from gristmill.transforms.sinks import parquet_file
from gristmill.transforms.sorted_runs import write_rows

ERASED = "<ERASED>"  # what a value becomes in a document when the pii operator cannot say
ERASED_TEXT = "[erased]"  # in report files and table cells outside the documents
BATCH_ROWS = 4096
COPY_CHUNK = 1 << 22
ID_COLUMNS = ("id", "doc_id")  # the columns that name a document in the release's tables
DOCUMENT_FIELDS = ("text", "url_or_path", "meta")


@dataclass
class Matcher:
    """The listed values: one combined pattern to test a cell, each value's own to replace it."""

    values: list[str]
    replacements: list[str]  # per value: what a scrubbed document holds in its place
    patterns: list[re.Pattern] = field(init=False)
    any: re.Pattern = field(init=False)

    def __post_init__(self) -> None:
        self.patterns = [value_pattern(v) for v in self.values]
        self.any = re.compile("|".join(f"(?:{p.pattern})" for p in self.patterns), re.IGNORECASE)

    def holds(self, text: str) -> bool:
        return bool(text) and self.any.search(text) is not None

    def sub(self, text: str, fixed: str | None = None) -> str:
        """`text` with every value replaced: by its own replacement, or by `fixed`."""
        for pattern, repl in zip(self.patterns, self.replacements, strict=True):
            text = pattern.sub((fixed or repl).replace("\\", r"\\"), text)
        return text


@dataclass
class Written:
    """What rewriting one file did: its manifest entry, and the documents it touched."""

    entry: dict[str, Any]
    removed: dict[str, str] = field(default_factory=dict)  # id -> source
    scrubbed: int = 0
    changed: bool = False


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def batches(path: str) -> Iterator[list[dict[str, Any]]]:
    """A Parquet file's rows, a record batch at a time."""
    with _open(path) as fh:
        for batch in parquet_file(fh).iter_batches(batch_size=BATCH_ROWS):
            yield batch.to_pylist()


def _schema(path: str) -> pa.Schema:
    with _open(path) as fh:
        return parquet_file(fh).schema_arrow


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bytes, int, float)):
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


def copy_file(src: str, dst: str) -> tuple[int, str]:
    """Byte for byte, in chunks; (bytes, sha256)."""
    digest, size = hashlib.sha256(), 0
    with (
        _open(src) as fin,
        FileSystems.create(dst, compression_type=CompressionTypes.UNCOMPRESSED) as fout,
    ):
        while chunk := fin.read(COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            fout.write(chunk)
    return size, digest.hexdigest()


def _row_hit(row: dict[str, Any], matcher: Matcher, removed: dict[str, str]) -> bool:
    if any(row.get(c) in removed for c in ID_COLUMNS if isinstance(row.get(c), str)):
        return True
    return any(matcher.holds(_cell(v)) for v in row.values())


def _needs_rewrite(path: str, matcher: Matcher, removed: dict[str, str]) -> bool:
    return any(_row_hit(r, matcher, removed) for rows in batches(path) for r in rows)


def _write(src: str, dst: str, rows: Iterator[dict[str, Any]]) -> dict[str, Any]:
    schema = _schema(src)
    count, size, sha = write_rows(
        dst, lambda chunk: pa.Table.from_pylist(chunk, schema=schema), rows
    )
    return {"rows": count, "bytes": size, "sha256": sha}


def rewrite_documents(
    src: str, dst: str, entry: dict[str, Any], matcher: Matcher, scrub: bool
) -> Written:
    """A documents file without the documents that hold a value (or with the values scrubbed)."""
    out = Written(dict(entry))
    if not _needs_rewrite(src, matcher, {}):
        out.entry.update(zip(("bytes", "sha256"), copy_file(src, dst), strict=True))
        return out

    def kept() -> Iterator[dict[str, Any]]:
        for rows in batches(src):
            for row in rows:
                if not any(matcher.holds(_cell(v)) for v in row.values()):
                    yield row
                elif scrub:
                    out.scrubbed += 1
                    yield {k: matcher.sub(row[k]) if k in DOCUMENT_FIELDS else v
                           for k, v in row.items()}  # fmt: skip
                else:
                    out.removed[row["id"]] = row["source"]

    out.entry.update(_write(src, dst, kept()))
    out.changed = True
    return out


def rewrite_table(
    src: str, dst: str, entry: dict[str, Any], matcher: Matcher, removed: dict[str, str]
) -> Written:
    """Any other table (index, findings, drops, dead letters): rows naming a removed document
    go; a cell that holds a value keeps its row with the value replaced."""
    out = Written(dict(entry))
    if not _needs_rewrite(src, matcher, removed):
        out.entry.update(zip(("bytes", "sha256"), copy_file(src, dst), strict=True))
        return out

    def kept() -> Iterator[dict[str, Any]]:
        for rows in batches(src):
            for row in rows:
                if any(row.get(c) in removed for c in ID_COLUMNS if isinstance(row.get(c), str)):
                    continue
                yield {k: matcher.sub(v, ERASED_TEXT) if isinstance(v, str) else v
                       for k, v in row.items()}  # fmt: skip

    out.entry.update(_write(src, dst, kept()))
    out.changed = True
    return out


def rewrite_text(src: str, dst: str, matcher: Matcher) -> tuple[int, str, bool]:
    """A report or other text file with each value replaced (these are small: read whole);
    (bytes, sha256, changed)."""
    with _open(src) as fh:
        raw = fh.read()
    text = raw.decode("utf-8", errors="surrogateescape")
    if not matcher.holds(text):
        return (*copy_file(src, dst), False)
    data = matcher.sub(text, ERASED_TEXT).encode("utf-8", errors="surrogateescape")
    with FileSystems.create(dst, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(data)
    return len(data), hashlib.sha256(data).hexdigest(), True


def text_holds(path: str, matcher: Matcher) -> bool:
    with _open(path) as fh:
        return matcher.holds(fh.read().decode("utf-8", errors="replace"))


def release_files(root: str) -> list[str]:
    """Every file of the release, relative to its root, sorted."""
    found = FileSystems.match([posixpath.join(root, "**")])[0].metadata_list
    return sorted(posixpath.relpath(m.path, root) for m in found if not m.path.endswith("/"))
