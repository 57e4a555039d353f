"""Web: WARC/WET files (any compression InputFile undoes) and loose HTML files, HTML to main text.

WARC parser: warcio (its header parser and HTTP decoders) driven one record at a time over our own
offset-tracking cursor. On ../shared/corpus/web (8 files, 536 records) fastwarc and warcio both read
the decompressed stream and agree on every offset; fastwarc parses faster (60 vs 137 ms, 57 of them
decompression; noise next to extraction at ~15 pages/s) but buffers ahead of a Python stream, so
after a broken record nobody knows where the stream is: its quirks mode resyncs silently, dropped
the good record after garbage, returns a cut-off record as whole, and its chunked decoding raises on
pywb-iana's de-chunked payloads. warcio's own iterator dies at the first bad header. warcio's parts
read only what they are given: offsets stay exact, we resync on the next `WARC/x.y` line and report
what was skipped, and mislabelled chunked/gzip payloads fall back to the raw bytes.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterator

import zstandard
from warcio.bufferedreaders import BufferedReader, ChunkedDataReader
from warcio.recordloader import ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser

from gristmill.transforms.sources import html_text as ht
from gristmill.transforms.sources.budget import RecordTimeout
from gristmill.transforms.sources.reader_api import (
    BadRecord,
    RawRecord,
    ReadContext,
    ReaderOutput,
    Skipped,
    decode_text,
    fingerprint,
    looks_binary,
)
from gristmill.transforms.sources.streams import DecompressionBomb, InputFile, error_detail

MIME = re.compile(r"[a-z0-9][a-z0-9.+-]{0,60}/[a-z0-9][a-z0-9.+-]{0,60}")
WARC_LINE = re.compile(rb"WARC/\d+\.\d+[ \t]*\r?\n")
MAX_LINE = 64 << 10
MAX_HEADER = 256 << 10
SKIP_TYPES = {"request", "metadata", "warcinfo", "revisit"}
_WARC_HEADERS = StatusAndHeadersParser(ArcWarcRecordLoader.WARC_TYPES, verify=False)
_HTTP_HEADERS = StatusAndHeadersParser(["HTTP/"], verify=False)


class _BrokenInput(Exception):
    """The decompressed stream itself failed (cut-off or corrupt gzip/zstd/bz2)."""

    def __init__(self, err: BaseException):
        self.kind = "truncated_input" if isinstance(err, EOFError) else "corrupt_input"
        self.detail = error_detail(err)
        super().__init__(self.kind, self.detail)


def _io(fn, *args):
    try:
        return fn(*args)
    except DecompressionBomb:
        raise  # a configured limit, not malformed content: ReadFiles reports it
    except (EOFError, OSError, zlib.error, zstandard.ZstdError) as err:
        raise _BrokenInput(err) from err


class _Cursor:
    """f.stream with an exact offset and push-back, so a block whose length lied can be re-scanned."""

    def __init__(self, f: InputFile):
        self._stream = f.stream
        self._back = b""
        self._bpos = 0
        self.pos = f.tell()

    def readline(self, limit: int = MAX_LINE) -> bytes:
        if self._bpos < len(self._back):
            end = self._back.find(b"\n", self._bpos, self._bpos + limit)
            stop = end + 1 if end >= 0 else min(len(self._back), self._bpos + limit)
            line = self._back[self._bpos : stop]
            self._bpos = stop
            if stop == len(self._back):
                self._back, self._bpos = b"", 0
            if end < 0 and len(line) < limit:
                line += _io(self._stream.readline, limit - len(line))
        else:
            line = _io(self._stream.readline, limit)
        self.pos += len(line)
        return line

    def read(self, n: int) -> bytes:
        out = self._back[self._bpos : self._bpos + n]
        self._bpos += len(out)
        if len(out) < n:
            out += _io(self._stream.read, n - len(out))
        self.pos += len(out)
        return out

    def unread(self, data: bytes) -> None:
        self._back = data + self._back[self._bpos :]
        self._bpos = 0
        self.pos -= len(data)


def _resync(cur: _Cursor) -> int:
    """Skip to the next line that starts a WARC record (left unread); return the bytes skipped."""
    skipped = 0
    while line := cur.readline():
        if WARC_LINE.fullmatch(line):
            cur.unread(line)
            break
        skipped += len(line)
    return skipped


def _trailer_ok(cur: _Cursor) -> bool:
    """A block ends with CRLF CRLF; tolerate bare or missing newlines, not other bytes."""
    tail = cur.read(4)
    rest = tail.lstrip(b"\r\n")
    if not rest or (len(rest) < len(tail) and b"WARC/".startswith(rest)):
        cur.unread(rest)
        return True
    cur.unread(tail)
    return False


def _content_length(headers: StatusAndHeaders) -> int | None:
    try:
        n = int((headers.get_header("Content-Length") or "").strip())
    except ValueError:
        return None
    return n if n >= 0 else None


Frame = tuple[int, StatusAndHeaders, int, bytes]
# A record boundary followed by a WARC header line: inside a block, proof its length lied.
_BOUNDARY = re.compile(rb"\r\n\r\nWARC/\d+\.\d+\r?\n")


def _header(cur: _Cursor, first: bytes) -> tuple[bytes, str]:
    """The WARC header block after its first line, and "" or what is wrong with it."""
    lines = [first]
    size = len(first)
    while (line := cur.readline()).strip():
        lines.append(line)
        size += len(line)
        if size > MAX_HEADER:
            return b"".join(lines), f"no end of header within {MAX_HEADER} bytes"
    return b"".join(lines), "" if line else "header cut off by end of input"


def _frames(cur: _Cursor, ctx: ReadContext) -> Iterator[Frame | BadRecord | Skipped]:
    """(offset, WARC headers, block offset, block) per well-framed record, a BadRecord per broken
    part. Every pass consumes input, so a hostile file cannot make this loop forever."""
    offset = cur.pos
    try:
        while line := cur.readline():
            offset = cur.pos - len(line)
            if not line.strip():
                continue  # extra blank lines between records
            if not WARC_LINE.fullmatch(line):
                skipped = len(line) + _resync(cur)
                detail = f"{skipped} bytes skipped; first line {fingerprint(line)}"
                yield BadRecord(offset, "invalid_record", detail)
                continue
            header, problem = _header(cur, line)
            headers = _WARC_HEADERS.parse(io.BytesIO(header))
            length = _content_length(headers)
            if problem or length is None:
                cur.unread(header[len(line) :])
                _resync(cur)
                kind = "truncated_record" if problem.startswith("header cut") else "invalid_header"
                detail = problem or "Content-Length missing or not a number"
                yield BadRecord(offset, kind, f"{detail}; header {fingerprint(header)}")
                continue
            rtype = (headers.get_header("WARC-Type") or "").strip().lower()
            block_offset = cur.pos
            want = min(length, ctx.max_record_bytes)
            block = cur.read(want)
            if len(block) < want or (want < length and _BOUNDARY.search(block)):
                # cut off, or a Content-Length that lies: the next record may start inside
                cur.unread(block)
                _resync(cur)
                kind = "truncated_record" if len(block) < want else "bad_content_length"
                yield BadRecord(offset, kind, f"{len(block)} bytes of Content-Length {length}")
                continue
            if want < length:  # a real record over the size limit: skip it
                got = want
                while got < length and (chunk := cur.read(min(1 << 20, length - got))):
                    got += len(chunk)
                too_large = BadRecord(offset, "record_too_large", f"{length} bytes ({rtype})")
                yield Skipped(rtype) if rtype in SKIP_TYPES else too_large
                if got < length:
                    yield BadRecord(offset, "truncated_record", f"{got} of {length} bytes")
                continue
            if not _trailer_ok(cur):
                cur.unread(block)  # the next record may start inside this block, or after it
                _resync(cur)
                detail = f"Content-Length {length} does not end at a record boundary"
                yield BadRecord(offset, "bad_content_length", detail)
                continue
            yield offset, headers, block_offset, block
    except _BrokenInput as err:
        yield BadRecord(offset, err.kind, err.detail)


def _http(block: bytes, limit: int) -> tuple[StatusAndHeaders, bytes, bool]:
    """HTTP headers, the de-chunked and decompressed body, and whether it fit within limit."""
    buf = io.BytesIO(block)
    http = _HTTP_HEADERS.parse(buf)
    body = block[buf.tell() :]
    encoding = (http.get_header("Content-Encoding") or "").strip().lower()
    if encoding not in BufferedReader.get_supported_decompressors():
        encoding = None
    chunked = "chunked" in (http.get_header("Transfer-Encoding") or "").lower()
    if not (chunked or encoding):
        return http, body, True
    reader_cls = ChunkedDataReader if chunked else BufferedReader
    try:  # warcio falls back to the raw bytes when they are not chunked / not compressed after all
        payload = reader_cls(io.BytesIO(body), decomp_type=encoding).read(limit + 1)
    except Exception:
        return http, body, True
    return http, payload[:limit], len(payload) <= limit


def _document(frame: Frame, ctx: ReadContext, extractor: str) -> Iterator[ReaderOutput]:
    offset, headers, block_offset, block = frame
    rtype = (headers.get_header("WARC-Type") or "").strip().lower()
    url = (headers.get_header("WARC-Target-URI") or "").strip().strip("<>")
    record_id = (headers.get_header("WARC-Record-ID") or "").strip()
    ctype = (headers.get_header("Content-Type") or "").strip()
    meta: dict = {"date": (headers.get_header("WARC-Date") or "").strip(), "content_type": ctype}
    if headers.get_header("WARC-Truncated"):
        meta["truncated"] = headers.get_header("WARC-Truncated")

    def record(text: str, drop: str = "", detail: str = "") -> RawRecord:
        return RawRecord(offset, text, url, meta, drop=drop, detail=detail, record_id=record_id)

    if rtype == "conversion":
        text, bad = decode_text(block, block_offset, ctx)
        yield from bad
        if text is not None:
            yield record(text) if text.strip() else record("", "no_text")
        return
    if rtype not in ("response", "resource"):
        yield Skipped(rtype or "unknown")
        return
    payload = block
    if rtype == "response" and block[:5].upper() == b"HTTP/":
        http, payload, fits = _http(block, ctx.max_record_bytes)
        ctype = meta["content_type"] = (http.get_header("Content-Type") or "").strip()
        status = http.get_statuscode() or ""
        if not (status.isascii() and status.isdigit() and 200 <= int(status) < 300):
            yield record("", "http_status", status if status.isdigit() else "unreadable status")
            return
        if not fits:
            yield BadRecord(offset, "record_too_large", "decoded HTTP payload over the limit")
            return
    identified = ht.mime_type(headers.get_header("WARC-Identified-Payload-Type"))
    vague_but_html = ht.mime_type(ctype) in ht.VAGUE_TYPES and identified in ht.HTML_TYPES
    if not (ht.is_html(ctype, payload) or vague_but_html):
        mime = ht.mime_type(ctype)
        yield record("", "not_html", mime if MIME.fullmatch(mime) else "unknown")
        return
    yield from _extract(offset, payload, ctype, extractor, record)


def _extract(
    offset: int, data: bytes, ctype: str, extractor: str, record
) -> Iterator[ReaderOutput]:
    try:
        text = ht.html_to_text(data, ctype, extractor)
    except RecordTimeout:
        raise
    except Exception as err:  # a parser bug on one page must not stop the file
        yield BadRecord(offset, "extraction_failed", error_detail(err))
        return
    yield record(text) if text else record("", "no_text")


def _read_warc(f: InputFile, ctx: ReadContext, extractor: str) -> Iterator[ReaderOutput]:
    for frame in _frames(_Cursor(f), ctx):
        if isinstance(frame, BadRecord | Skipped):
            yield frame
            continue
        try:  # whole outputs or none, so a record that fails half-way leaves one dead letter
            with ctx.budget.record():
                outputs = list(_document(frame, ctx, extractor))
        except RecordTimeout:
            outputs = [BadRecord(frame[0], "record_timeout", ctx.budget.detail())]
        except Exception as err:
            outputs = [BadRecord(frame[0], "invalid_record", error_detail(err))]
        yield from outputs


def _read_html(f: InputFile, ctx: ReadContext, extractor: str) -> Iterator[ReaderOutput]:
    """A loose HTML file is one document, named by its path."""
    try:
        data = _io(f.stream.read, ctx.max_record_bytes + 1)
    except _BrokenInput as err:
        yield BadRecord(0, err.kind, err.detail)
        return
    if len(data) > ctx.max_record_bytes:
        yield BadRecord(0, "record_too_large", f"over {ctx.max_record_bytes} bytes")
        return
    meta = {"content_type": "text/html"}

    def record(text: str, drop: str = "", detail: str = "") -> RawRecord:
        return RawRecord(0, text, ctx.relpath, meta, drop=drop, detail=detail)

    if looks_binary(data):
        yield record("", "not_html", "binary")
        return
    try:
        with ctx.budget.record():
            outputs = list(_extract(0, data, "", extractor, record))
    except RecordTimeout:
        outputs = [BadRecord(0, "record_timeout", ctx.budget.detail())]
    yield from outputs


def read_web(f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]:
    extractor = ctx.options.get("extractor", "trafilatura")
    if extractor not in ht.EXTRACTORS:
        raise ValueError(f"web extractor {extractor!r}: expected one of {ht.EXTRACTORS}")
    try:
        head = _io(f.stream.peek, 64)[:64].lstrip(b" \t\r\n")
    except _BrokenInput as err:
        yield BadRecord(0, err.kind, err.detail)
        return
    if re.match(rb"WARC/\d", head):
        yield from _read_warc(f, ctx, extractor)
    else:
        yield from _read_html(f, ctx, extractor)
