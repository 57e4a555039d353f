"""Wiki: MediaWiki XML export dumps, one record per <page>, streamed in constant memory.

The dump is fed to an incremental XML parser in 1 MiB chunks; each page's element is dropped as
soon as it is read (and each revision as soon as its fields are taken, so full-history dumps stay
small too). Any export schema version works: tags are matched on their local name.

Offsets are page ordinals (0, 1, 2, ... in dump order), which stay the same however the file is
compressed. A parse error (truncated dump, bad tag) ends the file with one dead letter naming the
page ordinal and the decompressed byte position; the pages before it are kept.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from gristmill.transforms.sources.records import BadRecord, RawRecord, ReadContext, ReaderOutput
from gristmill.transforms.sources.streams import InputFile
from gristmill.transforms.sources.wikitext import wikitext_to_text

CHUNK = 1 << 20
REDIRECT_TEXT = re.compile(r"\s*#REDIRECT\s*:?\s*\[\[([^\]|]*)", re.IGNORECASE)
URL_SAFE = ";@$!*(),/~:"  # what MediaWiki leaves unescaped in article URLs


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return None


@dataclass(slots=True)
class _Site:
    base: str = ""  # scheme://host/wiki/ taken from <siteinfo><base>
    namespaces: dict[str, int] = field(default_factory=dict)

    def read(self, siteinfo: ET.Element) -> None:
        for child in siteinfo:
            name = _local(child.tag)
            if name == "base" and child.text:
                url = urlsplit(child.text.strip())
                if url.netloc:
                    path = url.path.rsplit("/", 1)[0] if "/" in url.path.strip("/") else "/wiki"
                    self.base = f"{url.scheme or 'https'}://{url.netloc}{path}/"
            elif name == "namespaces":
                for ns in child:
                    if ns.text and ns.get("key", "").lstrip("-").isdigit():
                        self.namespaces[ns.text.strip().lower()] = int(ns.get("key", "0"))

    def namespace_of(self, title: str) -> int:
        """For old exports without <ns>: the namespace from the title's prefix."""
        if ":" in title:
            return self.namespaces.get(title.split(":", 1)[0].strip().lower(), 0)
        return 0

    def url(self, title: str, ctx: ReadContext) -> str:
        base = self.base or ctx.options.get("base_url", "")
        if not base:
            return f"{ctx.relpath}#{title}"
        return base.rstrip("/") + "/" + quote(title.replace(" ", "_"), safe=URL_SAFE)


@dataclass(slots=True)
class _Revision:
    id: str = ""
    timestamp: str = ""
    model: str = ""
    text: str = ""

    @classmethod
    def of(cls, elem: ET.Element) -> _Revision:
        return cls(
            id=(_child_text(elem, "id") or "").strip(),
            timestamp=(_child_text(elem, "timestamp") or "").strip(),
            model=(_child_text(elem, "model") or "").strip(),
            text=_child_text(elem, "text") or "",
        )


def _page_record(
    page: ET.Element, rev: _Revision | None, ordinal: int, site: _Site, ctx: ReadContext
) -> ReaderOutput:
    title = (_child_text(page, "title") or "").strip()
    page_id = (_child_text(page, "id") or "").strip()
    ns_text = (_child_text(page, "ns") or "").strip()
    ns = int(ns_text) if ns_text.lstrip("-").isdigit() else site.namespace_of(title)
    rev = rev or _Revision()
    meta = {"title": title, "page_id": page_id, "revision_id": rev.id, "timestamp": rev.timestamp}
    url = site.url(title, ctx) if title else ""

    def drop(reason: str, detail: str = "") -> RawRecord:
        return RawRecord(ordinal, "", url, meta, drop=reason, detail=detail, record_id=page_id)

    if ns != 0:
        return drop("wiki_namespace", str(ns))
    redirect = next((c for c in page if _local(c.tag) == "redirect"), None)
    if redirect is not None:
        return drop("wiki_redirect", redirect.get("title", ""))
    if m := REDIRECT_TEXT.match(rev.text):
        return drop("wiki_redirect", m.group(1).strip())
    if rev.model and rev.model != "wikitext":
        return drop("wiki_content_model", rev.model)
    if len(rev.text) > ctx.max_record_bytes:
        return BadRecord(ordinal, "record_too_large", f"page {title!r}: {len(rev.text)} chars")
    try:
        text = wikitext_to_text(rev.text)
    except Exception as err:  # mwparserfromhell gives up on some pathological markup
        return BadRecord(ordinal, "wikitext_error", f"page {title!r}: {type(err).__name__}: {err}")
    if not text:
        return drop("no_text")
    return RawRecord(ordinal, text, url, meta, record_id=page_id)


def _byte_position(err: ET.ParseError, buf: bytes, buf_start: int, lines_before: int) -> int:
    """Decompressed byte offset of a parse error's (line, column), found in the last chunk fed."""
    line, col = err.position
    pos, need = 0, line - 1 - lines_before
    if need < 0:
        return buf_start
    for _ in range(need):
        pos = buf.find(b"\n", pos) + 1
        if pos == 0:
            return buf_start + len(buf)
    return buf_start + pos + col


def read_wiki(f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]:
    parser = ET.XMLPullParser(events=("start", "end"))
    site = _Site()
    root: ET.Element | None = None
    page: ET.Element | None = None
    depth = 0  # element depth: 1 is <mediawiki>, 2 is <page>/<siteinfo>, 3 is <revision>
    page_depth = 2
    latest: _Revision | None = None
    ordinal = 0
    buf, buf_start, lines_before = b"", 0, 0  # the last chunk fed, to place a parse error
    while True:
        try:
            chunk = f.stream.read(CHUNK)
        except (OSError, EOFError) as err:  # truncated or corrupt compressed stream
            where = f"page {ordinal}, decompressed byte {buf_start + len(buf)}"
            yield BadRecord(ordinal, type(err).__name__, f"{where}: {err}"[:500])
            return
        error: ET.ParseError | None = None
        try:
            if chunk:
                lines_before += buf.count(b"\n")
                buf_start += len(buf)
                buf = chunk
                parser.feed(chunk)
            else:
                parser.close()  # raises on a truncated document
        except ET.ParseError as err:
            error = err
        for event, elem in parser.read_events():  # events before an error are still good
            if event == "start":
                depth += 1
                if root is None:
                    root = elem
                    # a bare <page> document (no <mediawiki> wrapper) has its pages at depth 1
                    page_depth = 1 if _local(elem.tag) == "page" else 2
                if depth == page_depth and _local(elem.tag) == "page":
                    page = elem
                continue
            depth -= 1
            name = _local(elem.tag)
            if name == "siteinfo" and depth == 1:
                site.read(elem)
                root.clear()
            elif name == "revision" and depth == page_depth and page is not None:
                latest = _Revision.of(elem)
                page.remove(elem)  # full-history dumps: keep only the newest revision's fields
            elif name == "page" and depth == page_depth - 1:
                yield _page_record(elem, latest, ordinal, site, ctx)
                ordinal += 1
                latest, page = None, None
                elem.clear()
                if root is not elem:
                    root.clear()
        if error is not None:
            line, col = error.position
            byte = _byte_position(error, buf, buf_start, lines_before)
            where = f"page {ordinal}, line {line} column {col}, decompressed byte {byte}"
            yield BadRecord(ordinal, "malformed_xml", f"{where}: {error}"[:500])
            return
        if not chunk:
            return
