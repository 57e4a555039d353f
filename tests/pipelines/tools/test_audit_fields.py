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
}
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
    sources = [f"articles={tmp}/in/articles/*.jsonl", f"mail={tmp}/in/mail/*.txt"]
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
    assert len(docs) == 2  # both documents went through
    for value, where in VALUES.items():
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
    assert shown == ["contact_<PHONE_NUMBER>_ssn-<US_SSN>.jsonl", "msg_<CREDIT_CARD>.txt"]
    assert all(len(i["path_hmac"]) == 64 for i in manifest["inputs"])
