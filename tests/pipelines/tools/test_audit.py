"""`gristmill audit`: values located by direct scan, by HMAC and in the shards, never printed."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from gristmill.pipelines.report.privacy import write_privacy_report
from gristmill.pipelines.tools import audit
from gristmill.schemas import tables
from gristmill.schemas.records import Document
from gristmill.transforms.params import defaults
from gristmill.transforms.pii import stage as pii
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.stage import StageContext

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
    s = copy.deepcopy(defaults(pii.PiiParams))
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


@pytest.mark.job
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
    assert "found and scrubbed 1 times in 1 documents (EMAIL_ADDRESS; from text)" in out.out
    assert "ops@example.net" not in out.out and "555-0143" not in out.out
    assert "(15 chars)" in out.out and "43" not in out.out.replace("(14 chars)", "")


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


# --- the shards ------------------------------------------------------------------------------

PRESENT = "FORTUNE 500 COMPANY HIRING"  # the subject line of a sample spam, kept in the demo
SCRUBBED = "mkettler@home.com"  # an address in a sample mail body, scrubbed by the pii stage


def _copy_release(demo_run, tmp_path: Path) -> Path:
    copy = tmp_path / "release"
    shutil.copytree(demo_run[0], copy)
    return copy


def test_shards_are_searched_by_token_ids(demo_run, tmp_path, capsys):
    root, _ = demo_run
    values = [PRESENT, SCRUBBED, PRESENT.lower()]
    code, out = _audit(root, tmp_path, values, "--json", capsys=capsys)
    assert code == 1
    present, scrubbed, lower = json.loads(out.out)
    assert present["in_documents"] >= 1
    assert present["in_shards"] == 1 and present["shard_files"][0].startswith("shards/")
    assert present["shard_matches"] >= present["in_documents"]
    assert lower["shard_files"] == present["shard_files"]  # the tokenizer lowercases
    assert scrubbed["in_findings"] >= 1 and list(scrubbed["finding_types"]) == ["EMAIL_ADDRESS"]
    assert scrubbed["in_documents"] == scrubbed["in_shards"] == 0
    for value in values:
        assert value not in out.out and value not in out.err


def test_a_value_left_only_in_the_shards_is_reported(demo_run, tmp_path, capsys):
    """Documents erased after the job (here: removed from the Parquet) stay in the shards."""
    root = _copy_release(demo_run, tmp_path)
    for part in (root / "documents").glob("*.parquet"):
        table = pq.read_table(part)
        keep = [PRESENT not in text for text in table.column("text").to_pylist()]
        pq.write_table(table.filter(pa.array(keep)), part)
    code, out = _audit(root, tmp_path, [PRESENT], capsys=capsys)
    assert code == 1
    assert "not in any file; in 1 shard files (shards/train-" in out.out
    assert PRESENT not in out.out


def test_shards_made_with_another_tokenizer_are_refused(demo_run, tmp_path, capsys):
    other = tmp_path / "tokenizer.json"
    spec = json.loads((demo_run[0] / "tokenizer.json").read_text())
    spec["normalizer"]["lowercase"] = False
    other.write_text(json.dumps(spec))
    code, out = _audit(demo_run[0], tmp_path, [PRESENT], "--tokenizer", str(other), capsys=capsys)
    assert code == 2 and "was made with tokenizer sha256" in out.err


def _tiny_shard(path: Path, tokenizer_json: str, text: str, width: int = 8) -> int:
    """The text's tokens as [CLS] ... [SEP] rows of `width`, every row its own record batch,
    every third token masked; returns the number of tokens."""
    from gristmill.schemas.mlm import mlm_schema
    from gristmill.transforms.training.examples import DocEncoder

    enc = DocEncoder(tokenizer_json)
    ids = enc.encode([text])[0].ids
    roles = {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]"}
    special = {role: [token, enc.tok.token_to_id(token)] for role, token in roles.items()}
    cls, sep, pad, mask = (special[role][1] for role in roles)
    body = width - 2
    sha = hashlib.sha256(tokenizer_json.encode()).hexdigest()
    meta = {"tokenizer_sha256": sha, "special_tokens": special}
    schema = mlm_schema(width, enc.tok.get_vocab_size(), meta, labels=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for start in range(0, len(ids), body):
            piece = ids[start : start + body]
            row = [cls, *piece, sep] + [pad] * (body - len(piece))
            labels = [-100] * width
            for j in range(1, len(piece) + 1, 3):
                labels[j], row[j] = row[j], mask
            cols = {
                "input_ids": [row],
                "token_type_ids": [[0] * width],
                "attention_mask": [[1] * (len(piece) + 2) + [0] * (body - len(piece))],
                "special_tokens_mask": [[1] + [0] * len(piece) + [1] * (body - len(piece) + 1)],
                "labels": [labels],
            }
            arrays = [pa.array(cols[f.name], f.type) for f in schema]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
    return len(ids)


def test_values_cut_by_rows_batches_and_masks_are_found_once(demo_run, tmp_path):
    from gristmill.pipelines.tools.audit_shards import ShardSearch

    tokenizer = (demo_run[0] / "tokenizer.json").read_text()
    root = tmp_path / "tiny"
    (root / "shards").mkdir(parents=True)
    (root / "tokenizer.json").write_text(tokenizer)
    text = "the harvest was late; write to Carla Mendes at the old mill by the river bank"
    assert _tiny_shard(root / "shards" / "train-00000-of-00001.arrow", tokenizer, text) > 12
    values = [
        "Carla Mendes at the old mill by the river",
        "river bank",
        "late; write",
        "mill river",
    ]
    hits = ShardSearch(str(root)).search(values)
    assert [h.matches for h in hits] == [1, 1, 1, 0]
    assert hits[0].files == {"shards/train-00000-of-00001.arrow"}


def test_every_file_and_field_is_searched(release, tmp_path, capsys):
    """A value left in a drop's detail, a document's meta and a report is found there."""
    root = tmp_path / "copy"
    shutil.copytree(release, root)
    drops = pa.table(
        {"id": ["x"], "source": ["mail"], "stage": ["read"], "detail": ["from ops@example.net"]}
    )
    (root / "drops").mkdir()
    pq.write_table(drops, root / "drops" / "part-00000-of-00001.parquet")
    part = next((root / "documents").glob("*.parquet"))
    table = pq.read_table(part)
    meta = [json.dumps({"author": "Zebulon Quackenbush"})] * table.num_rows
    pq.write_table(
        table.set_column(table.schema.get_field_index("meta"), "meta", pa.array(meta)), part
    )
    (root / "reports" / "notes.txt").write_text("ask 212.555.0143 again")
    code, out = _audit(
        root, tmp_path, ["ops@example.net", "Zebulon Quackenbush", "(212) 555-0143"],
        "--salt", SALT, "--json", capsys=capsys,
    )  # fmt: skip
    mail, name, phone = json.loads(out.out)
    assert code == 1
    assert mail["elsewhere"] == {"drops": 1} and mail["in_documents"] == 0
    assert name["document_fields"] == {"documents.meta": 3, "documents.text": 1}
    assert phone["elsewhere"] == {"reports": 1}
    assert "Quackenbush" not in out.out and "555" not in out.out and "ops@" not in out.out
