"""Phase 1 of a local run: each partition read and taken through the per-document stages.

A partition's pipeline runs on Beam's in-process FnApiRunner: read its files, apply every
enabled stage up to the first one that needs more than one document at a time (the dedup
stages need every document's keys), and stage what it made in its own folder: the documents
that went on, the drops and dead letters, and a summary of its counts, inputs and report rows.
The folder is marked finished last (staging.py), so a rerun skips it.
"""

from __future__ import annotations

import posixpath
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases import staging
from gristmill.pipelines.phases.plan import Partition
from gristmill.pipelines.phases.staged import SpillRuns, doc_size
from gristmill.pipelines.phases.timed import stage_documents, timed_pipeline
from gristmill.pipelines.release.manifest import add_files, write_summary
from gristmill.runners.local import memory
from gristmill.schemas import tables
from gristmill.schemas.records import FileInfo
from gristmill.transforms.dedup.keyed import keyed_from_row, keyed_order, keys_table
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.sorted_runs import ShardSpec, merge_runs
from gristmill.transforms.stage import Needs, Stage

DOCUMENTS, DROPS, DEAD = "documents", "drops", "dead_letters"


def key_id(record) -> str:
    return record.id


def leading_stages(cfg: JobConfig) -> list[Stage]:
    """The enabled stages that run inside a partition: those before the first that is not
    DOCUMENT (it needs more than one document at a time)."""
    out = []
    for stage in graph.enabled_stages(cfg):
        if stage.needs is not Needs.DOCUMENT:
            break
        out.append(stage)
    return out


def keyed_stages(cfg: JobConfig) -> list[Stage]:
    """The enabled KEYS stages right after the leading ones: phase 1 makes their keys, phase 2
    runs them over the keys (keys.py)."""
    rest = graph.enabled_stages(cfg)[len(leading_stages(cfg)) :]
    out = []
    for stage in rest:
        if stage.needs is not Needs.KEYS or stage.keys is None:
            break
        out.append(stage)
    return out


def keys_name(stage: Stage) -> str:
    return f"keys-{stage.name}"


def _stage(rows, label: str, folder: str, name: str, to_table, key, order):
    """One staged table: a single Parquet file, rows sorted, in the partition's folder."""
    return rows | label >> WriteShardedParquet(folder, name, 1, to_table, key, order)


RUNS = "_runs"


def _docs_spec() -> ShardSpec:
    return ShardSpec(
        DOCUMENTS,
        1,
        tables.documents_table,
        tables.document_from_row,
        graph.doc_id,
        graph.doc_order,
    )


def _keys_spec(name: str) -> ShardSpec:
    return ShardSpec(name, 1, keys_table, keyed_from_row, key_id, keyed_order)


def _spill(rows, label: str, folder: str, spec: ShardSpec, size) -> None:
    _ = rows | label >> SpillRuns(posixpath.join(folder, RUNS, spec.relprefix), spec, size)


def _key_size(record) -> int:
    return len(record.snippet) + 3000  # ids, a signature and a sketch, about


def build_front(
    p: beam.Pipeline, cfg: JobConfig, stages: list[Stage], part: Partition, folder: str
) -> None:
    got = graph.Collected([], [], [], [])
    docs, dead, inputs = graph.read_and_count(p, cfg, part.by_source(), got)
    docs = graph.run_stages(docs, cfg, got, stages)
    drops = got.drops | "AllDrops" >> beam.Flatten()
    for stage in keyed_stages(cfg):
        make = stage.keys(cfg.params_of(stage.section), graph.stage_context(cfg, stage.name))
        keys = docs | f"Keys/{stage.name}" >> make
        name = keys_name(stage)
        _spill(keys, f"Stage/{name}", folder, _keys_spec(name), _key_size)
    _spill(docs, "StageDocs", folder, _docs_spec(), doc_size)
    files = [
        p | "NoFiles" >> beam.Create([]),
        _stage(
            drops, "StageDrops", folder, DROPS, tables.drops_table, graph.drop_key, graph.drop_order
        ),
        _stage(
            dead,
            "StageDead",
            folder,
            DEAD,
            tables.dead_letters_table,
            graph.dead_key,
            graph.dead_order,
        ),
    ]
    parts = {
        "totals": graph.sum_tallies(got.tallies),
        "files": files | "AllFiles" >> beam.Flatten(),
        "inputs": inputs,
        "report": got.reports | "AllReports" >> beam.Flatten(),
    }
    write_summary(p, folder, parts)


def _merged(folder: str, spec: ShardSpec) -> list[FileInfo]:
    return merge_runs(posixpath.join(folder, RUNS, spec.relprefix), folder, spec)


def run_front(cfg: JobConfig, stages: list[Stage], part: Partition, folder: str) -> dict:
    """One partition's phase 1, in this process: {"seconds": wall, "stages": execution seconds
    per stage}. A finished folder is left as it is."""
    started = time.monotonic()
    if staging.finished(folder):
        return {"seconds": 0.0, "stages": {}, "docs": {}, "peak_mb": None}
    memory.reset_peak()
    runs = posixpath.join(folder, RUNS)
    if FileSystems.exists(runs):  # a killed attempt's
        FileSystems.delete([runs])
    per = timed_pipeline(
        lambda p: build_front(p, cfg, stages, part, folder), [s.name for s in stages]
    )
    specs = [_docs_spec(), *(_keys_spec(keys_name(s)) for s in keyed_stages(cfg))]
    add_files(folder, [f for spec in specs for f in _merged(folder, spec)])
    if FileSystems.exists(runs):
        FileSystems.delete([runs])
    summary = staging.finish_with_summary(folder)
    return {
        "seconds": time.monotonic() - started,
        "stages": per,
        "docs": stage_documents(summary),
        "peak_mb": memory.peak_mb(),
    }
