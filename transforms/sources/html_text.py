"""HTML bytes to main text: charset decoding and the configurable main-content extractor.

Both the web reader and `bench/extraction.py` call `html_to_text`, so the benchmark scores exactly
what the pipeline runs. Extraction is deterministic: no metadata/date extraction, no cross-document
deduplication cache (trafilatura's `deduplicate` depends on what a worker saw before), no network.
"""

from __future__ import annotations

import codecs
import re

import trafilatura
from resiliparse.extract.html2text import extract_plain_text

EXTRACTORS = ("trafilatura", "resiliparse")

# Mean token F1 on the article-extraction-benchmark pages (bench/extraction.py): trafilatura's
# defaults 0.948; without comments 0.959; favor_precision on top 0.965. Keeping the fallback
# extractors (fast=False) matters: favor_precision with fast=True drops to 0.946.
TRAFILATURA_OPTIONS = {
    "include_comments": False,
    "favor_precision": True,
    "include_tables": True,
    "deduplicate": False,
    "with_metadata": False,
    "fast": False,
}
# resiliparse defaults (main_content=True) score 0.898; dropping comments, alt texts, list
# bullets and post metadata brings it to 0.937 at about ten times trafilatura's speed.
RESILIPARSE_OPTIONS = {
    "main_content": True,
    "comments": False,
    "alt_texts": False,
    "list_bullets": False,
    "post_meta": False,
}

HTML_TYPES = {"text/html", "application/xhtml+xml", "application/xhtml", "text/xhtml"}
# Types that say nothing about the payload: sniff the bytes instead.
VAGUE_TYPES = {
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/unknown",
    "unknown/unknown",
    "text/plain",
    "*/*",
    "none",
}
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<meta ")

_CT_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
META_SCAN_BYTES = 16 << 10

# Labels whose web meaning is a superset of Python's codec of the same name (WHATWG encoding spec).
_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
    "utf8": "utf-8",
    "unicode": "utf-8",
}
_SINGLE_BYTE_WESTERN = {"cp1252", "iso8859-1", "ascii", "cp1254"}


def mime_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def charset_of(content_type: str | None) -> str | None:
    m = _CT_CHARSET.search(content_type or "")
    return m.group(1) if m else None


def looks_like_html(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return any(marker in head for marker in _HTML_MARKERS)


def is_html(content_type: str | None, data: bytes) -> bool:
    """Declared HTML, or a vague/missing type whose bytes look like HTML."""
    mime = mime_type(content_type)
    if mime in HTML_TYPES:
        return True
    return mime in VAGUE_TYPES and looks_like_html(data)


def _codec(label: str | None) -> str | None:
    """Python codec name for a charset label, or None if unknown or not a text encoding."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if name.startswith("utf-16") or name.startswith("utf-32"):
        return "utf-8"  # a declaration read from ASCII-compatible bytes cannot be UTF-16
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # base64, rot13, zlib... are codecs but not charsets
    return info.name


def declared_charsets(data: bytes, http_charset: str | None) -> list[str]:
    """Codecs in order of authority: the HTTP header, then <meta> or the XML declaration."""
    labels = [http_charset]
    head = data[:META_SCAN_BYTES]
    for pattern in (_XML_ENCODING, _META_CHARSET):
        m = pattern.search(head)
        if m:
            labels.append(m.group(1).decode("ascii", "replace"))
    found: list[str] = []
    for label in labels:
        codec = _codec(label)
        if codec and codec not in found:
            found.append(codec)
    return found


def _try_decode(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def decode_html(data: bytes, http_charset: str | None = None) -> tuple[str, str]:
    """(text, codec): BOM, then declared charsets that decode cleanly, else UTF-8 with U+FFFD.

    Bytes declared Latin-1/ASCII/cp1252 that are valid UTF-8 with non-ASCII characters are read
    as UTF-8: such a declaration is a server default far more often than the page's truth.
    """
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, errors="replace"), codec
    declared = declared_charsets(data, http_charset)
    for codec in declared:
        if codec in _SINGLE_BYTE_WESTERN and not data.isascii():
            text = _try_decode(data, "utf-8")
            if text is not None:
                return text, "utf-8"
        text = _try_decode(data, codec)
        if text is not None:
            return text, codec
    codec = declared[0] if declared else "utf-8"
    try:
        return data.decode(codec, errors="replace"), codec
    except (LookupError, ValueError):
        return data.decode("utf-8", errors="replace"), "utf-8"


_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def extract_main_text(html: str, extractor: str = "trafilatura") -> str:
    """Main text of a decoded page ("" when there is none)."""
    # lxml refuses str input that carries an encoding declaration, and NUL/control characters.
    html = _CONTROL.sub(" ", _XML_DECL.sub("", html, count=1))
    if extractor == "trafilatura":
        text = trafilatura.extract(html, **TRAFILATURA_OPTIONS) or ""
    elif extractor == "resiliparse":
        text = extract_plain_text(html, **RESILIPARSE_OPTIONS)
    else:
        raise ValueError(f"unknown extractor {extractor!r}; expected one of {EXTRACTORS}")
    return text.strip()


def html_to_text(
    data: bytes, content_type: str | None = None, extractor: str = "trafilatura"
) -> str:
    """The reader's extraction path: decode by declared charset, then extract the main text."""
    html, _ = decode_html(data, charset_of(content_type))
    return extract_main_text(html, extractor)
