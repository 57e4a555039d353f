"""Live progress of a local run: input bytes read, documents per stage, elapsed time and ETA.

`track` wraps `with beam.Pipeline(...)`: a Tracker polls the live metrics (metrics.py:
Beam's FnApiRunner hooked to report running bundles and its fused stages), turns them into an
estimate every UPDATE_S (estimate.py: a cost model over the phases, in wall time) and
shows it (view.py: a log line or a live panel). The per-phase execution times it
gathers go into the run report either way.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from gristmill.pipelines.progress.estimate import (  # re-exported: the public names of progress
    TAIL,
    Estimate,
    Estimator,
    JobShape,
    estimate,
    phase_of,
)
from gristmill.pipelines.progress.metrics import (
    ACTIVE,
    POLL_S,
    LiveMetrics,
    Snapshot,
    enable_progress_requests,
    from_monitoring_infos,
    install_hooks,
)
from gristmill.pipelines.progress.view import RichView, clock, plain_line

__all__ = [
    "Estimate",
    "Estimator",
    "JobShape",
    "LiveMetrics",
    "RichView",
    "Snapshot",
    "Tracker",
    "clock",
    "display_mode",
    "enable_progress_requests",
    "estimate",
    "from_monitoring_infos",
    "install_hooks",
    "phase_of",
    "plain_line",
    "track",
]

log = logging.getLogger("gristmill")

UPDATE_S = 0.5  # how often the estimate and the display are refreshed (target: every 2 s)
PLAIN_EVERY_S = 10.0  # one log line per this many seconds when not on a terminal


class Tracker:
    """Runs beside the pipeline: every UPDATE_S, a new estimate, recorded and shown."""

    def __init__(
        self,
        shape: JobShape,
        mode: str = "plain",
        stream: TextIO | None = None,
        plain_every: float = PLAIN_EVERY_S,
        on_update: Callable[[Estimate], None] | None = None,
    ):
        self.shape = shape
        self.mode = mode
        self.stream = stream or sys.stderr
        self.plain_every = plain_every
        self.on_update = on_update
        self.metrics = LiveMetrics()
        self.estimator = Estimator(shape)
        self.updates: list[Estimate] = []
        self.last_snapshot = Snapshot()
        self.hooked = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._view: RichView | None = None
        self._last_line = float("-inf")
        self._shown_fraction = 0.0

    def start(self) -> None:
        self.hooked = install_hooks()
        if not self.hooked and self.mode != "off":
            log.warning(
                "gristmill: no live metrics from this Beam version: progress shows finished work only"
            )
        ACTIVE.append(self.metrics)
        self._started = time.monotonic()
        if self.mode == "rich":
            try:
                self._view = RichView(self.stream)
            except ImportError:  # rich is a dependency; without it, lines rather than nothing
                self.mode = "plain"
        for target in (self._poll, self._tick):
            thread = threading.Thread(
                target=target, name=f"gristmill-{target.__name__}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            self.metrics.poll_embedded()

    def _tick(self) -> None:
        # a fixed cadence, not a pause after each update: a late update (the thread waited
        # for the GIL behind a long C call) does not push the next one back
        due = time.monotonic()
        while True:
            due = max(due + UPDATE_S, time.monotonic())
            if self._stop.wait(due - time.monotonic()):
                return
            self.update()

    def update(self) -> Estimate:
        """A new estimate. `updates` keeps it as estimated (the bench measures the ETA from
        them); what is shown never goes backwards: when the cost model raises its forecast
        (a phase turned out dearer than its prior), the overall share holds until the work
        catches up, rather than falling from 37% to 4%."""
        now = time.monotonic() - self._started
        self.last_snapshot = self.metrics.snapshot()
        est = self.estimator.update(self.last_snapshot, now)
        self.updates.append(est)
        self._shown_fraction = max(self._shown_fraction, min(est.fraction, 1.0))
        shown = dataclasses.replace(est, fraction=self._shown_fraction)
        if self.on_update is not None:
            self.on_update(shown)
        if self._view is not None:
            self._view.show(self.shape, shown)
        elif self.mode == "plain" and now - self._last_line >= self.plain_every:
            self._last_line = now
            print(plain_line(self.shape, shown), file=self.stream, flush=True)
        return est

    def stop(self, ok: bool = True) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.metrics in ACTIVE:
            ACTIVE.remove(self.metrics)
        if self._view is not None:
            self._view.close()
        if ok and self.mode == "plain":
            elapsed = time.monotonic() - self._started
            print(f"gristmill: pipeline finished in {clock(elapsed)}", file=self.stream, flush=True)

    def stage_seconds(self) -> dict[str, float]:
        """Execution seconds per phase (read, each stage, training, write), summed over workers."""
        per: dict[str, float] = {}
        for transform, ms in self.metrics.snapshot().msecs.items():
            phase = phase_of(transform, [*self.shape.stages, *self.shape.steps])
            per[phase] = per.get(phase, 0.0) + ms / 1000.0
        order = [*self.shape.stages, *self.shape.steps, TAIL]
        return {p: round(per[p], 3) for p in order if p in per}


def display_mode(quiet: bool, stream: TextIO | None = None) -> str:
    """off with --quiet; a live panel on a terminal; periodic log lines otherwise (CI, cron)."""
    if quiet:
        return "off"
    stream = stream or sys.stderr
    return "rich" if getattr(stream, "isatty", lambda: False)() else "plain"


@contextmanager
def track(
    stages: list[str],
    source_bytes: dict[str, int],
    runner: Any = None,
    mode: str = "plain",
    stream: TextIO | None = None,
    plain_every: float = PLAIN_EVERY_S,
    workers: int = 1,
    steps: list[str] = (),
) -> Iterator[Tracker]:
    """Around `with beam.Pipeline(...)`: shows progress (mode rich | plain | off) and collects
    the per-stage execution times either way."""
    enable_progress_requests(runner)
    shape = JobShape(list(stages), dict(source_bytes), workers, list(steps))
    tracker = Tracker(shape, mode, stream, plain_every)
    tracker.start()
    ok = False
    try:
        yield tracker
        ok = True
    finally:
        tracker.stop(ok)
