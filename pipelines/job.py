"""Running the corpus job: plan, build the graph, run it on the configured runner, finish the release."""

from __future__ import annotations

import logging
import time
from typing import Any

import apache_beam as beam

from gristmill.pipelines import graph as corpus
from gristmill.pipelines import refresh
from gristmill.pipelines.config import ConfigError, JobConfig
from gristmill.pipelines.phases import local as phases
from gristmill.pipelines.phases import staging
from gristmill.pipelines.release import guard
from gristmill.pipelines.release import manifest as release
from gristmill.runners import ProfileError, is_local, runner_for
from gristmill.transforms.sources.read import NoMatch

log = logging.getLogger("gristmill")


def plan_or_explain(cfg: JobConfig, skip=None) -> corpus.JobPlan:
    try:
        return corpus.plan(cfg, skip)
    except NoMatch as err:
        raise ConfigError(f"sources: {err} matches no file") from None


def _announce(job: corpus.JobPlan) -> None:
    log.info(
        "gristmill: %d input files, %.1f MB, stages %s, %d document shards",
        sum(len(v) for v in job.files.values()),
        job.input_bytes / 1e6,
        " > ".join(job.stages),
        job.document_shards,
    )


def _run_one_graph(cfg: JobConfig, job: corpus.JobPlan) -> dict[str, Any]:
    """The distributed runners: the whole job as one Beam pipeline on the configured runner."""
    try:
        runner, options = runner_for(cfg.section("runner"))
    except ProfileError as err:
        raise ConfigError(f"runner.{err}") from None
    release.clear(cfg.output)
    _announce(job)
    with beam.Pipeline(runner=runner, options=options) as p:
        parts = corpus.build(p, cfg, job)
        release.write_summary(p, cfg.output, parts)
    return {}


def _run_phased(cfg: JobConfig, job: corpus.JobPlan, show: str) -> dict[str, Any]:
    """The local runner: partitions through phase 1 in worker processes, then the rest."""
    phased = phases.plan(cfg, job)
    release.clear(cfg.output)
    _announce(job)
    phases.run_partitions(cfg, phased, show)
    phases.run_keys(cfg, phased, show)
    phases.run_documents(cfg, job, phased, show)
    phases.run_rest(cfg, job, phased, show)
    return {
        "phases": phased.seconds,
        "phase_peak_mb": phased.peak_mb,
        "phase_peak_note": "peak resident MB of one process in each phase (partitions: the "
        "largest worker's); with N workers phase 1 holds N such processes and the driver",
        "partitions": len(phased.partitions),
        "stages": {k: round(v, 3) for k, v in phased.stage_seconds.items()},
        "stages_note": (
            "execution seconds inside each stage's transforms, summed over workers; "
            "write: grouping and writing the tables and training data"
        ),
    }


def run_job(cfg: JobConfig, show: str = "off", overwrite: bool = False) -> dict[str, Any]:
    """Runs the whole job and returns the manifest it wrote. `show`: the progress display
    (rich | plain | off; see pipelines/progress/track.py); stage timings are collected either
    way. `overwrite`: a finished release at the output is replaced (built beside, then swapped)."""
    started = time.monotonic()
    parent = refresh.prepare(cfg)
    job = plan_or_explain(cfg, parent.skip_consumed if parent else None)
    inputs = [f.path for files in job.files.values() for f in files]
    try:
        replace = guard.check_output(cfg.output, inputs, overwrite)
        if replace:  # the replacement is built beside: that folder must be ours too
            guard.check_output(guard.beside(cfg.output), inputs, overwrite=True)
    except guard.OutputError as err:
        raise ConfigError(str(err)) from None
    final = cfg.output
    with guard.locked(final):
        if replace:
            cfg.raw["output"] = guard.beside(final)
        try:
            manifest = _run_and_finish(cfg, job, parent, show, started)
        finally:
            cfg.raw["output"] = final
        if replace:
            guard.swap(guard.beside(final), final)
    return manifest


def _run_and_finish(cfg, job, parent, show: str, started: float) -> dict[str, Any]:
    if is_local(cfg.section("runner")):
        more = _run_phased(cfg, job, show)
    else:
        more = _run_one_graph(cfg, job)
    elapsed = time.monotonic() - started
    timings = {
        "elapsed_s": round(elapsed, 3),
        "input_mb_per_s": round(job.input_bytes / 1e6 / max(elapsed, 1e-9), 3),
        **more,
    }
    extend = (lambda m: {"refresh": parent.manifest_section(m)}) if parent else None
    manifest = release.finish(cfg, job.stages, timings, extend)
    staging.remove(cfg.output)  # the release is complete: its work area goes
    return manifest
