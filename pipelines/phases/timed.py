"""A partition's pipeline on the in-process runner, with the execution seconds of each stage."""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam

from gristmill.pipelines.progress.estimate import phase_of
from gristmill.pipelines.progress.metrics import ACTIVE, LiveMetrics, install_hooks
from gristmill.runners.local.runner import local_runner


def timed_pipeline(build: Callable[[beam.Pipeline], None], names: list[str]) -> dict[str, float]:
    """Runs the pipeline `build(p)` makes; execution seconds per stage of `names` ("read" and
    "write" too: the progress display's phases)."""
    live = LiveMetrics()
    install_hooks()
    ACTIVE.append(live)
    try:
        runner, options = local_runner()
        with beam.Pipeline(runner=runner, options=options) as p:
            build(p)
    finally:
        ACTIVE.remove(live)
    per: dict[str, float] = {}
    for transform, ms in live.snapshot().msecs.items():
        phase = phase_of(transform, ["read", *names])
        per[phase] = per.get(phase, 0.0) + ms / 1000.0
    return per


def stage_documents(summary: dict) -> dict[str, list[int]]:
    """stage -> [in, kept, dropped] documents of a partition's summary, for the progress line."""
    docs: dict[str, list[int]] = {}
    for (stage, _, outcome, _), (n, _) in summary["totals"]:
        slot = {"in": 0, "kept": 1}.get(outcome, 2)
        docs.setdefault(stage, [0, 0, 0])[slot] += n
    return docs
