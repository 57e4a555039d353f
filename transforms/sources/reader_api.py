"""What a format reader yields, and the text decoding every reader shares."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gristmill.transforms.sources.budget import Budget
from gristmill.transforms.sources.streams import InputFile


@dataclass(slots=True)
class RawRecord:
    """One candidate document. `drop` names why it is not one (e.g. a wiki redirect)."""

    offset: int
    text: str
    url_or_path: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    drop: str = ""
    detail: str = ""
    record_id: str = ""


@dataclass(slots=True)
class BadRecord:
    """A part of the input that could not be read; the reader goes on after it."""

    offset: int
    error: str
    detail: str = ""


@dataclass(slots=True)
class Skipped:
    """A record that is never a document (a WARC request record), counted per input."""

    kind: str


ReaderOutput = RawRecord | BadRecord | Skipped


@dataclass(slots=True)
class ReadContext:
    source: str
    path: str
    relpath: str
    options: dict[str, Any]
    max_record_bytes: int
    on_invalid_utf8: str  # "replace" | "dead_letter"
    max_decompressed_bytes: int = 1 << 62
    budget: Budget = field(default_factory=Budget)
    # a piece of a large file: read the records that start in [start, end); the file is
    # opened one byte before `start` (splits.py)
    span: tuple[int, int] | None = None


class Reader(Protocol):
    def __call__(self, f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]: ...


def fingerprint(data: bytes) -> str:
    """How a dead letter names a piece of input: its size and a hash, never its bytes."""
    return f"{len(data)} bytes, blake2b {hashlib.blake2b(data, digest_size=8).hexdigest()}"


BINARY_NUL_FRACTION = 0.001
BINARY_BAD_FRACTION = 0.05


def looks_binary(data: bytes) -> bool:
    if not data:
        return False
    sample = data[: 1 << 16]
    return sample.count(0) > max(1, int(len(sample) * BINARY_NUL_FRACTION))


def decode_text(data: bytes, offset: int, ctx: ReadContext) -> tuple[str | None, list[BadRecord]]:
    """UTF-8 text of a record, and a dead letter for each run of invalid bytes in it.

    With `on_invalid_utf8: replace` the readable text is kept (invalid bytes become U+FFFD) and
    the invalid bytes are reported; with `dead_letter`, or when the bytes look binary, the
    record becomes one dead letter and no text.
    """
    if looks_binary(data):
        return None, [BadRecord(offset, "binary_content", f"{len(data)} bytes with NUL bytes")]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as err:
        first = err.start
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    if ctx.on_invalid_utf8 == "dead_letter" or bad > len(text) * BINARY_BAD_FRACTION:
        return None, [
            BadRecord(offset + first, "invalid_utf8", f"{bad} invalid sequences; record dropped")
        ]
    return text, [
        BadRecord(offset + first, "invalid_utf8", f"{bad} invalid sequences replaced by U+FFFD")
    ]
