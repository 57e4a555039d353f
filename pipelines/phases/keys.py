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
import math
import posixpath
import time

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases import staging
from gristmill.pipelines.phases.front import DROPS, keyed_stages, keys_name
from gristmill.pipelines.phases.staged import ReadStaged, SkipListed, release_files, staged_files
from gristmill.pipelines.release.manifest import SUMMARY, dumps, read_json, write_summary
from gristmill.runners.local.pool import run_items
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
from gristmill.transforms.dedup.near_buckets import (
    as_is,
    edge_from_row,
    edge_key,
    edges_table,
    entry_from_row,
)
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.sorted_runs import merge_runs, run_files
from gristmill.transforms.stage import Stage

FOLDER = "_keys"
RUNS = "_runs"


def folder_of(area: str) -> str:
    return posixpath.join(area, FOLDER)


def stage_folders(out: str, stages: list[Stage]) -> list[str]:
    """Phase 2's folder of each KEYS stage, in flow order."""
    return [posixpath.join(out, stage.name) for stage in stages]


def _records(p: beam.Pipeline, stage: Stage, parts: list[str], earlier, label: str):
    """The stage's staged records of every partition, less the ids the `earlier` stages'
    staged drops name."""
    return (
        p
        | f"Staged/{label}" >> beam.Create(staged_files(parts, keys_name(stage)))
        | f"Read/{label}" >> beam.ParDo(ReadStaged(keyed_from_row))
        | f"NotDropped/{label}" >> beam.ParDo(SkipListed(staged_files(earlier, DROPS)))
    )


def _inner(cfg: JobConfig, stage: Stage, out: str):
    """The stage's grouping part, its index files spilled as sorted runs under `out`."""
    ctx = graph.stage_context(cfg, stage.name)
    ctx = dataclasses.replace(ctx, output=out, spill=posixpath.join(out, RUNS))
    return stage.on_keys(cfg.params_of(stage.section), ctx)


def build_stage(
    p: beam.Pipeline, cfg: JobConfig, stage: Stage, parts: list[str], earlier, out, edges=()
):
    """One KEYS stage over the partitions' staged records; its drops, index files and summary
    staged into `out`. `edges`: the candidate edge files `run_ranges` wrote, if it ran."""
    inner = _inner(cfg, stage, out)
    if hasattr(inner, "reread"):  # its waiting steps read the records again (stage.Rereads)
        inner.reread = lambda label: _records(p, stage, parts, earlier, label)
    if edges:
        inner.candidates = (
            p
            | "EdgeFiles" >> beam.Create(list(edges))
            | "ReadEdges" >> beam.ParDo(ReadStaged(edge_from_row))
        )
    records = _records(p, stage, parts, earlier, "records")
    result = records | stage.name.capitalize() >> Accounted(stage.name, inner)
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


def run_ranges(cfg: JobConfig, stage: Stage, parts: list[str], earlier, out) -> list[str]:
    """A stage whose candidate pairs come from grouping band entries (near dedup,
    near_buckets.py): the entries spilled by hash range of their key, then a pipeline per
    range, on the workers, groups its entries and stages its candidate edges; the edge files
    (none for a stage without ranges), in range order."""
    inner = _inner(cfg, stage, out)
    if not hasattr(inner, "spill_bands"):
        return []
    docs = sum(_rows(path) for path in staged_files(parts, keys_name(stage)))
    ranges = max(1, math.ceil(docs / int(cfg.section("runner")["range_docs"])))
    folder = posixpath.join(out, RUNS, "_bands")
    runner, options = local_runner()
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = _records(p, stage, parts, earlier, "records") | "SpillBands" >> inner.spill_bands(
            folder, ranges
        )
    items = [(r, paths) for (_, r), paths in sorted(run_files([folder]).items())]
    workers = int(cfg.section("runner")["workers"])
    run_items(f"{__name__}:range_item", (cfg, stage.name, out), items, workers, lambda *_: None)
    return [f for r, _ in items for f in staged_files([posixpath.join(out, RUNS)], _edges(r))]


def _edges(r: int) -> str:
    return f"edges-{r:05d}"


def range_item(payload: tuple[JobConfig, str, str], item: tuple[int, list[str]]) -> None:
    """One hash range's band entries grouped into its candidate edges (a work item: the
    ranges run side by side on the workers)."""
    cfg, name, out = payload
    stage = next(s for s in keyed_stages(cfg) if s.name == name)  # made here: lambdas
    r, paths = item
    runner, options = local_runner()
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = (
            p
            | "Runs" >> beam.Create(paths)
            | "Read" >> beam.ParDo(ReadStaged(entry_from_row))
            | "Pairs" >> _inner(cfg, stage, out).range_pairs()
            | "Stage"
            >> WriteShardedParquet(
                posixpath.join(out, RUNS), _edges(r), 1, edges_table, edge_key, as_is
            )
        )


def _rows(path: str) -> int:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return pq.ParquetFile(fh).metadata.num_rows


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
        _clear_runs(folder)  # a killed attempt's
        edges = run_ranges(cfg, stage, parts, folders[:i], folder)
        runner, options = local_runner()
        with beam.Pipeline(runner=runner, options=options) as p:
            build_stage(p, cfg, stage, parts, folders[:i], folder, edges)
        _merge_tables(cfg, stage, folder)
        _clear_runs(folder)
        staging.finish_with_summary(folder)
    return time.monotonic() - started


def _clear_runs(folder: str) -> None:
    runs = posixpath.join(folder, RUNS)
    if FileSystems.exists(runs):
        FileSystems.delete([runs])


def _merge_tables(cfg: JobConfig, stage: Stage, folder: str) -> None:
    """The stage's spilled index tables merged into their files in `folder` and added to the
    files its summary lists (release files: the end copies them into the release)."""
    if stage.tables is None:
        return
    ctx = graph.stage_context(cfg, stage.name)
    merged: list[FileInfo] = []
    for spec in stage.tables(cfg.params_of(stage.section), ctx):
        merged += merge_runs(posixpath.join(folder, RUNS, spec.relprefix), folder, spec)
    path = posixpath.join(folder, SUMMARY)
    summary = read_json(path)
    summary["files"] = [*summary["files"], *(dataclasses.asdict(f) for f in merged)]
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(dumps(summary).encode("utf-8"))


def made_files(out: str) -> list[FileInfo]:
    """The release files a stage's phase 2 wrote (its index files), not its staged drops."""
    summary = read_json(posixpath.join(out, SUMMARY))
    return release_files(summary)
