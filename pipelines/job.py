"""Running the corpus job: plan, build the graph, run it on the configured runner, finish the release."""

from __future__ import annotations

import logging
import time
from typing import Any

import apache_beam as beam

from gristmill.pipelines import graph as corpus
from gristmill.pipelines import refresh
from gristmill.pipelines.config import ConfigError, JobConfig
from gristmill.pipelines.progress import track as progress
from gristmill.pipelines.release import manifest as release
from gristmill.runners import ProfileError, is_local, runner_for
from gristmill.transforms.sources.read import NoMatch

log = logging.getLogger("gristmill")


def plan_or_explain(cfg: JobConfig, skip=None) -> corpus.JobPlan:
    try:
        return corpus.plan(cfg, skip)
    except NoMatch as err:
        raise ConfigError(f"sources: {err} matches no file") from None


def run_job(cfg: JobConfig, show: str = "off") -> dict[str, Any]:
    """Runs the whole job and returns the manifest it wrote. `show`: the progress display
    (rich | plain | off; see pipelines/progress/track.py); stage timings are collected either way."""
    started = time.monotonic()
    parent = refresh.prepare(cfg)
    job = plan_or_explain(cfg, parent.skip_consumed if parent else None)
    try:
        runner, options = runner_for(cfg.section("runner"))
    except ProfileError as err:
        raise ConfigError(f"runner.{err}") from None
    release.clear(cfg.output)
    log.info(
        "gristmill: %d input files, %.1f MB, stages %s, %d document shards",
        sum(len(v) for v in job.files.values()),
        job.input_bytes / 1e6,
        " > ".join(job.stages),
        job.document_shards,
    )
    runner_cfg = cfg.section("runner")
    local = is_local(runner_cfg)
    per_source = {name: sum(f.size for f in files) for name, files in job.files.items()}
    with (
        progress.track(
            job.stages,
            per_source,
            runner,
            show if local else "off",
            workers=int(runner_cfg.get("workers", 1)),
            steps=job.steps,
        ) as tracker,
        beam.Pipeline(runner=runner, options=options) as p,
    ):
        parts = corpus.build(p, cfg, job)
        release.write_summary(p, cfg.output, parts)
    elapsed = time.monotonic() - started
    timings = {
        "elapsed_s": round(elapsed, 3),
        "input_mb_per_s": round(job.input_bytes / 1e6 / max(elapsed, 1e-9), 3),
    }
    if local:
        timings["stages"] = tracker.stage_seconds()
        timings["stages_note"] = (
            "execution seconds inside each stage's transforms, summed over workers; "
            "write: grouping and writing the tables and training data"
        )
    extend = (lambda m: {"refresh": parent.manifest_section(m)}) if parent else None
    return release.finish(cfg, job.stages, timings, extend)
