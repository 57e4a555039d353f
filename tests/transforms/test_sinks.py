"""Deterministic sharded Parquet: same job, same bytes, whatever the run or the worker count."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import READ_ONLY, check_release, read_rows, write

from gristmill.pipelines import cli
from gristmill.schemas import tables
from gristmill.schemas.records import Document
from gristmill.transforms.sinks import parquet_bytes, shard_name, shard_of

SHARDS = 4


def _inputs(root: Path) -> list[str]:
    write(root / "books" / "alpha.txt", "Alpha is the first book.\n\nIt has two paragraphs.\n")
    write(root / "books" / "beta.txt", "Beta  is the\r\nsecond book.\n")
    write(root / "books" / "empty.txt", "")
    write(root / "books" / "junk.txt", bytes(range(256)) * 8)
    return [f"books={root}/books/*.txt"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same job twice into two directories: in-process with 1 worker, then the CLI with 2."""
    root = tmp_path_factory.mktemp("determinism")
    sources = _inputs(root / "in")
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    first = root / "one"
    cfg = load(
        None, [*READ_ONLY, f"shards.documents={SHARDS}"], cli_sources=sources, output=str(first)
    )
    run_job(cfg)
    second = root / "two"
    argv = [
        "run",
        "--output",
        str(second),
        *(arg for setting in READ_ONLY for arg in ("--set", setting)),
        "--set",
        f"shards.documents={SHARDS}",
        "--workers",
        "2",
        "--quiet",
    ]
    for spec in sources:
        argv += ["--source", spec]
    assert cli.main(argv) == 0
    return root, first, second


def _load(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def _parquet_files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.glob("*/*.parquet"))}


@pytest.mark.job
def test_both_releases_are_complete(two_runs):
    _, first, second = two_runs
    for out in (first, second):
        tables_ = check_release(out, _load(out))
        assert len(tables_["documents"]) == 2
        assert len(tables_["drops"]) == 1
        assert len(tables_["dead_letters"]) == 1


def test_parquet_files_are_byte_identical(two_runs):
    _, first, second = two_runs
    a, b = _parquet_files(first), _parquet_files(second)
    assert sorted(a) == sorted(b)
    assert len([k for k in a if k.startswith("documents/")]) == SHARDS
    for rel in a:
        assert a[rel] == b[rel], rel


def test_manifests_differ_only_in_created_at(two_runs):
    _, first, second = two_runs
    a, b = _load(first), _load(second)
    assert a.pop("created_at") and b.pop("created_at")
    assert a == b
    assert (first / "manifest.json").read_text().replace(_load(first)["created_at"], "") == (
        second / "manifest.json"
    ).read_text().replace(_load(second)["created_at"], "")


def test_every_shard_is_written_even_empty(two_runs):
    _, first, _ = two_runs
    parts = sorted((first / "documents").glob("*.parquet"))
    assert [p.name for p in parts] == [
        shard_name("part", i, SHARDS, ".parquet") for i in range(SHARDS)
    ]
    rows = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    assert sum(rows) == 2
    assert rows.count(0) >= SHARDS - 2
    for part in parts:
        assert pq.read_schema(part).remove_metadata() == tables.DOCUMENT_SCHEMA
    outputs = {o["path"]: o["rows"] for o in _load(first)["outputs"]}
    assert [outputs[f"documents/{p.name}"] for p in parts] == rows


def test_rows_sorted_and_in_their_hash_shard(two_runs):
    _, first, _ = two_runs
    for i, part in enumerate(sorted((first / "documents").glob("*.parquet"))):
        ids = pq.read_table(part).column("id").to_pylist()
        assert ids == sorted(ids)
        assert all(shard_of(doc_id, SHARDS) == i for doc_id in ids)
    drops = read_rows(first, "drops")
    assert drops == sorted(drops, key=lambda d: (d["id"], d["stage"]))
    assert read_rows(first, "dead_letters")[0]["error"] == "binary_content"


def test_document_ids_are_stable(two_runs):
    _, first, second = two_runs
    a = {d["url_or_path"]: d["id"] for d in read_rows(first, "documents")}
    b = {d["url_or_path"]: d["id"] for d in read_rows(second, "documents")}
    assert a == b and set(a) == {"alpha.txt", "beta.txt"}
    texts = {d["url_or_path"]: d["text"] for d in read_rows(first, "documents")}
    assert texts["beta.txt"] == "Beta is the\nsecond book."


@pytest.mark.job
def test_rerun_into_the_same_directory_leaves_no_stale_files(two_runs):
    root, first, _ = two_runs
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    rerun = root / "rerun"
    before = _load(first)
    for shards in (SHARDS, 1):
        cfg = load(
            None,
            [*READ_ONLY, f"shards.documents={shards}"],
            cli_sources=_inputs(root / "in"),
            output=str(rerun),
        )
        manifest = run_job(cfg, overwrite=True)
    check_release(rerun, manifest)
    assert [p.name for p in (rerun / "documents").glob("*.parquet")] == [
        "part-00000-of-00001.parquet"
    ]
    assert manifest["counts"] == before["counts"]


# ---- the sink's building blocks ------------------------------------------------------------


def test_shard_naming_and_hashing():
    assert (
        shard_name("documents/part", 3, 12, ".parquet") == "documents/part-00003-of-00012.parquet"
    )
    ids = [f"doc-{i}" for i in range(2000)]
    placed = [shard_of(i, 8) for i in ids]
    assert placed == [shard_of(i, 8) for i in ids]
    assert set(placed) == set(range(8))
    assert all(shard_of(i, 1) == 0 for i in ids)


def test_parquet_bytes_are_deterministic_and_round_trip():
    docs = [
        Document("b", "s", "p/b", "text b", meta={"z": 1, "a": [1, 2]}),
        Document("a", "s", "p/a", "text a \u00e9", lang="en", lang_score=0.5),
    ]
    table = tables.documents_table(docs)
    assert parquet_bytes(table) == parquet_bytes(tables.documents_table(list(docs)))
    assert json.loads(table.column("meta")[0].as_py()) == {"a": [1, 2], "z": 1}
    assert table.column("meta")[0].as_py() == '{"a":[1,2],"z":1}'
    assert [tables.document_from_row(r) for r in table.to_pylist()] == docs
    empty = tables.documents_table([])
    assert empty.num_rows == 0 and empty.schema == tables.DOCUMENT_SCHEMA
    assert pq.ParquetFile(io.BytesIO(parquet_bytes(empty))).metadata.num_rows == 0
