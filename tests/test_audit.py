"""`gristmill audit`: values located by direct scan and by HMAC, never printed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from gristmill.pipelines import audit
from gristmill.pipelines.privacy import write_privacy_report
from gristmill.schemas import tables
from gristmill.schemas.records import Document
from gristmill.transforms import pii
from gristmill.transforms.accounting import StageContext
from gristmill.transforms.sinks import WriteShardedParquet

SALT = "audit test salt, not the default"
TEXTS = [
    "Write to carla.mendes@example.com or call (212) 555-0143 before Friday.",
    "Zebulon Quackenbush chaired the meeting; minutes were sent to ops@example.net.",
    "No contact details here, only notes about the harvest.",
]


def _rows(rows, path):
    Path(path).write_text(json.dumps(sorted(list(r) for r in rows)))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A small release: scrubbed documents, findings, reports and a manifest."""
    root = tmp_path_factory.mktemp("release")
    s = copy.deepcopy(pii.DEFAULTS)
    s["salt"] = SALT
    s["residual"]["enabled"] = False
    docs = [Document(f"doc{i}", "mail", "p", t, "en") for i, t in enumerate(TEXTS)]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        kept, _, extras = (
            p | beam.Create(docs) | pii.build(s, StageContext("pii", str(root), 0, {}))
        )
        _ = kept | WriteShardedParquet(
            str(root), "documents/part", 1, tables.documents_table, lambda d: d.id, lambda d: d.id
        )
        _ = extras["report"] | beam.combiners.ToList() | beam.Map(_rows, str(root / "rows.json"))
    rows = [tuple(r) for r in json.loads((root / "rows.json").read_text())]
    write_privacy_report(str(root), rows, {"pii": s})
    (root / "manifest.json").write_text("{}")
    return root


def _audit(release: Path, tmp_path: Path, values: list[str], *args: str, capsys=None):
    path = tmp_path / "values.txt"
    path.write_text("\n".join(values) + "\n")
    code = audit.main([str(release), "--values", str(path), *args])
    return code, capsys.readouterr() if capsys else None


def test_audit_finds_values_by_hmac_and_direct_scan(release, tmp_path, capsys):
    values = [
        "carla.mendes@example.com",  # scrubbed: a finding, not in the documents
        "212.555.0143",  # the same phone written differently: same HMAC
        "Zebulon Quackenbush",  # fast mode does not scrub names: still in the documents
        "nobody@nowhere.example",  # never there
    ]
    code, out = _audit(release, tmp_path, values, "--salt", SALT, "--json", capsys=capsys)
    assert code == 1  # one value still occurs in the documents
    result = {r["line"]: r for r in json.loads(out.out)}
    assert result[1]["in_findings"] == 1 and result[1]["in_documents"] == 0
    assert result[1]["finding_types"] == {"EMAIL_ADDRESS": 1}
    assert result[2]["finding_types"] == {"PHONE_NUMBER": 1}
    assert result[3]["in_documents"] == 1 and result[3]["document_ids"] == ["doc1"]
    assert result[3]["in_findings"] == 0
    assert result[4]["in_documents"] == result[4]["in_findings"] == 0
    for value in values:
        assert value not in out.out and value not in out.err


def test_audit_text_output_masks_values(release, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(audit.SALT_ENV, SALT)
    code, out = _audit(release, tmp_path, ["ops@example.net", "", "(212) 555-0143"], capsys=capsys)
    assert code == 0
    assert "line    1" in out.out and "line    3" in out.out
    assert "found and scrubbed 1 times in 1 documents (EMAIL_ADDRESS)" in out.out
    assert "ops@example.net" not in out.out and "555-0143" not in out.out
    assert "**" in out.out


def test_direct_scan_ignores_separators_between_digits(release, tmp_path, capsys):
    code, out = _audit(release, tmp_path, ["212 555 0143"], "--salt", SALT, "--json", capsys=capsys)
    assert json.loads(out.out)[0]["in_documents"] == 0  # the phone number was scrubbed
    assert audit.value_pattern("212 555 0143").search("call (212) 555-0143 today")


def test_wrong_salt_is_refused(release, tmp_path, capsys):
    code, out = _audit(
        release, tmp_path, ["ops@example.net"], "--salt", "some other salt", capsys=capsys
    )
    assert code == 2
    assert "not the one this release was built with" in out.err
    code, out = _audit(release, tmp_path, ["ops@example.net"], capsys=capsys)  # the default salt
    assert code == 2


def test_salt_from_job_file(release, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUDIT_TEST_SALT", SALT)
    job = tmp_path / "job.yaml"
    job.write_text("pii:\n  salt: env:AUDIT_TEST_SALT\n")
    code, out = _audit(release, tmp_path, ["ops@example.net"], "--config", str(job), capsys=capsys)
    assert code == 0 and "salt from pii.salt of" in out.out


def test_not_a_release(tmp_path, capsys):
    values = tmp_path / "v.txt"
    values.write_text("x\n")
    assert audit.main([str(tmp_path), "--values", str(values)]) == 2
    assert "not a complete release" in capsys.readouterr().err
