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

from gristmill.transforms.sources.budget import RecordTimeout
from gristmill.transforms.sources.reader_api import BadRecord, RawRecord, ReadContext, ReaderOutput
from gristmill.transforms.sources.streams import DecompressionBomb, InputFile, error_detail
from gristmill.transforms.sources.wikitext import wikitext_to_text

CHUNK = 1 << 18  # also bounds the parser events queued at once (a few times the chunk)
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
    base: str = ""  # https://host/wiki/, from <siteinfo><base>
    namespaces: dict[str, int] = field(default_factory=dict)

    def read(self, siteinfo: ET.Element) -> None:
        for child in siteinfo:
            name = _local(child.tag)
            if name == "base" and child.text:
                url = urlsplit(child.text.strip())
                if url.netloc:  # /wiki/Main_Page -> /wiki/; a ?title= style base -> /wiki/
                    path = url.path.strip("/")
                    path = path.rsplit("/", 1)[0] if "/" in path and not url.query else "wiki"
                    self.base = f"https://{url.netloc}/{path}/"
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
        """The article URL on the dump's own site; without a <base>, `relpath#title`."""
        if not self.base:
            return f"{ctx.relpath}#{title}"
        return self.base + quote(title.replace(" ", "_"), safe=URL_SAFE)


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
        return BadRecord(ordinal, "record_too_large", f"wikitext of {len(rev.text)} chars")
    try:
        with ctx.budget.record():
            text = wikitext_to_text(rev.text)
    except RecordTimeout:
        return BadRecord(ordinal, "record_timeout", ctx.budget.detail())
    except Exception as err:  # mwparserfromhell gives up on some pathological markup
        return BadRecord(ordinal, "wikitext_error", error_detail(err))
    if not text:
        return drop("no_text")
    return RawRecord(ordinal, text, url, meta, record_id=page_id)


@dataclass(slots=True)
class _Fed:
    """Where the last chunk fed to the parser sits, to turn a (line, column) into a byte offset."""

    chunk: bytes = b""
    start: int = 0  # decompressed offset of the chunk
    lines_before: int = 0  # newlines before the chunk
    line_start: int = 0  # offset just after the last newline before the chunk

    def advance(self, chunk: bytes) -> None:
        self.lines_before += self.chunk.count(b"\n")
        last = self.chunk.rfind(b"\n")
        if last >= 0:
            self.line_start = self.start + last + 1
        self.start += len(self.chunk)
        self.chunk = chunk

    def byte(self, err: ET.ParseError) -> int:
        line, col = err.position
        need = line - 1 - self.lines_before  # newlines into this chunk before the error's line
        if need < 0:
            return self.start
        begin = self.line_start
        pos = 0
        for _ in range(need):
            pos = self.chunk.find(b"\n", pos) + 1
            if pos == 0:
                return self.start + len(self.chunk)
            begin = self.start + pos
        if begin < self.start:  # the line began in an earlier chunk: count the column as bytes
            return begin + col
        line_text = self.chunk[begin - self.start :].decode("utf-8", "replace")
        return begin + len(line_text[:col].encode("utf-8"))  # expat counts columns in characters


class _Dump:
    """Turns parser events into page records, dropping each element as soon as it is used."""

    def __init__(self, ctx: ReadContext):
        self.ctx = ctx
        self.site = _Site()
        self.root: ET.Element | None = None
        self.page: ET.Element | None = None
        self.depth = 0  # element depth: 1 is <mediawiki>, 2 is <page>/<siteinfo>, 3 <revision>
        self.page_depth = 2
        self.latest: _Revision | None = None
        self.ordinal = 0  # pages seen so far: the next page's offset

    def event(self, event: str, elem: ET.Element) -> ReaderOutput | None:
        name = _local(elem.tag)
        if event == "start":
            self.depth += 1
            if self.root is None:
                self.root = elem
                # a bare <page> document (no <mediawiki> wrapper) has its pages at depth 1
                self.page_depth = 1 if name == "page" else 2
            if self.depth == self.page_depth and name == "page":
                self.page = elem
            return None
        self.depth -= 1
        if name == "siteinfo" and self.depth == 1 and self.root is not None:
            self.site.read(elem)
            self.root.clear()
        elif name == "revision" and self.depth == self.page_depth and self.page is not None:
            self.latest = _Revision.of(elem)
            self.page.remove(elem)  # full-history dumps: keep only the newest revision's fields
        elif name == "page" and self.depth == self.page_depth - 1:
            out = _page_record(elem, self.latest, self.ordinal, self.site, self.ctx)
            self.ordinal += 1
            self.latest, self.page = None, None
            elem.clear()
            if self.root is not None and self.root is not elem:
                self.root.clear()
            return out
        return None


def read_wiki(f: InputFile, ctx: ReadContext) -> Iterator[ReaderOutput]:
    parser = ET.XMLPullParser(events=("start", "end"))
    dump = _Dump(ctx)
    fed = _Fed()
    while True:
        try:
            chunk = f.stream.read(CHUNK)
        except DecompressionBomb:
            raise  # ReadFiles reports it; nothing after the cap is read
        except (OSError, EOFError) as err:  # a cut-off or corrupt gzip/bz2/zstd stream
            kind = "truncated_input" if isinstance(err, EOFError) else "corrupt_input"
            where = f"page {dump.ordinal}, decompressed byte {fed.start + len(fed.chunk)}"
            yield BadRecord(dump.ordinal, kind, f"{where}: {error_detail(err)}")
            return
        try:
            if chunk:
                fed.advance(chunk)
                parser.feed(chunk)
            else:
                parser.close()  # raises on a truncated document
            for event, elem in parser.read_events():  # a ParseError comes after the good events
                out = dump.event(event, elem)
                if out is not None:
                    yield out
        except ET.ParseError as err:
            line, col = err.position
            byte = fed.byte(err)
            where = f"page {dump.ordinal}, line {line} column {col}, decompressed byte {byte}"
            yield BadRecord(dump.ordinal, "malformed_xml", f"{where}: {err}"[:500])
            return
        if not chunk:
            return
