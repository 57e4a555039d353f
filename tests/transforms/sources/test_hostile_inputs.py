"""Hostile inputs through the real job: decompression bombs of every codec, a Parquet file whose
footer says one string is huge, a WARC whose broken parts hold an e-mail address, wikitext
that used to take quadratic time. Each costs a counted dead letter (or reads fast), the good
files around it are documents, and no dead letter carries the input's bytes."""

from __future__ import annotations

import bz2
import gzip
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from helpers import check_release, compress, jsonl, run_corpus, write

CAP = 10 << 20  # read.max_decompressed_bytes (the 10 MB)
RECORD = 1 << 20  # read.max_record_bytes
SECRET = "jane.doe@example.org"
PROSE = (
    "The mill stood by the river for two hundred years, grinding wheat for the valley. "
    "Every spring the miller dressed the stones, cutting fresh furrows into their faces. "
)


def zstd_zeros(path: Path, total: int) -> Path:
    """A zstd file of `total` zero bytes (2 GiB make a 65 KB file): the issue's bomb."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh, zstandard.ZstdCompressor(level=3).stream_writer(fh) as w:
        chunk = b"\0" * (16 << 20)
        for _ in range(total // len(chunk)):
            w.write(chunk)
    return path


def book(token: str) -> bytes:
    return f"{token} opens the book.\n\n{PROSE}\n".encode()


def warc(records: list[bytes]) -> bytes:
    return b"".join(records)


def warc_response(n: int, html: str) -> bytes:
    payload = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html.encode()
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\n"
        f"WARC-Target-URI: http://example.com/{n}\r\n"
        f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{n:012d}>\r\n"
        "WARC-Date: 2024-01-01T00:00:00Z\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload + b"\r\n\r\n"


def html_page(token: str) -> str:
    paras = "".join(f"<p>{token} {PROSE}</p>" for _ in range(6))
    return (
        f"<html><head><title>{token}</title></head><body><article>{paras}</article></body></html>"
    )


def wiki_dump(pages: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<page><title>{t}</title><ns>0</ns><id>{i + 1}</id><revision><id>{i + 10}</id>"
        f'<text xml:space="preserve">{text}</text></revision></page>\n'
        for i, (t, text) in enumerate(pages)
    )
    return f"<mediawiki>\n{body}</mediawiki>\n".encode()


def parquet_with_huge_row(path: Path) -> Path:
    """Three row groups: good, one 30 MB string alone, then a group that mixes a 2 MB row
    between two good ones (too small on average to refuse unread, so read in batches)."""
    schema = pa.schema([("id", pa.string()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema, compression="zstd") as w:
        w.write_table(pa.table({"id": ["g0", "g1"], "text": [f"g0 {PROSE}", f"g1 {PROSE}"]}))
        w.write_table(pa.table({"id": ["huge"], "text": ["a" * (30 << 20)]}))
        mixed = {"id": ["m0", "big", "m2"], "text": [f"m0 {PROSE}", "b" * (2 << 20), "m2 ok"]}
        w.write_table(pa.table(mixed))
    return path


def _run(root: Path, sources: dict[str, Path], sets: list[str]) -> tuple[Path, dict, float]:
    out = root / "out"
    started = time.monotonic()
    manifest = run_corpus(out, [f"{kind}={path}/*" for kind, path in sources.items()], sets)
    return out, manifest, time.monotonic() - started


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """Bombs of every codec among good books, under a 10 MB cap."""
    root = tmp_path_factory.mktemp("bombs")
    books = root / "in" / "books"
    zstd_zeros(books / "bomb.zst", 2 << 30)
    write(books / "bomb.gz", gzip.compress(b"\0" * (64 << 20), 9))
    write(books / "bomb.bz2", bz2.compress(b"\0" * (64 << 20), 9))
    for kind in ("plain", "gzip", "bz2", "zstd"):
        write(books / f"good_{kind}.txt", compress(kind, book(f"GOOD{kind.upper()}")))
    return _run(root, {"books": books}, [f"read.max_decompressed_bytes={CAP}"])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Parquet, WARC and wiki inputs that are hostile in one record, under a 1 MB record limit."""
    root = tmp_path_factory.mktemp("hostile")
    arts, web, wiki = (root / "in" / k for k in ("articles", "web", "wiki"))
    parquet_with_huge_row(write(arts / "rows.parquet", b""))
    write(arts / "good.jsonl", jsonl([{"id": "j0", "text": f"j0 {PROSE}"}]))
    broken = (
        f"WARC/1.0\r\nWARC-Type: response\r\nFrom: {SECRET}\r\n"
        f"Content-Length: twelve {SECRET}\r\n\r\nbody of {SECRET}\r\n\r\n"
    ).encode()
    garbage = f"{SECRET} wrote this line outside any record\r\n".encode()
    records = [warc_response(1, html_page("WEBONE")), broken, garbage]
    write(web / "crawl.warc", warc([*records, warc_response(2, html_page("WEBTWO"))]))
    refs = "Refs page prose. " + "&lt;ref&gt;" * 10_000  # 50 KB of unclosed <ref>
    write(wiki / "dump.xml", wiki_dump([("Refs", refs), ("Good", f"Good page. {PROSE}")]))
    sources = {"articles": arts, "web": web, "wiki": wiki}
    return _run(root, sources, [f"read.max_record_bytes={RECORD}"])


def _dead(tables) -> dict[str, list[dict]]:
    by_file: dict[str, list[dict]] = {}
    for row in tables["dead_letters"]:
        by_file.setdefault(Path(row["file"]).name, []).append(row)
    return by_file


@pytest.mark.job
def test_bombs_of_every_codec_stop_at_the_cap(bombs):
    out, manifest, wall = bombs
    tables = check_release(out, manifest)
    dead = _dead(tables)
    for name in ("bomb.zst", "bomb.gz", "bomb.bz2"):
        [row] = dead[name]
        assert row["error"] == "decompression_bomb", row
        assert row["offset"] <= CAP, row
    texts = {d["url_or_path"]: d["text"] for d in tables["documents"]}
    for kind in ("plain", "gzip", "bz2", "zstd"):
        assert texts[f"good_{kind}.txt"].startswith(f"GOOD{kind.upper()} opens the book.")
    assert len(tables["documents"]) == 4 and len(tables["dead_letters"]) == 3
    assert wall < 120, wall  # 2 GiB of zstd zeros stop at the cap in well under a second


@pytest.mark.job
def test_parquet_rows_over_the_limits_are_dead_letters_unread(hostile):
    out, manifest, _ = hostile
    tables = check_release(out, manifest)
    rows = sorted((r["offset"], r["error"]) for r in _dead(tables)["rows.parquet"])
    assert rows == [(2, "record_too_large"), (4, "record_too_large")]
    ids = {
        json.loads(d["meta"])["record_id"]
        for d in tables["documents"]
        if d["url_or_path"] == "rows.parquet"
    }
    assert ids == {"g0", "g1", "m0", "m2"}
    assert max(len(d["text"]) for d in tables["documents"]) < RECORD


@pytest.mark.job
def test_dead_letters_never_hold_the_input_bytes(hostile):
    out, manifest, _ = hostile
    tables = check_release(out, manifest)
    warc_dead = _dead(tables)["crawl.warc"]
    assert {r["error"] for r in warc_dead} >= {"invalid_header"}
    for row in tables["dead_letters"]:
        assert "jane" not in row["detail"] and "example.org" not in row["detail"], row
    for row in warc_dead:
        assert "blake2b" in row["detail"], row  # the broken part is named by size and hash
    web_docs = [d["text"] for d in tables["documents"] if d["source"] == "web"]
    assert len(web_docs) == 2 and all("WEB" in t for t in web_docs)


@pytest.mark.job
def test_quadratic_wikitext_reads_fast(hostile):
    out, manifest, wall = hostile
    tables = check_release(out, manifest)
    titles = {
        json.loads(d["meta"])["title"]: d["text"]
        for d in tables["documents"]
        if d["source"] == "wiki"
    }
    assert set(titles) == {"Refs", "Good"}
    assert titles["Refs"].startswith("Refs page prose.")
    assert wall < 120, wall  # the bombs and the refs page cost seconds, not minutes
