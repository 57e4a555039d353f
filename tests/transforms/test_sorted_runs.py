"""Sorted runs merged into shards give the bytes WriteShardedParquet writes, in bounded memory."""

from __future__ import annotations

import dataclasses
import random

import apache_beam as beam
import pyarrow.parquet as pq

from gristmill.runners.local.runner import local_runner
from gristmill.schemas import tables
from gristmill.schemas.records import Document
from gristmill.transforms import sorted_runs
from gristmill.transforms.sinks import WritePartitionedParquet, WriteShardedParquet
from gristmill.transforms.sorted_runs import (
    RUN_GROUP_ROWS,
    ShardSpec,
    SpillSortedRuns,
    merge_runs,
    merge_shard,
    write_rows,
)


def _docs(n: int, seed: int = 0) -> list[Document]:
    rng = random.Random(seed)
    return [
        Document(
            id=f"doc-{rng.randrange(10**9):09d}",
            source=rng.choice(["books", "web"]),
            url_or_path=f"file-{i}",
            text=" ".join(
                rng.choice(["alpha", "beta", "gamma"]) for _ in range(rng.randint(1, 400))
            ),
            lang=rng.choice(["en", "fr"]),
            lang_score=0.5,
            meta={"i": i},
        )
        for i in range(n)
    ]


def _doc_id(d):
    return d.id


def _spec(shards: int, partition=None) -> ShardSpec:
    return ShardSpec(
        "documents/part",
        shards,
        tables.documents_table,
        tables.document_from_row,
        _doc_id,
        _doc_id,
        partition,
    )


def _files(root) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*.parquet"))
        if "_runs" not in p.parts
    }


def _by_sink(tmp_path, docs, sink) -> dict[str, bytes]:
    runner, options = local_runner()
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = p | beam.Create(docs) | sink
    return _files(tmp_path)


def _by_runs(root, docs, spec: ShardSpec, limit: int) -> tuple[dict[str, bytes], int]:
    runs = root / "_runs"
    runner, options = local_runner()
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = (
            p
            | beam.Create(docs)
            | beam.ParDo(SpillSortedRuns(str(runs), spec, lambda d: len(d.text), limit))
        )
    run_files = list(runs.rglob("*.parquet"))
    n_runs = len(run_files)
    for path in run_files:  # scratch runs in small row groups: a merge decodes one per run
        meta = pq.read_metadata(path)
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert max(sizes) <= RUN_GROUP_ROWS and sizes[:-1] == [RUN_GROUP_ROWS] * (len(sizes) - 1)
    made = merge_runs(str(runs), str(root), spec)
    files = _files(root)
    assert {f.path for f in made} == set(files)
    assert all(f.bytes == len(files[f.path]) for f in made)
    return files, n_runs


def test_merged_runs_are_the_sharded_sinks_bytes(tmp_path):
    docs = _docs(3000)
    want = _by_sink(
        tmp_path / "sink",
        docs,
        WriteShardedParquet(
            str(tmp_path / "sink"), "documents/part", 3, tables.documents_table, _doc_id, _doc_id
        ),
    )
    got, n_runs = _by_runs(tmp_path / "runs", docs, _spec(3), limit=50_000)
    assert n_runs > 3 * 5  # many small runs per shard: the limit bounded what was held
    assert got == want
    rows = sum(pq.read_metadata(tmp_path / "runs" / rel).num_rows for rel in got)
    assert rows == len(docs)


def test_partitioned_runs_match_the_partitioned_sink(tmp_path):
    docs = _docs(800, seed=1)
    lang = lambda d: d.lang  # noqa: E731
    want = _by_sink(
        tmp_path / "sink",
        docs,
        WritePartitionedParquet(
            str(tmp_path / "sink"),
            "documents/part",
            2,
            tables.documents_table,
            _doc_id,
            _doc_id,
            partition=lang,
        ),
    )
    got, _ = _by_runs(tmp_path / "runs", docs, _spec(2, lang), limit=20_000)
    assert got == want and any(rel.startswith("documents/fr/") for rel in got)


def test_empty_shards_are_written_as_the_sink_writes_them(tmp_path):
    docs = _docs(2, seed=2)
    want = _by_sink(
        tmp_path / "sink",
        docs,
        WriteShardedParquet(
            str(tmp_path / "sink"), "documents/part", 4, tables.documents_table, _doc_id, _doc_id
        ),
    )
    got, _ = _by_runs(tmp_path / "runs", docs, _spec(4), limit=1 << 20)
    assert got == want and len(got) == 4


def test_write_rows_counts_what_it_wrote(tmp_path):
    docs = sorted(_docs(20_000, seed=3), key=_doc_id)
    path = tmp_path / "one.parquet"
    rows, nbytes, _ = write_rows(str(path), tables.documents_table, iter(docs))
    meta = pq.read_metadata(path)
    assert rows == meta.num_rows == 20_000 and nbytes == path.stat().st_size
    assert meta.num_row_groups == 20  # 1024-row groups, as the sinks write them
    small = tmp_path / "small.parquet"
    assert write_rows(str(small), tables.documents_table, iter(docs), 256)[0] == 20_000
    assert pq.read_metadata(small).num_row_groups == 79
    assert pq.read_table(small).equals(pq.read_table(path))


def test_merging_in_levels_gives_the_same_bytes(tmp_path, monkeypatch):
    """Past FAN_IN runs a shard merges in levels through scratch runs: the same file as one
    merge of every run, ties (equal sort keys) in the same order, and the scratch removed."""
    docs = _docs(1200, seed=3)
    twins = [dataclasses.replace(d, text=d.text + " twin", meta={"twin": 1}) for d in docs[::3]]
    spec = _spec(2)
    runs = tmp_path / "_runs"
    runner, options = local_runner()
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = (
            p
            | beam.Create(docs + twins)
            | beam.ParDo(SpillSortedRuns(str(runs), spec, lambda d: len(d.text), 20_000))
        )
    paths = sorted(str(f) for f in (runs / "_" / "00001").glob("*.parquet"))
    assert len(paths) > 3 * 3  # three levels at a fan-in of 3
    one = merge_shard(paths, str(tmp_path / "one"), spec, "", 1)
    monkeypatch.setattr(sorted_runs, "FAN_IN", 3)
    scratch = tmp_path / "scratch"
    levels = merge_shard(paths, str(tmp_path / "levels"), spec, "", 1, str(scratch))
    assert levels == one
    rel = one.path
    assert (tmp_path / "levels" / rel).read_bytes() == (tmp_path / "one" / rel).read_bytes()
    assert not list(scratch.rglob("*.parquet"))
