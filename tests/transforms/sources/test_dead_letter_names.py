"""A dead letter names its input file, and a file name may hold personal data: with the pii
stage on, that name is scrubbed as the stage scrubs `url_or_path`, in the dead letters and in
the manifest's inputs alike."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from helpers import check_release, run_corpus, write

from gristmill.transforms.params import defaults
from gristmill.transforms.pii.stage import PiiParams
from gristmill.transforms.sources import reader_for
from gristmill.transforms.sources.limits import ReadLimits
from gristmill.transforms.sources.read import ReadFiles, match_inputs

SSN, EMAIL = "536-22-8745", "zed.example@example.org"
BROKEN = f"notes_{EMAIL}_ssn-{SSN}.jsonl.gz"
GOOD_TEXT = "The mill ran day and night to grind what the carts brought down from the hills. " * 4


def _broken(root: Path) -> Path:
    """A gzip file with a valid header and garbage after it: one dead letter."""
    data = gzip.compress(json.dumps({"text": GOOD_TEXT}).encode() + b"\n", mtime=0)
    return write(root / BROKEN, data[:12] + b"\x00garbage" * 40)


def _section() -> dict:
    s = defaults(PiiParams)
    s["salt"] = "a test salt for dead letter names"
    return s


def _dead_files(tmp_path: Path, pii: dict | None) -> list[str]:
    """The `file` of every dead letter ReadFiles makes from the broken file, in a real pipeline."""
    files = match_inputs([str(_broken(tmp_path / "in"))])
    out = tmp_path / "dead.jsonl"
    with beam.Pipeline() as p:
        read = (
            p
            | beam.Create(files)
            | beam.ParDo(
                ReadFiles("articles", reader_for("articles"), {}, ReadLimits(), pii=pii)
            ).with_outputs("drops", "dead", "inputs", main="docs")
        )
        _ = (
            read.dead
            | beam.Map(lambda d: json.dumps(d.file))
            | beam.io.WriteToText(str(out), shard_name_template="")
        )
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_dead_letter_names_its_file_scrubbed_when_pii_runs(tmp_path):
    scrubbed = _dead_files(tmp_path / "a", _section())
    assert len(scrubbed) == 1
    name = scrubbed[0].rsplit("/", 1)[-1]
    assert name == "notes_<EMAIL_ADDRESS>_ssn-<US_SSN>.jsonl.gz"
    plain = _dead_files(tmp_path / "b", None)  # no pii stage: the name as it is
    assert plain[0].endswith(BROKEN)


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("dead_names")
    _broken(tmp / "in")
    write(tmp / "in" / f"call_{SSN}.jsonl", json.dumps({"text": GOOD_TEXT}) + "\n")
    os.environ["DEAD_NAMES_SALT"] = "a test salt for dead letter names"
    sets = ["pii.enabled=true", "pii.salt=env:DEAD_NAMES_SALT"]
    manifest = run_corpus(tmp / "release", [f"articles={tmp}/in/*"], sets)
    return tmp / "release", manifest


def test_manifest_of_a_release_holds_no_value_from_a_file_name(release):
    root, manifest = release
    check_release(root, manifest)
    text = (root / "manifest.json").read_text(encoding="utf-8")
    assert SSN not in text and EMAIL not in text
    assert manifest["counts"]["dead_letters"] == 1
    names = sorted(i["path"].rsplit("/", 1)[-1] for i in manifest["inputs"])
    assert names == ["call_<US_SSN>.jsonl", "notes_<EMAIL_ADDRESS>_ssn-<US_SSN>.jsonl.gz"]


def test_dead_letters_of_a_release_hold_no_value_from_a_file_name(release):
    root, _ = release
    rows = [
        r for p in (root / "dead_letters").glob("*.parquet") for r in pq.read_table(p).to_pylist()
    ]
    assert len(rows) == 1
    assert not [v for v in (SSN, EMAIL) if v in json.dumps(rows)]
    assert rows[0]["file"].endswith("notes_<EMAIL_ADDRESS>_ssn-<US_SSN>.jsonl.gz")
