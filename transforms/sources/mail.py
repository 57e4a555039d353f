"""Mail: raw RFC 822 messages, one per file or many in an mbox, to Subject + body text.

A file that starts with a `From ` line is an mbox: a new message starts at a `From ` line that
follows a blank line (or opens the file) and carries a sender and a time, as mbox writers put it.
Each message's offset is the byte offset of its `From ` line; a file holding one bare message
has offset 0. Messages are parsed with the stdlib `email` package under the compat32 policy,
which records malformed headers and MIME structure as defects instead of raising; header and
body bytes are decoded here with a fallback chain (declared charset, UTF-8, cp1252, Latin-1).

Text: the decoded Subject, a blank line, then the body: the text/plain parts, or the text/html
parts turned into text when there is no plain text. Attachments are skipped. Sender and
recipient addresses are never copied into meta.
"""

from __future__ import annotations

import codecs
import email
import re
from collections.abc import Iterator
from email.header import decode_header
from email.message import Message
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import BinaryIO

from resiliparse.extract.html2text import extract_plain_text

from gristmill.transforms.sources.budget import RecordTimeout, check
from gristmill.transforms.sources.reader_api import (
    BadRecord,
    RawRecord,
    ReadContext,
    ReaderOutput,
    looks_binary,
)
from gristmill.transforms.sources.streams import InputFile, error_detail

FROM_LINE = re.compile(rb"From \S+ +.*\d:\d\d")  # "From sender  Thu Aug 22 12:36:23 2002"
MAX_LINE = 1 << 20
CHARSET_ALIASES = {
    "us-ascii": "utf-8",  # 8-bit bytes under a us-ascii label are usually UTF-8 or cp1252
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",  # as browsers do: cp1252 is Latin-1 plus printable 0x80-0x9f
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "unknown-8bit": "",
    "x-unknown": "",
    "default": "",
}
META_CHARSET = re.compile(rb"<meta[^>]*charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
HTML_START = re.compile(r"\s*(?:<!doctype html|<html|<head|<body)", re.I)
BLANK_RUNS = re.compile(r"\n{3,}")
TRAILING_SPACE = re.compile(r"[ \t]+\n")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
MAX_CONTROL_FRACTION = 0.05
HTML_OPTIONS = {"preserve_formatting": True, "main_content": False, "alt_texts": False}


def _codec(label: str | None) -> str | None:
    name = (label or "").strip().strip("\"'").lower()
    name = CHARSET_ALIASES.get(name, name)
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of `data` in its declared charset if that fits, else UTF-8, cp1252, then Latin-1."""
    for codec in dict.fromkeys(c for c in (_codec(charset), "utf-8", "cp1252") if c):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


def header_text(msg: Message, name: str, hint: str | None = None) -> str:
    """A header decoded from RFC 2047 words or raw 8-bit bytes (read in charset `hint`, the
    body's, if they fit it), on one line; '' if absent."""
    # raw_items: compat32's get() would turn 8-bit bytes into U+FFFD before we could decode them
    raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raw = str(raw)
    elif not raw.isascii():  # 8-bit bytes, kept by the parser as surrogate escapes
        raw = decode_bytes(raw.encode("utf-8", "surrogateescape"), hint)
    if "=?" not in raw or not raw.isascii():
        return " ".join(raw.split())
    try:
        chunks = decode_header(raw)
    except Exception:  # a malformed encoded word: keep the header as it is
        chunks = [(raw, None)]
    text = "".join(c if isinstance(c, str) else decode_bytes(c, charset) for c, charset in chunks)
    return " ".join(text.split())


def _date(msg: Message) -> str:
    value = header_text(msg, "Date")
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return value[:100]


def _leaves(part: Message, depth: int = 0) -> Iterator[tuple[Message, bool]]:
    """Every leaf part, depth first, with whether it is (inside) an attachment."""
    attached = part.get_content_disposition() == "attachment"
    if attached or not part.is_multipart() or depth > 50:
        yield part, attached
        return
    for sub in part.get_payload():
        if isinstance(sub, Message):
            yield from _leaves(sub, depth + 1)


def _html_to_text(html: str) -> str:
    try:
        return extract_plain_text(html, **HTML_OPTIONS)
    except Exception:  # resiliparse parses almost anything; never lose the message over it
        return re.sub(r"<[^>]*>", " ", html)


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return BLANK_RUNS.sub("\n\n", TRAILING_SPACE.sub("\n", text + "\n")).strip()


def _body(msg: Message) -> tuple[str, int, int, str]:
    """(body text, leaf parts, binary text parts, where the text came from)."""
    plain: list[str] = []
    html: list[str] = []
    parts = binary = 0
    for part, attached in _leaves(msg):
        check()  # a message of many parts: the record's time budget
        parts += 1
        ctype = part.get_content_type()
        named = part is not msg and part.get_filename()  # a named inner part is an attachment
        if (
            attached
            or named
            or not (ctype in ("text/plain", "text/html") or ctype.startswith("multipart/"))
        ):
            continue  # attachments, images, ...; a multipart leaf has lost its boundary
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload.strip():
            continue
        if looks_binary(payload):
            binary += 1
            continue
        charset = part.get_content_charset()
        if charset is None and ctype == "text/html":
            meta = META_CHARSET.search(payload[:4096])
            charset = meta.group(1).decode("ascii") if meta else None
        text = decode_bytes(payload, charset)
        if ctype == "text/html" or HTML_START.match(text):
            html.append(_html_to_text(text))
        else:
            plain.append(text)
    body = _tidy("\n\n".join(plain))
    if body:
        return body, parts, binary, "text/plain"
    return _tidy("\n\n".join(html)), parts, binary, "text/html" if html else ""


def _message(data: bytes, offset: int, ctx: ReadContext) -> ReaderOutput:
    if len(data) > ctx.max_record_bytes:
        return BadRecord(
            offset, "record_too_large", f"message larger than {ctx.max_record_bytes} bytes"
        )
    if looks_binary(data):
        return BadRecord(offset, "binary_content", f"{len(data)} bytes with NUL bytes")
    try:
        with ctx.budget.record():
            return _parsed(data, offset)
    except RecordTimeout:
        return BadRecord(offset, "record_timeout", ctx.budget.detail())
    except (
        Exception
    ) as err:  # compat32 rarely raises; a pathological message must not stop the file
        return BadRecord(offset, "malformed_message", error_detail(err))


def _parsed(data: bytes, offset: int) -> ReaderOutput:
    msg = email.message_from_bytes(data, policy=compat32)
    if not msg.keys():
        return BadRecord(offset, "not_a_message", "no header fields before the body")
    hint = next((p.get_content_charset() for p, _ in _leaves(msg) if p.get_content_charset()), None)
    subject = header_text(msg, "Subject", hint)
    body, parts, binary, text_from = _body(msg)
    meta = {"date": _date(msg), "content_type": msg.get_content_type(), "parts": parts}
    record_id = header_text(msg, "Message-ID")[:500]
    if not body:
        if binary:
            return BadRecord(offset, "binary_content", f"{binary} text part(s) with NUL bytes")
        return RawRecord(offset, "", meta=meta, drop="no_text", record_id=record_id)
    if len(CONTROL.findall(body)) > len(body) * MAX_CONTROL_FRACTION:
        return BadRecord(offset, "binary_content", "body is mostly control characters")
    meta["text_from"] = text_from
    text = f"{subject}\n\n{body}" if subject else body
    return RawRecord(offset, text, meta=meta, record_id=record_id)


def _mbox(stream: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(offset, message bytes without the From_ line), or None for a message over `limit`."""
    offset, pos = 0, 0
    lines: list[bytes] = []
    size = 0
    prev_blank = True
    while True:
        line = stream.readline(MAX_LINE)
        if not line or (prev_blank and line.startswith(b"From ") and FROM_LINE.match(line)):
            if pos:  # the first From_ line has nothing before it
                yield offset, (b"".join(lines) if size <= limit else None)
            if not line:
                return
            offset, lines, size = pos, [], 0
        else:
            size += len(line)
            if size <= limit:
                lines.append(line)
        pos += len(line)
        prev_blank = line in (b"\n", b"\r\n")


def read_mail(f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]:
    if not f.stream.peek(5)[:5].startswith(b"From "):
        data = f.stream.read(ctx.max_record_bytes + 1)
        yield _message(data, 0, ctx) if data.strip() else RawRecord(0, "", drop="empty")
        return
    for offset, data in _mbox(f.stream, ctx.max_record_bytes):
        if data is None:
            yield BadRecord(
                offset, "record_too_large", f"message larger than {ctx.max_record_bytes} bytes"
            )
        elif data.strip():
            yield _message(data, offset, ctx)
