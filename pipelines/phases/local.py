"""A local run in phases: partitions across worker processes, the keys between them.

1. plan: the input's partitions (plan.py) and the staging area they write to (staging.py);
   before any work, the output's filesystem must have room for the staging area;
2. phase 1, per partition, on `runner.workers` processes (this one and N-1 workers:
   runners/local/pool.py), each a Beam pipeline on the in-process FnApiRunner (front.py);
   a partition an earlier run finished is not redone;
3. phase 2, the KEYS stages (dedup) over every partition's compact keys (keys.py);
4. phase 3, per partition again on the workers: the documents phase 2 kept through the
   remaining document stages (pii), spilled as sorted runs (back.py);
5. the end: the runs merged into the release's shards, a shard per work item on the workers
   (merge.py), then one small pipeline for the drops, dead letters, counts, report rows and
   the training steps (rest.py), with the live progress display.
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
from gristmill.pipelines.phases import back, keys, merge, staging
from gristmill.pipelines.phases.front import keyed_stages, leading_stages, run_front
from gristmill.pipelines.phases.plan import Partition, partitions_of, plan_key, staging_bytes
from gristmill.pipelines.phases.rest import build_final, report_merger, staged_summary
from gristmill.pipelines.progress import track as progress
from gristmill.pipelines.release import manifest as release
from gristmill.pipelines.release.manifest import add_files
from gristmill.runners.local import memory
from gristmill.runners.local.pool import run_items
from gristmill.runners.local.runner import MALLOC_ENV, local_runner
from gristmill.transforms.stage import Needs, Stage

log = logging.getLogger("gristmill")


@dataclass
class Phased:
    """What the driver knows of a phased run: its partitions and where they stage."""

    partitions: list[Partition]
    folders: list[str]
    front_stages: list[Stage]
    keyed_stages: list[Stage]
    keys_folder: str
    back_stages: list[Stage]
    backs: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)  # per process, the largest

    def peaked(self, phase: str, mb: float | None) -> None:
        if mb is not None:
            self.peak_mb[phase] = max(self.peak_mb.get(phase, 0.0), mb)


def plan(cfg: JobConfig, job: graph.JobPlan) -> Phased:
    """The partitions and their staging folders; stops with one line if the disk is short."""
    partitions = partitions_of(cfg, job.files)
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
    front, keyed = leading_stages(cfg), keyed_stages(cfg)
    after = graph.enabled_stages(cfg)[len(front) + len(keyed) :]
    if any(stage.needs is not Needs.DOCUMENT for stage in after):
        raise ConfigError(f"runner: {after[0].name} cannot run in a local run's partitions")
    backs = back.folders_of(root, [p.name for p in partitions])
    return Phased(partitions, folders, front, keyed, keys.folder_of(root), after, backs)


def front_item(payload: tuple[JobConfig, list[Stage]], item: tuple[Partition, str]) -> dict:
    """One partition's phase 1 (in a worker process): its wall and stage seconds."""
    cfg, stages = payload
    part, folder = item
    return run_front(cfg, stages, part, folder)


class PartitionProgress:
    """Phase 1's or 3's progress: a line per staged partition (on stderr unless `show` is off) with
    the bytes done, the documents through each stage so far and an ETA from the bytes rate."""

    def __init__(
        self, phased: Phased, todo: list[Partition], show: str, phase: int, stages: list[Stage]
    ):
        self.show, self.total = show, sum(p.bytes for p in phased.partitions)
        self.phase = phase
        self.before = self.total - sum(p.bytes for p in todo)
        self.done_bytes, self.docs, self.started = self.before, {}, time.monotonic()
        self.count, self.of = len(phased.partitions) - len(todo), len(phased.partitions)
        self.order = ["read", *(stage.name for stage in stages)]  # flow order
        self._say(f"{self.of} partitions ({self.count} already staged), phase {phase}")

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
            f"phase {self.phase} ETA {progress.clock(eta)}"
        )


def _on_workers(
    cfg: JobConfig, phased: Phased, phase: int, work: tuple[str, Any, list[tuple]], show: str
) -> None:
    """A phase's partitions not yet finished (items: (partition, ..., its folder)), on the
    worker processes, with progress lines."""
    started = time.monotonic()
    target, payload, items = work
    todo = [item for item in items if not staging.finished(item[-1])]
    stages = phased.front_stages if phase == 1 else phased.back_stages
    shown = PartitionProgress(phased, [item[0] for item in todo], show, phase, stages)
    name = "partitions" if phase == 1 else "documents"

    def done(item: tuple, result: dict) -> None:
        for stage, s in result["stages"].items():
            phased.stage_seconds[stage] = phased.stage_seconds.get(stage, 0.0) + s
        phased.peaked(name, result.get("peak_mb"))
        shown.done(item[0], result)

    for key, value in MALLOC_ENV.items():  # read when a worker process starts
        os.environ.setdefault(key, value)
    workers = int(cfg.section("runner")["workers"])
    run_items(target, payload, todo, workers, done)
    phased.seconds[name] = round(time.monotonic() - started, 3)


def run_partitions(cfg: JobConfig, phased: Phased, show: str) -> None:
    """Phase 1: every partition read and taken through the leading document stages."""
    items = list(zip(phased.partitions, phased.folders, strict=True))
    work = (f"{__name__}:front_item", (cfg, phased.front_stages), items)
    _on_workers(cfg, phased, 1, work, show)


def run_documents(cfg: JobConfig, job: graph.JobPlan, phased: Phased, show: str) -> None:
    """Phase 3: every partition's documents through the stages after the keys."""
    items = list(zip(phased.partitions, phased.folders, phased.backs, strict=True))
    keyed = keys.stage_folders(phased.keys_folder, phased.keyed_stages)
    payload = (cfg, job, phased.back_stages, keyed)
    _on_workers(cfg, phased, 3, ("gristmill.pipelines.phases.back:run_back", payload, items), show)


def keys_item(payload: tuple, item: int) -> dict:
    """Phase 2 (in whichever process runs it): its wall seconds and peak memory."""
    cfg, folders, out = payload  # the stages made again here: they hold lambdas
    memory.reset_peak()
    seconds = keys.run_keys(cfg, keyed_stages(cfg), folders, out)
    return {"seconds": seconds, "peak_mb": memory.peak_mb()}


def run_keys(cfg: JobConfig, phased: Phased, show: str) -> None:
    """Phase 2: the KEYS stages over the staged keys. With several workers it runs in a child
    process that exits before phase 3, so its high-water mark (the runner holds a stage's
    records) does not stay in the driver beside phase 3's workers; with one worker, in this
    process (a child would add its imports to the driver's models)."""
    if not phased.keyed_stages:
        return
    if show != "off":
        names = ", ".join(s.name for s in phased.keyed_stages)
        print(f"gristmill: phase 2, {names} over the partitions' keys", file=sys.stderr)
    payload = (cfg, phased.folders, phased.keys_folder)
    got: list[dict] = []
    isolate = int(cfg.section("runner")["workers"]) > 1
    run_items(f"{__name__}:keys_item", payload, [0], 1, lambda _, r: got.append(r), isolate=isolate)
    phased.seconds["keys"] = round(got[0]["seconds"], 3)
    phased.peaked("keys", got[0]["peak_mb"])


def _copy_made(files: list, src: str, dst: str) -> None:
    """Phase 2's release files (index/...) into the release; the staged copies stay, so a
    phase 2 that finished stays finished if the run is killed after this."""
    for f in files:
        target = posixpath.join(dst, f.path)
        if not FileSystems.exists(posixpath.dirname(target)):
            FileSystems.mkdirs(posixpath.dirname(target))
        FileSystems.copy([posixpath.join(src, f.path)], [target])


def merge_documents(cfg: JobConfig, job: graph.JobPlan, phased: Phased) -> list:
    """Phase 3's runs merged into the release's shards, a shard per item on the workers."""
    specs = merge.merge_specs(cfg, job, phased.back_stages)
    items = merge.merge_items(specs, phased.backs)
    items.sort(key=lambda item: -len(item[3]))  # the most runs first: a shorter tail
    made: list = []
    workers = int(cfg.section("runner")["workers"])
    scratch = posixpath.join(posixpath.dirname(phased.keys_folder), merge.SCRATCH)
    payload = (cfg, job, phased.back_stages, scratch)
    run_items(f"{merge.__name__}:merge_item", payload, items, workers, lambda _, f: made.append(f))
    return sorted(made, key=lambda f: f.path)


def run_rest(cfg: JobConfig, job: graph.JobPlan, phased: Phased, show: str) -> Any:
    """The end of the job: the shards merged, then the release's tables, counts and training
    steps, with the live progress display."""
    started = time.monotonic()
    memory.reset_peak()
    merged = merge_documents(cfg, job, phased)
    runner, options = local_runner([str(a) for a in cfg.section("runner").get("args", [])])
    keyed = keys.stage_folders(phased.keys_folder, phased.keyed_stages)
    prior = staged_summary(phased.folders + keyed + phased.backs, report_merger(cfg))
    documents = [
        posixpath.join(cfg.output, f.path) for f in merged if f.path.startswith("documents/")
    ]
    staged = ([*phased.folders, *keyed, *phased.backs], phased.folders)
    with (
        progress.track(
            ["read"], staged_bytes(cfg, phased, prior), runner, show, steps=job.steps
        ) as tracker,
        beam.Pipeline(runner=runner, options=options) as p,
    ):
        parts = build_final(p, cfg, job, staged, prior, documents)
        release.write_summary(p, cfg.output, parts)
    for folder in keyed:
        _copy_made(keys.made_files(folder), folder, cfg.output)
    add_files(cfg.output, merged)
    phased.peaked("rest", memory.peak_mb())
    phased.seconds["rest"] = round(time.monotonic() - started, 3)
    for stage, s in tracker.stage_seconds().items():
        if stage != "read":
            phased.stage_seconds[stage] = phased.stage_seconds.get(stage, 0.0) + s
    return tracker


def staged_bytes(cfg: JobConfig, phased: Phased, prior: dict[str, Any]) -> dict[str, int]:
    """Text bytes per source that the document stages kept: what the training steps read."""
    flow = [*phased.front_stages, *phased.keyed_stages, *phased.back_stages]
    last = flow[-1].name if flow else "read"
    out = {s.name: 0 for s in cfg.sources}
    for (stage, source, outcome, _), (_, nbytes) in prior["tallies"]:
        if stage == last and outcome == "kept":
            out[source] = out.get(source, 0) + nbytes
    return out
