"""Sorted runs merged into shards give the bytes WriteShardedParquet writes, in bounded memory."""

from __future__ import annotations

import random

import apache_beam as beam
import pyarrow.parquet as pq

from gristmill.runners.local.runner import local_runner
from gristmill.schemas import tables
from gristmill.schemas.records import Document
from gristmill.transforms.sinks import WritePartitionedParquet, WriteShardedParquet
from gristmill.transforms.sorted_runs import ShardSpec, SpillSortedRuns, merge_runs, write_rows


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
    n_runs = len(list(runs.rglob("*.parquet")))
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
    assert meta.num_row_groups == 3  # 8192-row groups, as the sinks write them
