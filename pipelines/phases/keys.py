"""Phase 2 of a local run: the KEYS stages (dedup) over every partition's compact keys.

Phase 1 staged, per partition and per KEYS stage, one small record per document (id, source,
text bytes, masked snippet, the stage's key: a hash, a signature...). Here one pipeline reads
those records only, runs each stage's grouping part (`Stage.on_keys`) in flow order, each on the
records the earlier ones kept, and stages what it made in its own folder: the stages' drops
(phase 3 leaves those documents out), the index files they write, and a summary of counts and
report rows. Whole documents are never read here.
"""

from __future__ import annotations

import posixpath
import time

import apache_beam as beam

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases import staging
from gristmill.pipelines.phases.front import DROPS, keys_name
from gristmill.pipelines.phases.staged import ReadStaged, staged_files
from gristmill.pipelines.release.manifest import SUMMARY, read_json, write_summary
from gristmill.runners.local.runner import local_runner
from gristmill.schemas import tables
from gristmill.schemas.records import FileInfo
from gristmill.transforms.accounting import Accounted
from gristmill.transforms.dedup.keyed import DropListed, keyed_from_row
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.stage import Stage

FOLDER = "_keys"


def folder_of(area: str) -> str:
    return posixpath.join(area, FOLDER)


def build_keys(p: beam.Pipeline, cfg: JobConfig, stages: list[Stage], parts: list[str], out: str):
    """The KEYS stages over the partitions' staged records; outputs staged into `out`."""
    got = graph.Collected([], [], [], [])
    dropped = []
    for stage in stages:
        name = keys_name(stage)
        records = (
            p
            | f"Staged/{name}" >> beam.Create(staged_files(parts, name))
            | f"Read/{name}" >> beam.ParDo(ReadStaged(keyed_from_row))
        )
        if dropped:
            earlier = dropped | f"Earlier/{stage.name}" >> beam.Flatten()
            records = (records, earlier) | f"NotDropped/{stage.name}" >> DropListed()
        ctx = graph.stage_context(cfg, stage.name)
        ctx = type(ctx)(ctx.stage, out, ctx.seed, ctx.kinds, ctx.sections)  # index files: staged
        inner = stage.on_keys(cfg.params_of(stage.section), ctx)
        result = records | stage.name.capitalize() >> Accounted(stage.name, inner)
        dropped.append(result.drops)
        got.drops.append(result.drops)
        got.tallies.extend(result.tallies)
        got.extras(result.extras)
    drops = got.drops | "AllDrops" >> beam.Flatten()
    staged = drops | "StageDrops" >> WriteShardedParquet(
        out, DROPS, 1, tables.drops_table, graph.drop_key, graph.drop_order
    )
    parts_out = {
        "totals": graph.sum_tallies(got.tallies),
        "files": (staged, *got.files) | "AllFiles" >> beam.Flatten(),
        "inputs": p | "NoInputs" >> beam.Create([]),
        "report": got.reports | "AllReports" >> beam.Flatten(),
    }
    write_summary(p, out, parts_out)


def run_keys(cfg: JobConfig, stages: list[Stage], parts: list[str], out: str) -> float:
    """Phase 2 in this process, unless an earlier run finished it; its wall seconds."""
    started = time.monotonic()
    if not stages or staging.finished(out):
        return 0.0
    runner, options = local_runner()
    with beam.Pipeline(runner=runner, options=options) as p:
        build_keys(p, cfg, stages, parts, out)
    summary = read_json(posixpath.join(out, SUMMARY))
    made = [FileInfo(**f) for f in summary["files"]]
    n, sha = staging.file_digest(posixpath.join(out, SUMMARY))
    staging.mark_finished(out, [*made, FileInfo(SUMMARY, 0, n, sha)])
    return time.monotonic() - started


def made_files(out: str) -> list[FileInfo]:
    """The release files phase 2 wrote (the stages' index files), not its staged drops."""
    summary = read_json(posixpath.join(out, SUMMARY))
    return [FileInfo(**f) for f in summary["files"] if not f["path"].startswith(DROPS)]
