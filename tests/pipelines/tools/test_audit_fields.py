"""Personal values outside the text (file names, URLs, metadata, mail headers) through a whole
job: none of them is left in any file of the release, and `audit` says where each was scrubbed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gristmill.pipelines.tools import audit

# value -> where it is put (and where audit must say it was scrubbed from)
VALUES = {
    "549-480-7107": "url_or_path",  # in an article file's name
    "536-22-8745": "url_or_path",
    "5555555555554444": "url_or_path",  # in a mail file's name
    "zed.example@example.org": "meta.author_email",
    "(476) 875-8688": "meta.phone",
    "203.0.113.77": "meta.ip",
    "carla.mendes@example.com": "meta.url",
    "ops.desk@example.net": "meta.record_id",  # the mail's Message-ID
    "ann.lee@example.com": "url_or_path",  # in a kept web page's URL
}
DROPPED_URL_VALUE = "bo.dropped@example.com"  # in the URL of a web record the read stage drops
SALT = "env:AUDIT_FIELDS_SALT"
PROSE = (
    "The harvest came in early this year and the river was high for most of the autumn. "
    "Farmers along the valley reported a good crop of barley, oats and late apples, and the "
    "mill ran day and night to grind what the carts brought down from the hills. "
)


def _inputs(root: Path) -> None:
    articles = root / "articles"
    articles.mkdir(parents=True)
    row = {
        "id": "a1",
        "text": PROSE * 4,
        "author_email": "zed.example@example.org",
        "phone": "(476) 875-8688",
        "ip": "203.0.113.77",
        "url": "https://news.example.com/u/?mail=carla.mendes@example.com&ref=7",
    }
    (articles / "contact_549-480-7107_ssn-536-22-8745.jsonl").write_text(json.dumps(row) + "\n")
    mail = root / "mail"
    mail.mkdir()
    message = (
        "From: Someone <someone@example.org>\nTo: list@example.org\n"
        "Message-ID: <ops.desk@example.net>\nSubject: the mill\n"
        "Date: Mon, 23 Sep 2002 10:00:00 +0000\n\n" + PROSE * 3
    )
    (mail / "msg_5555555555554444.txt").write_text(message)
    _warc(root / "web" / "crawl.warc")


def _warc(path: Path) -> None:
    """A kept HTML page and a PNG (a read drop), each with an e-mail in its URL."""
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    html = "<html><body><article>" + "".join(f"<p>{PROSE}</p>" for _ in range(3))
    records = [
        ("https://blog.example.com/p?author=ann.lee@example.com", "text/html", html.encode()),
        (f"https://blog.example.com/img?who={DROPPED_URL_VALUE}", "image/png", b"\x89PNG" * 50),
    ]
    path.parent.mkdir()
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=False)
        for uri, ctype, payload in records:
            http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
            writer.write_record(
                writer.create_warc_record(
                    uri, "response", payload=io.BytesIO(payload), http_headers=http
                )
            )


@pytest.fixture(scope="module")
def fields_release(tmp_path_factory) -> tuple[Path, str]:
    import os

    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    os.environ["AUDIT_FIELDS_SALT"] = "a test salt for the fields release"
    tmp = tmp_path_factory.mktemp("fields")
    _inputs(tmp / "in")
    sets = [
        f"pii.salt={SALT}", "quality.enabled=false", "langid.enabled=false",
        "dedup.enabled=false", "tokenizer.enabled=true", "mlm.enabled=true",
        "tokenizer.vocab_size=200", "mlm.max_seq_length=64", "runner.workers=1",
    ]  # fmt: skip
    sources = [
        f"articles={tmp}/in/articles/*.jsonl",
        f"mail={tmp}/in/mail/*.txt",
        f"web={tmp}/in/web/*.warc",
    ]
    handler = _Capture()
    logging.getLogger().addHandler(handler)
    try:
        run_job(load(None, sets, sources, str(tmp / "release")))
    finally:
        logging.getLogger().removeHandler(handler)
    return tmp / "release", "\n".join(handler.lines)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _file_text(path: Path) -> str:
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)
    return path.read_bytes().decode("utf-8", errors="replace")


def _holders(root: Path, value: str) -> list[str]:
    forms = {value, value.lower()}
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".arrow" and any(f in _file_text(p) for f in forms)
    )


def test_no_value_outside_the_text_is_left_in_the_release(fields_release):
    root, log = fields_release
    docs = pq.read_table(next((root / "documents").glob("*.parquet"))).to_pylist()
    assert len(docs) == 3  # every document went through
    for value, where in [*VALUES.items(), (DROPPED_URL_VALUE, "a dropped record's URL")]:
        held = _holders(root, value)
        assert held == [], f"a value put in {where} is left in {held}"
        assert value not in log
    by_source = {d["source"]: d for d in docs}
    assert "<PHONE_NUMBER>" in by_source["articles"]["url_or_path"]
    assert json.loads(by_source["articles"]["meta"])["author_email"] == "<EMAIL_ADDRESS>"


def test_audit_reports_where_each_value_was_scrubbed_and_prints_none(fields_release, tmp_path):
    import contextlib
    import io

    root, _ = fields_release
    values = tmp_path / "values.txt"
    values.write_text("\n".join(VALUES) + "\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = audit.main([str(root), "--values", str(values), "--salt", SALT, "--json"])
    results = json.loads(out.getvalue())
    for (value, where), r in zip(VALUES.items(), results, strict=True):
        assert where in r["scrubbed_from"], (where, r["scrubbed_from"])
        assert r["in_shards"] == 0 and r["in_documents"] == 0
        assert r["elsewhere"] == {}
        assert value not in out.getvalue()
    assert code == 0


def test_manifest_input_paths_hold_no_value(fields_release):
    root, _ = fields_release
    manifest = json.loads((root / "manifest.json").read_text())
    assert not [v for v in VALUES if v in json.dumps(manifest, ensure_ascii=False)]
    shown = sorted(i["path"].rsplit("/", 1)[-1] for i in manifest["inputs"])
    assert shown == [
        "contact_<PHONE_NUMBER>_ssn-<US_SSN>.jsonl",
        "crawl.warc",
        "msg_<CREDIT_CARD>.txt",
    ]
    assert all(len(i["path_hmac"]) == 64 for i in manifest["inputs"])


def test_a_dropped_documents_url_is_in_drops_scrubbed(fields_release):
    root, _ = fields_release
    drops = [
        r for f in sorted((root / "drops").glob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]
    [png] = [d for d in drops if d["reason"] == "not_html"]
    assert png["stage"] == "read"
    assert png["url_or_path"] == "https://blog.example.com/img?who=<EMAIL_ADDRESS>"


def test_findings_name_their_field(fields_release):
    root, _ = fields_release
    rows = [
        r
        for f in sorted((root / "pii").glob("findings-*.parquet"))
        for r in pq.read_table(f).to_pylist()
    ]
    by_source: dict[str, set[tuple[str, str]]] = {}
    for r in rows:
        by_source.setdefault(r["source"], set()).add((r["field"], r["entity_type"]))
        assert "/" not in r["recognizer"]  # the field is its own column, not a prefix
    assert ("meta.author_email", "EMAIL_ADDRESS") in by_source["articles"]
    assert ("url_or_path", "PHONE_NUMBER") in by_source["articles"]
    assert ("url_or_path", "EMAIL_ADDRESS") in by_source["web"]
    assert ("meta.record_id", "EMAIL_ADDRESS") in by_source["mail"]
    # offsets are in the field's own value: the web page's URL holds the e-mail at them
    [web] = [r for r in rows if r["source"] == "web" and r["field"] == "url_or_path"]
    url = "https://blog.example.com/p?author=ann.lee@example.com"
    assert url[web["start"] : web["end"]] == "ann.lee@example.com"
