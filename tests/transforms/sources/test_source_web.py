"""The web reader on WARC/WET files written here with warcio, and on hand-written HTML pages.

Nothing here reads ../shared: every input is built in tmp_path.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill.transforms.sources.reader_api import BadRecord, RawRecord, ReadContext, Skipped
from gristmill.transforms.sources.streams import InputFile
from gristmill.transforms.sources.web import read_web

DATE = "2024-05-17T23:31:22Z"
ARTICLE = [
    "The river mill at Ashford ground wheat for the whole valley for more than two centuries, "
    "and its wheel turned through floods, droughts and three changes of ownership.",
    "Records kept by the miller's family describe every repair to the millrace, the price paid "
    "for each new pair of stones, and the names of the farmers who brought their grain.",
    "When the mill finally closed, the village bought the building and restored the wheel, so "
    "that visitors can still watch it turn on the first Saturday of every month.",
]


def page(title: str, paragraphs: list[str], head: str = "") -> str:
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    return (
        f"<!DOCTYPE html>\n<html><head>{head}<title>{title}</title></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/about'>About</a></nav>"
        f"<article><h1>{title}</h1>\n{body}</article>"
        "<footer>Copyright 2024 Example Press</footer></body></html>"
    )


HTML = page("The mill at Ashford", ARTICLE).encode("utf-8")


def http(status: str = "200 OK", ctype: str = "text/html; charset=utf-8", extra=()):
    return StatusAndHeaders(status, [("Content-Type", ctype), *extra], protocol="HTTP/1.1")


def rid(n: int) -> str:
    return f"<urn:uuid:00000000-0000-0000-0000-{n:012d}>"


def write_warc(path: Path, records: list[dict], compress: bool) -> Path:
    """Each spec: type, uri, payload, and optionally http (StatusAndHeaders) and ctype."""
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=compress)
        writer.write_record(writer.create_warcinfo_record("crawl.warc", {"software": "tests"}))
        for n, spec in enumerate(records, start=1):
            headers = {"WARC-Date": DATE, "WARC-Record-ID": rid(n)}
            record = writer.create_warc_record(
                spec["uri"],
                spec["type"],
                payload=io.BytesIO(spec.get("payload", b"")),
                warc_content_type=spec.get("ctype", ""),
                warc_headers_dict=headers,
                http_headers=spec.get("http"),
            )
            writer.write_record(record)
    return path


def response(uri: str, payload: bytes = HTML, **kw) -> dict:
    return {"type": "response", "uri": uri, "payload": payload, "http": http(**kw)}


def request(uri: str) -> dict:
    req = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.com")], is_http_request=True)
    return {"type": "request", "uri": uri, "http": req}


def metadata(uri: str) -> dict:
    return {
        "type": "metadata",
        "uri": uri,
        "payload": b"fetchTimeMs: 12\r\n",
        "ctype": "application/warc-fields",
    }


def read(path: Path, max_record_bytes: int = 64 << 20, **options) -> list:
    ctx = ReadContext(
        source="web",
        path=str(path),
        relpath=f"web/{path.name}",
        options=options,
        max_record_bytes=max_record_bytes,
        on_invalid_utf8="replace",
    )
    return list(read_web(InputFile(str(path), 1 << 30), ctx))


def docs(out: list) -> list[RawRecord]:
    return [o for o in out if isinstance(o, RawRecord) and not o.drop]


def drops(out: list) -> list[RawRecord]:
    return [o for o in out if isinstance(o, RawRecord) and o.drop]


def bad(out: list) -> list[BadRecord]:
    return [o for o in out if isinstance(o, BadRecord)]


def decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def record_starts(data: bytes) -> list[int]:
    return [m.start() for m in re.finditer(rb"WARC/1\.[01]\r\n", data)]


def crawl(tmp_path: Path, compress: bool, name: str = "crawl") -> Path:
    suffix = ".warc.gz" if compress else ".warc"
    return write_warc(
        tmp_path / f"{name}{suffix}",
        [
            request("https://example.com/mill"),
            response("https://example.com/mill"),
            metadata("https://example.com/mill"),
            response(
                "https://example.com/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(200), ctype="image/png"
            ),
            response(
                "https://example.com/gone",
                b"<html><body>Not here</body></html>",
                status="404 Not Found",
            ),
            response("https://example.com/second", page("Second", ARTICLE[::-1]).encode()),
        ],
        compress,
    )


@pytest.mark.parametrize("compress", [False, True])
def test_html_response_becomes_a_document(tmp_path, compress):
    path = crawl(tmp_path, compress)
    out = read(path)
    assert bad(out) == []
    first, second = docs(out)
    assert first.url_or_path == "https://example.com/mill"
    assert first.record_id == rid(2)
    assert first.meta["date"] == DATE
    assert first.meta["content_type"] == "text/html; charset=utf-8"
    assert "ground wheat for the whole valley" in first.text
    assert "watch it turn on the first Saturday" in first.text
    assert "Copyright 2024" not in first.text  # boilerplate is not main text
    assert second.url_or_path == "https://example.com/second"
    starts = record_starts(decompressed(path))
    assert first.offset == starts[2] and second.offset == starts[6]


def test_request_metadata_warcinfo_and_revisit_are_skipped(tmp_path):
    path = tmp_path / "skip.warc.gz"
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        writer.write_record(writer.create_warcinfo_record("skip.warc.gz", {"software": "tests"}))
        for spec in (request("https://example.com/"), metadata("https://example.com/")):
            writer.write_record(
                writer.create_warc_record(
                    spec["uri"],
                    spec["type"],
                    payload=io.BytesIO(spec.get("payload", b"")),
                    warc_content_type=spec.get("ctype", ""),
                    http_headers=spec.get("http"),
                )
            )
        revisit = writer.create_revisit_record(
            "https://example.com/", "sha1:AAAA", "https://example.com/", DATE, http_headers=http()
        )
        writer.write_record(revisit)
    out = read(path)
    assert sorted(o.kind for o in out if isinstance(o, Skipped)) == [
        "metadata",
        "request",
        "revisit",
        "warcinfo",
    ]
    assert len(out) == 4


def test_non_html_and_error_responses_are_dropped_with_a_reason(tmp_path):
    out = read(crawl(tmp_path, compress=True))
    reasons = {(d.url_or_path, d.drop, d.detail) for d in drops(out)}
    assert reasons == {
        ("https://example.com/logo.png", "not_html", "image/png"),
        ("https://example.com/gone", "http_status", "404"),
    }


def test_html_without_main_text_is_dropped_as_no_text(tmp_path):
    path = write_warc(
        tmp_path / "empty.warc",
        [
            response(
                "https://example.com/blank",
                b"<html><head><title></title></head><body></body></html>",
            )
        ],
        compress=False,
    )
    (only,) = [o for o in read(path) if isinstance(o, RawRecord)]
    assert only.drop == "no_text" and only.url_or_path == "https://example.com/blank"


def test_resource_record_with_html_is_a_document(tmp_path):
    spec = {
        "type": "resource",
        "uri": "file:///site/mill.html",
        "payload": HTML,
        "ctype": "text/html",
    }
    log = {
        "type": "resource",
        "uri": "file:///wget.log",
        "payload": b"wget ran\n",
        "ctype": "text/plain",
    }
    out = read(write_warc(tmp_path / "res.warc.gz", [spec, log], compress=True))
    (doc,) = docs(out)
    assert doc.url_or_path == "file:///site/mill.html" and "millrace" in doc.text
    assert [(d.drop, d.detail) for d in drops(out)] == [("not_html", "text/plain")]


def test_wet_conversion_text_is_kept_as_is(tmp_path):
    text = "Escopete - Biquipedia\nIr al contenido\nUn lugar de Castilla.\n"
    spec = {
        "type": "conversion",
        "uri": "https://an.wikipedia.org/wiki/Escopete",
        "payload": text.encode("utf-8"),
        "ctype": "text/plain",
    }
    out = read(write_warc(tmp_path / "x.warc.wet.gz", [spec], compress=True))
    (doc,) = docs(out)
    assert doc.text == text
    assert doc.url_or_path == "https://an.wikipedia.org/wiki/Escopete"
    assert doc.record_id == rid(1) and doc.meta == {"date": DATE, "content_type": "text/plain"}


@pytest.mark.parametrize("compress", [False, True])
def test_loose_html_file_is_one_document(tmp_path, compress):
    path = tmp_path / ("mill.html.gz" if compress else "mill.html")
    path.write_bytes(gzip.compress(HTML) if compress else HTML)
    (doc,) = read(path)
    assert isinstance(doc, RawRecord) and not doc.drop
    assert doc.offset == 0 and doc.url_or_path == f"web/{path.name}" and doc.record_id == ""
    assert "restored the wheel" in doc.text


def test_resiliparse_extractor_and_unknown_extractor(tmp_path):
    path = crawl(tmp_path, compress=True)
    first = docs(read(path, extractor="resiliparse"))[0]
    assert "ground wheat for the whole valley" in first.text
    with pytest.raises(ValueError, match="extractor"):
        read(path, extractor="nope")


RUSSIAN = [
    "Мельница на реке работала больше двухсот лет и молола зерно для всей долины, "
    "переживая наводнения, засухи и смену владельцев.",
    "Семья мельника записывала каждый ремонт, цену новых жерновов и имена крестьян, "
    "которые привозили своё зерно на помол.",
    "Когда мельницу закрыли, деревня выкупила здание и восстановила колесо для посетителей.",
]


def test_non_utf8_charsets_are_honoured(tmp_path):
    russian = page("Мельница", RUSSIAN)
    meta_only = page("Mlyn", ARTICLE, head='<meta charset="windows-1251">')
    records = [
        # charset from the HTTP header
        response(
            "https://example.ru/a",
            russian.encode("cp1251"),
            ctype="text/html; charset=windows-1251",
        ),
        # charset only in a <meta http-equiv> tag
        response(
            "https://example.ru/b",
            page(
                "Мельница",
                RUSSIAN,
                head='<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">',
            ).encode("koi8-r"),
            ctype="text/html",
        ),
        # declared windows-1251 by meta, pure ASCII content plus one byte
        response("https://example.ru/c", meta_only.encode("cp1251") + b"\xc0", ctype="text/html"),
        # nothing declared and invalid UTF-8: replacement characters, no crash
        response(
            "https://example.ru/d", page("x", ARTICLE).encode() + b"\xff\xfe\x80", ctype="text/html"
        ),
    ]
    out = read(write_warc(tmp_path / "ru.warc.gz", records, compress=True))
    assert bad(out) == []
    by_url = {d.url_or_path: d.text for d in docs(out)}
    assert "переживая наводнения" in by_url["https://example.ru/a"]
    assert "привозили своё зерно" in by_url["https://example.ru/b"]
    assert "millrace" in by_url["https://example.ru/c"]
    assert "millrace" in by_url["https://example.ru/d"]


def test_chunked_and_gzip_encoded_payloads_are_decoded(tmp_path):
    chunks = [HTML[:100], HTML[100:]]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    records = [
        response("https://example.com/chunked", chunked, extra=[("Transfer-Encoding", "chunked")]),
        response(
            "https://example.com/gz", gzip.compress(HTML), extra=[("Content-Encoding", "gzip")]
        ),
        # says gzip but is not (as in ClueWeb09): read as is
        response("https://example.com/liar", HTML, extra=[("Content-Encoding", "gzip")]),
    ]
    out = read(write_warc(tmp_path / "enc.warc", records, compress=False))
    assert bad(out) == []
    assert [d.url_or_path for d in docs(out)] == [r["uri"] for r in records]
    assert all("millrace" in d.text for d in docs(out))


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_warc_keeps_earlier_records(tmp_path, compress):
    whole = decompressed(crawl(tmp_path, compress=False, name="whole"))
    starts = record_starts(whole)
    cut = whole[: starts[-1] + (len(whole) - starts[-1]) // 2]  # half of the last response
    path = tmp_path / ("cut.warc.gz" if compress else "cut.warc")
    path.write_bytes(gzip.compress(cut) if compress else cut)
    out = read(path)
    (broken,) = bad(out)
    assert broken.offset == starts[-1] and broken.error == "truncated_record"
    assert [d.url_or_path for d in docs(out)] == ["https://example.com/mill"]
    assert len(drops(out)) == 2


def test_gzip_warc_cut_off_mid_stream_keeps_earlier_records(tmp_path):
    # InputFile hands out decompressed data in 64 KiB reads, and a gzip read that hits the cut
    # fails whole: so the crawl is made larger than that, and the records well before it count.
    filler = [
        f"Paragraph {i} about the mill and its wheel, kept for the record." for i in range(60)
    ]
    specs = [
        response(f"https://example.com/p{i}", page(f"P{i}", filler).encode()) for i in range(40)
    ]
    packed = write_warc(tmp_path / "big.warc.gz", specs, compress=True)
    starts = record_starts(decompressed(packed))
    raw = packed.read_bytes()
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(raw[: len(raw) - 300])  # inside the last gzip member
    out = read(path, extractor="resiliparse")
    (broken,) = bad(out)
    assert broken.error == "truncated_input" and broken.offset in starts
    urls = [d.url_or_path for d in docs(out)]
    assert urls == [f"https://example.com/p{i}" for i in range(len(urls))]
    assert len(urls) >= 20 and broken.offset == starts[len(urls) + 1]


def test_garbage_between_and_instead_of_records_is_skipped_and_reported(tmp_path):
    whole = decompressed(crawl(tmp_path, compress=False))
    starts = record_starts(whole)
    junk = b"this is not a record\r\n\r\n\x00\x01 binary junk \xff\r\n"
    data = whole[: starts[3]] + junk + whole[starts[3] :]
    # and the header of the 404 response replaced by garbage
    n = starts[5] + len(junk)
    header_end = data.index(b"\r\n\r\n", n)
    data = data[:n] + b"XXXX/9.9\r\ngarbage: yes" + data[header_end:]
    path = tmp_path / "junk.warc"
    path.write_bytes(data)
    out = read(path)
    assert [(b.offset, b.error) for b in bad(out)] == [
        (starts[3], "invalid_record"),
        (n, "invalid_record"),
    ]
    assert [d.url_or_path for d in docs(out)] == [
        "https://example.com/mill",
        "https://example.com/second",
    ]
    assert [d.detail for d in drops(out)] == ["image/png"]  # the 404's header was destroyed


@pytest.mark.parametrize("delta", [+150, -150, +(10**12)])
def test_lying_content_length_costs_only_that_record(tmp_path, delta):
    whole = decompressed(crawl(tmp_path, compress=False))
    starts = record_starts(whole)
    head_end = whole.index(b"\r\n\r\n", starts[2])
    header = whole[starts[2] : head_end]
    length = int(re.search(rb"Content-Length: (\d+)", header).group(1))
    header = header.replace(
        b"Content-Length: %d" % length, b"Content-Length: %d" % (length + delta)
    )
    path = tmp_path / "liar.warc"
    path.write_bytes(whole[: starts[2]] + header + whole[head_end:])
    out = read(path)
    (broken,) = bad(out)
    assert broken.offset == starts[2]
    assert broken.error in ("bad_content_length", "truncated_record")
    assert [d.url_or_path for d in docs(out)] == ["https://example.com/second"]
    assert len(drops(out)) == 2 and sum(isinstance(o, Skipped) for o in out) == 3


def test_records_over_the_size_limit_are_reported_and_skipped(tmp_path):
    path = crawl(tmp_path, compress=True)
    out = read(path, max_record_bytes=400)
    starts = record_starts(decompressed(path))
    too_large = [b.offset for b in bad(out) if b.error == "record_too_large"]
    assert too_large == [starts[2], starts[6]]  # the two HTML pages; the small records still read
    assert [d.detail for d in drops(out)] == ["image/png", "404"]
    assert sorted(o.kind for o in out if isinstance(o, Skipped)) == [
        "metadata",
        "request",
        "warcinfo",
    ]


def test_offsets_are_deterministic_and_independent_of_compression(tmp_path):
    plain, packed = crawl(tmp_path, False), crawl(tmp_path, True)

    def offsets(path):
        return [(o.offset, o.url_or_path, o.drop) for o in read(path) if isinstance(o, RawRecord)]

    first = offsets(packed)
    assert first == offsets(packed) == offsets(plain)
    assert [o for o, _, _ in first] == [record_starts(decompressed(plain))[i] for i in (2, 4, 5, 6)]


def test_every_truncation_point_terminates_and_keeps_whole_records(tmp_path):
    whole = decompressed(crawl(tmp_path, compress=False))
    starts = record_starts(whole)
    for cut in range(0, len(whole), max(1, len(whole) // 60)):
        path = tmp_path / "t.warc"
        path.write_bytes(whole[:cut])
        out = read(path, extractor="resiliparse")
        complete = [
            s for s, e in zip(starts, [*starts[1:], len(whole)], strict=True) if e - 4 <= cut
        ]
        seen = {o.offset for o in out if isinstance(o, RawRecord)}
        assert seen >= {starts[i] for i in (2, 4, 5, 6) if starts[i] in complete}
        assert len(bad(out)) <= 1
