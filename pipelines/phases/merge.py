"""The partitions' sorted runs merged into the release's shards, one shard per work item,
across the local worker processes (each a k-way merge that holds a batch per run)."""

from __future__ import annotations

import posixpath

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases.back import runs_of
from gristmill.schemas.records import FileInfo
from gristmill.transforms.sorted_runs import ShardSpec, merge_shard, run_files, shard_keys
from gristmill.transforms.stage import Stage

SCRATCH = "_merge"  # in the staging area: a merge's intermediate runs (sorted_runs.FAN_IN)


def merge_specs(cfg: JobConfig, job: graph.JobPlan, stages: list[Stage]) -> list[ShardSpec]:
    """The documents table and the sharded tables of the `stages` (the ones phase 3 ran)."""
    specs = [graph.document_shards(cfg, job)]
    for stage in stages:
        if stage.tables is not None:
            ctx = graph.stage_context(cfg, stage.name)
            specs.extend(stage.tables(cfg.params_of(stage.section), ctx))
    return specs


def merge_items(specs: list[ShardSpec], backs: list[str]) -> list[tuple[int, str, int, list]]:
    """(table, partition, shard, its runs) for every file the merge writes."""
    items = []
    for i, spec in enumerate(specs):
        runs = run_files([posixpath.join(runs_of(b), spec.relprefix) for b in backs])
        for part, shard in shard_keys(spec, runs):
            items.append((i, part, shard, runs.get((part, shard), [])))
    return items


def merge_item(payload: tuple, item: tuple[int, str, int, list]) -> FileInfo:
    """One shard's runs into its release file (in a worker process)."""
    cfg, job, stages, scratch = payload
    table, part, shard, paths = item
    spec = merge_specs(cfg, job, stages)[table]
    return merge_shard(paths, cfg.output, spec, part, shard, scratch)
