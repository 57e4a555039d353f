"""A local run in phases: partitions through phase 1 across worker processes, then the rest.

1. plan: the input's partitions (plan.py) and the staging area they write to (staging.py);
   before any work, the output's filesystem must have room for the staging area;
2. phase 1, per partition, on `runner.workers` processes (runners/local/pool.py), each a Beam
   pipeline on the in-process FnApiRunner (front.py); a partition an earlier run finished is
   not redone;
3. the rest of the job, one pipeline over the staged partitions (rest.py), with the live
   progress display.
"""

from __future__ import annotations

import logging
import os
import posixpath
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines import graph
from gristmill.pipelines.config import ConfigError, JobConfig
from gristmill.pipelines.phases import keys, staging
from gristmill.pipelines.phases.front import keyed_stages, leading_stages, run_front
from gristmill.pipelines.phases.plan import Partition, plan_key, plan_partitions, staging_bytes
from gristmill.pipelines.phases.rest import build_rest, staged_summary
from gristmill.pipelines.progress import track as progress
from gristmill.pipelines.release import manifest as release
from gristmill.pipelines.release.manifest import add_files
from gristmill.runners.local import memory
from gristmill.runners.local.pool import run_items
from gristmill.runners.local.runner import MALLOC_ENV, local_runner
from gristmill.transforms.sorted_runs import merge_runs
from gristmill.transforms.stage import Stage

log = logging.getLogger("gristmill")


@dataclass
class Phased:
    """What the driver knows of a phased run: its partitions and where they stage."""

    partitions: list[Partition]
    folders: list[str]
    front_stages: list[Stage]
    keyed_stages: list[Stage]
    keys_folder: str
    seconds: dict[str, float] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)  # per process, the largest

    def peaked(self, phase: str, mb: float | None) -> None:
        if mb is not None:
            self.peak_mb[phase] = max(self.peak_mb.get(phase, 0.0), mb)


def plan(cfg: JobConfig, job: graph.JobPlan) -> Phased:
    """The partitions and their staging folders; stops with one line if the disk is short."""
    runner = cfg.section("runner")
    partitions = plan_partitions(job.files, int(runner["partition_bytes"]))
    key = plan_key(partitions, cfg.sha256())
    need, free = staging_bytes(job.input_bytes), staging.free_bytes(cfg.output)
    if free is not None and free < need:
        raise ConfigError(
            f"output: {cfg.output} has {free / 1e9:.1f} GB free; staging this input needs "
            f"about {need / 1e9:.1f} GB"
        )
    staging.keep_only(cfg.output, key)
    root = staging.area(cfg.output, key)
    folders = [posixpath.join(root, p.name) for p in partitions]
    return Phased(partitions, folders, leading_stages(cfg), keyed_stages(cfg), keys.folder_of(root))


def front_item(payload: tuple[JobConfig, list[Stage]], item: tuple[Partition, str]) -> dict:
    """One partition's phase 1 (in a worker process): its wall and stage seconds."""
    cfg, stages = payload
    part, folder = item
    return run_front(cfg, stages, part, folder)


class PartitionProgress:
    """Phase 1's progress: a line per staged partition (on stderr unless `show` is off) with
    the bytes done, the documents through each stage so far and an ETA from the bytes rate."""

    def __init__(self, phased: Phased, todo: list[Partition], show: str):
        self.show, self.total = show, sum(p.bytes for p in phased.partitions)
        self.before = self.total - sum(p.bytes for p in todo)
        self.done_bytes, self.docs, self.started = self.before, {}, time.monotonic()
        self.count, self.of = len(phased.partitions) - len(todo), len(phased.partitions)
        self.order = ["read", *(stage.name for stage in phased.front_stages)]  # flow order
        self._say(f"{self.of} partitions ({self.count} already staged), phase 1")

    def _say(self, text: str) -> None:
        if self.show != "off":
            print(f"gristmill: {text}", file=sys.stderr, flush=True)

    def done(self, part: Partition, result: dict) -> None:
        self.count += 1
        self.done_bytes += part.bytes
        for stage, counts in result["docs"].items():
            have = self.docs.setdefault(stage, [0, 0, 0])
            for i, n in enumerate(counts):
                have[i] += n
        elapsed = time.monotonic() - self.started
        rate = (self.done_bytes - self.before) / max(elapsed, 1e-9)
        eta = (self.total - self.done_bytes) / rate if rate > 0 else None
        stages = " · ".join(
            f"{s} {self.docs[s][1] + self.docs[s][2]:,}/{self.docs[s][0]:,}"
            for s in self.order
            if s in self.docs
        )
        self._say(
            f"{progress.clock(elapsed)} elapsed · partition {self.count}/{self.of} · "
            f"{self.done_bytes / 1e6:,.1f} of {self.total / 1e6:,.1f} MB · {stages} documents · "
            f"phase 1 ETA {progress.clock(eta)}"
        )


def run_partitions(cfg: JobConfig, phased: Phased, show: str) -> None:
    todo = [(p, f) for p, f in zip(phased.partitions, phased.folders, strict=True)]
    todo = [(p, f) for p, f in todo if not staging.finished(f)]
    started = time.monotonic()
    shown = PartitionProgress(phased, [p for p, _ in todo], show)

    def done(item: tuple[Partition, str], result: dict) -> None:
        for stage, s in result["stages"].items():
            phased.stage_seconds[stage] = phased.stage_seconds.get(stage, 0.0) + s
        phased.peaked("partitions", result.get("peak_mb"))
        shown.done(item[0], result)

    for key, value in MALLOC_ENV.items():  # read when a worker process starts
        os.environ.setdefault(key, value)
    run_items(
        "gristmill.pipelines.phases.local:front_item",
        (cfg, phased.front_stages),
        todo,
        int(cfg.section("runner")["workers"]),
        done,
    )
    phased.seconds["partitions"] = round(time.monotonic() - started, 3)


def run_keys(cfg: JobConfig, phased: Phased, show: str) -> None:
    """Phase 2: the KEYS stages over the staged keys, in this process."""
    if not phased.keyed_stages:
        return
    if show != "off":
        names = ", ".join(s.name for s in phased.keyed_stages)
        print(f"gristmill: phase 2, {names} over the partitions' keys", file=sys.stderr)
    memory.reset_peak()
    seconds = keys.run_keys(cfg, phased.keyed_stages, phased.folders, phased.keys_folder)
    phased.seconds["keys"] = round(seconds, 3)
    phased.peaked("keys", memory.peak_mb())


def _copy_made(files: list, src: str, dst: str) -> None:
    """Phase 2's release files (index/...) into the release; the staged copies stay, so a
    phase 2 that finished stays finished if the run is killed after this."""
    for f in files:
        target = posixpath.join(dst, f.path)
        if not FileSystems.exists(posixpath.dirname(target)):
            FileSystems.mkdirs(posixpath.dirname(target))
        FileSystems.copy([posixpath.join(src, f.path)], [target])


def run_rest(cfg: JobConfig, job: graph.JobPlan, phased: Phased, show: str) -> Any:
    """The rest of the job over the staged partitions, with the live progress display."""
    started = time.monotonic()
    memory.reset_peak()
    runner, options = local_runner([str(a) for a in cfg.section("runner").get("args", [])])
    skip = len(phased.front_stages) + len(phased.keyed_stages)
    stages = graph.enabled_stages(cfg)[skip:]
    keyed = keys.stage_folders(phased.keys_folder, phased.keyed_stages)
    runs = posixpath.join(posixpath.dirname(phased.keys_folder), "_runs")
    if FileSystems.exists(runs):  # a killed run's: the rest starts over
        FileSystems.delete([runs])
    prior = staged_summary(phased.folders + keyed)
    with (
        progress.track(
            ["read", *(s.name for s in stages)],
            staged_bytes(cfg, phased, prior),
            runner,
            show,
            steps=job.steps,
        ) as tracker,
        beam.Pipeline(runner=runner, options=options) as p,
    ):
        parts = build_rest(p, cfg, job, phased.folders, prior, stages, keyed, runs)
        release.write_summary(p, cfg.output, parts)
    for folder in keyed:
        _copy_made(keys.made_files(folder), folder, cfg.output)
    merged = merge_runs(runs, cfg.output, graph.document_shards(cfg, job))
    add_files(cfg.output, merged)
    if FileSystems.exists(runs):  # no document reached the sink: no run was written
        FileSystems.delete([runs])
    phased.peaked("rest", memory.peak_mb())
    phased.seconds["rest"] = round(time.monotonic() - started, 3)
    for stage, s in tracker.stage_seconds().items():
        if stage != "read":
            phased.stage_seconds[stage] = phased.stage_seconds.get(stage, 0.0) + s
    return tracker


def staged_bytes(cfg: JobConfig, phased: Phased, prior: dict[str, Any]) -> dict[str, int]:
    """Text bytes per source that phase 1 kept: what the rest reads."""
    last = phased.front_stages[-1].name if phased.front_stages else "read"
    out = {s.name: 0 for s in cfg.sources}
    for (stage, source, outcome, _), (_, nbytes) in prior["tallies"]:
        if stage == last and outcome == "kept":
            out[source] = out.get(source, 0) + nbytes
    return out
