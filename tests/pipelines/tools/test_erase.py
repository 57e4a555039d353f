"""`gristmill erase`: a real release built once, erased into new folders, and checked as an
auditor would: `audit` finds nothing, the accounting and checksums hold (`validate`), the parent
is untouched, the manifest holds HMACs only, and the same request gives the same bytes."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import read_rows

from gristmill.pipelines.tools import audit, erase, validate

SALT = "env:ERASE_TEST_SALT"
KEY = "a test salt for erasure"
WORDS = ("the", "mill", "river", "barley", "oats", "apples", "valley", "carts", "hills")
# value -> where it is put; none of them is a pattern the pii stage scrubs (fast mode)
VALUES = {
    "Megan Hardy": "text",
    "Tobias Quill": "meta",
    "quillarchive": "url_or_path",  # in a file name: every document of that file
}


def _prose(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(120)) + "."


def _inputs(root: Path) -> None:
    rng = random.Random(7)
    rows = [{"id": f"d{i}", "text": _prose(rng), "author": "anon"} for i in range(24)]
    rows[5]["text"] += " Megan Hardy signed the ledger."
    rows[9]["author"] = "Tobias Quill"
    root.mkdir(parents=True)
    (root / "mill.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    more = [{"id": f"q{i}", "text": _prose(rng)} for i in range(3)]
    (root / "letters-quillarchive.jsonl").write_text("".join(json.dumps(r) + "\n" for r in more))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    os.environ["ERASE_TEST_SALT"] = KEY
    tmp = tmp_path_factory.mktemp("erase")
    _inputs(tmp / "in")
    sets = [
        f"pii.salt={SALT}", "quality.enabled=false", "langid.enabled=false",
        "tokenizer.enabled=true", "mlm.enabled=true", "tokenizer.vocab_size=200",
        "mlm.max_seq_length=64", "runner.workers=1",
    ]  # fmt: skip
    run_job(load(None, sets, [f"articles={tmp}/in/*.jsonl"], str(tmp / "release")))
    return tmp / "release"


def _values(tmp_path: Path, values=tuple(VALUES)) -> Path:
    path = tmp_path / "values.txt"
    path.write_text("\n".join(values) + "\n")
    return path


def _run(tool, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = tool.main(argv)
    return code, out.getvalue(), err.getvalue()


def _erase(release: Path, values: Path, out: Path, *more: str) -> tuple[int, str, str]:
    argv = [str(release), "--values", str(values), "--output", str(out), "--salt", SALT, *more]
    return _run(erase, argv)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _audit(root: Path, values: Path) -> tuple[int, list[dict]]:
    code, out, _ = _run(audit, [str(root), "--values", str(values), "--salt", SALT, "--json"])
    return code, json.loads(out)


def _ids(root: Path, folder: str, column: str) -> set[str]:
    return {
        row
        for part in sorted((root / folder).glob("*.parquet"))
        for row in pq.read_table(part, columns=[column]).column(0).to_pylist()
    }


@pytest.fixture(scope="module")
def erased(release, tmp_path_factory) -> tuple[Path, Path, dict[str, bytes]]:
    tmp = tmp_path_factory.mktemp("erased")
    before = _files(release)
    code, out, err = _erase(release, _values(tmp), tmp / "new")
    assert code == 0, err
    assert not [v for v in VALUES if v in out + err]
    assert _files(release) == before  # the parent is only read
    return release, tmp / "new", before


def test_the_parent_holds_every_value(release, tmp_path):
    code, results = _audit(release, _values(tmp_path))
    assert code == 1
    for (value, where), r in zip(VALUES.items(), results, strict=True):
        assert f"documents.{where}" in r["document_fields"], value
        assert (r["in_shards"] >= 1) == (where == "text"), value  # shards hold the text only


def test_erased_release_holds_no_value_and_is_valid(erased, tmp_path):
    parent, new, _ = erased
    code, results = _audit(new, _values(tmp_path))
    assert code == 0 and not any(r["document_fields"] or r["elsewhere"] for r in results)
    assert all(r["in_shards"] == 0 for r in results)
    assert _run(validate, [str(new)])[0] == 0
    before = {d["id"]: d for d in read_rows(parent, "documents")}
    after = {d["id"] for d in read_rows(new, "documents")}
    removed = set(before) - after
    assert len(removed) == 5  # the text, the meta value and the three documents of one file
    assert after < set(before)
    drops = read_rows(new, "drops")
    assert sorted(d["id"] for d in drops if d["stage"] == "erase") == sorted(removed)
    for folder, column in (("index", "id"), ("pii", "doc_id")):
        assert not removed & _ids(new, folder, column), folder
    assert removed & _ids(parent, "index", "id")  # the parent's index named them


def test_shards_are_made_again_with_the_parents_tokenizer(erased):
    parent, new, _ = erased
    assert (new / "tokenizer.json").read_bytes() == (parent / "tokenizer.json").read_bytes()
    manifest = json.loads((new / "manifest.json").read_text())
    shards = [o for o in manifest["outputs"] if o["path"].startswith("shards/")]
    old = [o for o in json.loads((parent / "manifest.json").read_text())["outputs"]
           if o["path"].startswith("shards/")]  # fmt: skip
    assert [o["path"] for o in shards] == [o["path"] for o in old]
    assert sum(o["rows"] for o in shards) < sum(o["rows"] for o in old)
    from gristmill.schemas.mlm_shards import read_metadata

    tok = manifest["tokenizer"]["sha256"]
    assert all(read_metadata(str(new / o["path"]))["tokenizer_sha256"] == tok for o in shards)


def test_manifest_records_the_erasure_by_hmac_and_names_its_parent(erased):
    parent, new, _ = erased
    text = (new / "manifest.json").read_text()
    assert not [v for v in VALUES if v in text or v.lower() in text.lower()]
    section = json.loads(text)["erasure"]
    digests = sorted(hmac.new(KEY.encode(), v.encode(), hashlib.sha256).hexdigest() for v in VALUES)
    assert section["values_hmac"] == digests
    assert section["parent"] == str(parent) and section["action"] == "drop"
    assert section["documents_removed"] == 5 and section["shards_rebuilt"]


def test_same_request_gives_the_same_bytes(erased, tmp_path):
    parent, new, _ = erased
    code, _, err = _erase(parent, _values(tmp_path, reversed(list(VALUES))), tmp_path / "again")
    assert code == 0, err
    first, second = _files(new), _files(tmp_path / "again")
    assert first.keys() == second.keys()
    differ = [k for k in first if first[k] != second[k]]
    assert differ in ([], ["manifest.json"])
    strip = [json.loads(f["manifest.json"]) for f in (first, second)]
    assert [{k: v for k, v in m.items() if k != "created_at"} for m in strip][0] == {
        k: v for k, v in strip[1].items() if k != "created_at"
    }


def test_scrub_keeps_the_documents_and_replaces_the_values(release, tmp_path):
    code, _, err = _erase(release, _values(tmp_path), tmp_path / "scrubbed", "--scrub")
    assert code == 0, err
    new = tmp_path / "scrubbed"
    assert len(read_rows(new, "documents")) == len(read_rows(release, "documents"))
    assert _audit(new, _values(tmp_path))[0] == 0
    docs = {d["id"]: d for d in read_rows(new, "documents")}
    held = [d for d in docs.values() if "<ERASED>" in d["text"] + d["meta"] + d["url_or_path"]]
    assert len(held) == 5
    assert _run(validate, [str(new)])[0] == 0


def test_bad_requests_exit_2_with_one_line(release, tmp_path):
    values = _values(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("someone's file")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    cases = [
        _erase(release, values, tmp_path / "busy"),
        _erase(release, values, tmp_path / "busy", "--overwrite"),
        _erase(release, values, release / "inside"),
        _erase(release, tmp_path / "missing.txt", tmp_path / "o1"),
        _erase(release, empty, tmp_path / "o2"),
        _erase(tmp_path, values, tmp_path / "o3"),  # not a release
    ]
    for code, out, err in cases:
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert not [v for v in VALUES if v in err]
    assert (tmp_path / "busy" / "notes.txt").read_text() == "someone's file"
    assert not (release / "inside").exists()


def test_a_finished_release_at_output_is_replaced_only_with_overwrite(erased, tmp_path):
    parent, new, _ = erased
    import shutil

    target = tmp_path / "target"
    shutil.copytree(new, target)
    assert _erase(parent, _values(tmp_path, ["Megan Hardy"]), target)[0] == 2
    code, _, err = _erase(parent, _values(tmp_path, ["Megan Hardy"]), target, "--overwrite")
    assert code == 0, err
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["erasure"]["documents_removed"] == 1
