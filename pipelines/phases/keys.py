"""Phase 2 of a local run: the KEYS stages (dedup) over every partition's compact keys.

Phase 1 staged, per partition and per KEYS stage, one small record per document (id, source,
text bytes, masked snippet, the stage's key: a hash, a signature...). Here each stage, in flow
order, is one pipeline that reads those records only, less the ids the earlier stages dropped,
runs the stage's grouping part (`Stage.on_keys`), and stages what it made in its own folder:
its drops (the later stages and the rest leave those documents out), its edits when it changes
texts (an "edits" extra: spans the rest cuts by id, edits.py), the index files it writes, and a
summary of counts and report rows. Whole documents are never read here, and a
stage an earlier run finished is not redone.
"""

from __future__ import annotations

import dataclasses
import posixpath
import time

import apache_beam as beam

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases import staging
from gristmill.pipelines.phases.front import DROPS, keys_name
from gristmill.pipelines.phases.staged import ReadStaged, SkipListed, release_files, staged_files
from gristmill.pipelines.release.manifest import SUMMARY, read_json, write_summary
from gristmill.runners.local.runner import local_runner
from gristmill.schemas import tables
from gristmill.schemas.records import FileInfo
from gristmill.transforms.accounting import Accounted
from gristmill.transforms.dedup.keyed import (
    EDITS,
    edit_order,
    edits_table,
    keyed_from_row,
)
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.stage import Stage

FOLDER = "_keys"


def folder_of(area: str) -> str:
    return posixpath.join(area, FOLDER)


def stage_folders(out: str, stages: list[Stage]) -> list[str]:
    """Phase 2's folder of each KEYS stage, in flow order."""
    return [posixpath.join(out, stage.name) for stage in stages]


def build_stage(p: beam.Pipeline, cfg: JobConfig, stage: Stage, parts: list[str], earlier, out):
    """One KEYS stage over the partitions' staged records, less the ids the `earlier` stages'
    staged drops name; its drops, index files and summary staged into `out`."""
    name = keys_name(stage)

    def read(label: str):
        return (
            p
            | f"Staged/{label}" >> beam.Create(staged_files(parts, name))
            | f"Read/{label}" >> beam.ParDo(ReadStaged(keyed_from_row))
            | f"NotDropped/{label}" >> beam.ParDo(SkipListed(staged_files(earlier, DROPS)))
        )

    ctx = graph.stage_context(cfg, stage.name)
    ctx = dataclasses.replace(ctx, output=out)  # its index files: staged with the rest
    inner = stage.on_keys(cfg.params_of(stage.section), ctx)
    if hasattr(inner, "again"):  # it takes a second read of the records (near: sketches)
        inner.again = read("again")
    result = read("records") | stage.name.capitalize() >> Accounted(stage.name, inner)
    got = graph.Collected([result.drops], list(result.tallies), [], [])
    got.extras(result.extras)
    staged = [
        result.drops
        | "StageDrops"
        >> WriteShardedParquet(out, DROPS, 1, tables.drops_table, graph.drop_key, graph.drop_order)
    ]
    if EDITS in result.extras:  # a stage that edits texts: the rest applies them by id
        staged.append(
            result.extras[EDITS]
            | "StageEdits" >> WriteShardedParquet(out, EDITS, 1, edits_table, _id, edit_order)
        )
    parts_out = {
        "totals": graph.sum_tallies(got.tallies),
        "files": (*staged, *got.files) | "AllFiles" >> beam.Flatten(),
        "inputs": p | "NoInputs" >> beam.Create([]),
        "report": [p | "NoReports" >> beam.Create([]), *got.reports]
        | "AllReports" >> beam.Flatten(),
    }
    write_summary(p, out, parts_out)


def _id(record) -> str:
    return record.id


def run_keys(cfg: JobConfig, stages: list[Stage], parts: list[str], out: str) -> float:
    """Phase 2 in this process, a pipeline per stage, each unless an earlier run finished it;
    the wall seconds."""
    started = time.monotonic()
    folders = stage_folders(out, stages)
    for i, (stage, folder) in enumerate(zip(stages, folders, strict=True)):
        if staging.finished(folder):
            continue
        runner, options = local_runner()
        with beam.Pipeline(runner=runner, options=options) as p:
            build_stage(p, cfg, stage, parts, folders[:i], folder)
        staging.finish_with_summary(folder)
    return time.monotonic() - started


def made_files(out: str) -> list[FileInfo]:
    """The release files a stage's phase 2 wrote (its index files), not its staged drops."""
    summary = read_json(posixpath.join(out, SUMMARY))
    return release_files(summary)
