"""Books: one plain-text file is one document, Project Gutenberg boilerplate removed."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gristmill.transforms.sources.reader_api import (
    BadRecord,
    RawRecord,
    ReadContext,
    ReaderOutput,
    decode_text,
)
from gristmill.transforms.sources.streams import InputFile

# Modern and 1990s Gutenberg markers; the body lies between the last start and the first end.
# Only spaces and tabs around them: `\s*` at a line start also eats newlines, and a file of
# blank lines then costs quadratic time (40 KB of newlines took 62 s).
_START = re.compile(
    r"^[ \t]*\*{3}[ \t]*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^\n]*$"
    r"|^[ \t]*\*+[ \t]*START\**[ \t]*THE SMALL PRINT[^\n]*$"
    r"|^[ \t]*\*END\*?[ \t]*THE SMALL PRINT[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_END = re.compile(
    r"^[ \t]*\*{3}[ \t]*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^\n]*$"
    r"|^[ \t]*End of (?:the |this )?Project Gutenberg'?s?\b[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)


def strip_gutenberg(text: str) -> tuple[str, bool]:
    """The book's body without the Gutenberg header and licence; (text, whether markers were found)."""
    starts = list(_START.finditer(text))
    begin = starts[-1].end() if starts else 0
    end_match = _END.search(text, begin)
    end = end_match.start() if end_match else len(text)
    if not starts and not end_match:
        return text, False
    return text[begin:end].strip("\n"), True


def read_book(f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]:
    chunks, size = [], 0
    while size <= ctx.max_record_bytes and (chunk := f.stream.read(1 << 20)):
        chunks.append(chunk)
        size += len(chunk)
    if size > ctx.max_record_bytes:
        yield BadRecord(0, "record_too_large", f"book larger than {ctx.max_record_bytes} bytes")
        return
    data = b"".join(chunks)
    del chunks
    text, bad = decode_text(data, 0, ctx)
    yield from bad
    if text is None:
        return
    text = text.removeprefix("\ufeff")
    meta: dict = {}
    if ctx.options.get("strip_gutenberg", True):
        text, found = strip_gutenberg(text)
        meta["gutenberg_boilerplate"] = found
    if not text.strip():
        yield RawRecord(0, "", meta=meta, drop="empty")
        return
    yield RawRecord(0, text, meta=meta)
