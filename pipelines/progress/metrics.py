"""Live metrics of a local run, read from Beam's FnApiRunner while its bundles run.

Beam's FnApiRunner reports a bundle's metrics only when the bundle ends, and a local run is
mostly one long bundle per fused stage, so the job's own counters (`read.<source>/bytes`,
`<stage>/<source>.kept|dropped.*`) and Beam's per-transform execution times are read from the
bundles *while they run*:

- one worker (`in_memory`): the bundle runs synchronously in the calling thread, so a poller
  thread reads the metrics of the active bundle processors of the embedded worker directly;
- several workers (`multi_processing`): the runner's ProgressRequester asks each worker process
  for progress over the control channel (`progress_request_frequency`); the responses, which
  Beam otherwise drops, are kept here.

Finished bundles contribute their final metrics. The runner's plan (its fused stages, in the
order it runs them, each with its transforms) and the stage it is running are kept too: they
say which work is still ahead, and where the time goes while no transform runs (the runner
grouping data between stages). The hooks on Beam's private FnApiRunner classes live in
runners/beam_private.py; on another Beam the display says so and shows finished bundles only,
and the job itself is never affected.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from apache_beam.metrics import monitoring_infos as mi
from apache_beam.portability import common_urns

from gristmill.runners.beam_private import (
    embedded_bundle_infos,
    install_progress_hooks,
    request_progress,
)

POLL_S = 0.5  # how often running bundles are asked for their metrics
MSECS_URN = common_urns.monitoring_info_specs.PROCESS_BUNDLE_MSECS.spec.urn

Counts = dict[tuple[str, str], int]


@dataclass
class Snapshot:
    """Counters ((namespace, name) -> value) and execution msecs (transform -> ms), summed;
    and, once the runner has planned, its fused stages and how far it is through them."""

    counters: Counts = field(default_factory=dict)
    msecs: dict[str, int] = field(default_factory=dict)
    plan: tuple[tuple[str, ...], ...] | None = None  # each fused stage's transforms, in order
    pending: tuple[int, ...] = ()  # plan indexes of the stages not yet run (or running)
    running: tuple[int, ...] = ()  # plan indexes of the stages running
    durations: tuple[float, ...] = ()  # wall seconds of each stage execution that ended

    def add(self, other: Snapshot) -> None:
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for k, v in other.msecs.items():
            self.msecs[k] = self.msecs.get(k, 0) + v


def _size(snap: Snapshot) -> int:
    return sum(snap.msecs.values()) + sum(snap.counters.values())


def from_monitoring_infos(infos: Any) -> Snapshot:
    snap = Snapshot()
    for info in infos:
        if info.urn == mi.USER_COUNTER_URN:
            key = (info.labels.get("NAMESPACE", ""), info.labels.get("NAME", ""))
            snap.counters[key] = snap.counters.get(key, 0) + mi.extract_counter_value(info)
        elif info.urn == MSECS_URN:
            name = info.labels.get("PTRANSFORM", "")
            snap.msecs[name] = snap.msecs.get(name, 0) + mi.extract_counter_value(info)
    return snap


class LiveMetrics:
    """Finished bundles' metrics plus the latest metrics of the bundles still running, and
    the runner's fused stages: planned, running, done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = Snapshot()
        self._live: dict[str, Snapshot] = {}
        self._finished: set[str] = set()
        self.running: set[Any] = set()  # BundleManagers in process_bundle (embedded polling)
        self.live_reports = 0  # metrics received from bundles still running
        self._plan: dict[str, tuple[str, ...]] = {}  # fused stage -> its transforms, in order
        self._runs: dict[str, int] = {}  # fused stage -> executions under way
        self._since: dict[str, float] = {}  # fused stage -> when its execution began
        self._ran: set[str] = set()
        self._durations: list[float] = []

    def in_flight(self, instruction_id: str, snap: Snapshot) -> None:
        with self._lock:
            if instruction_id in self._finished:
                return
            # Within a bundle metrics only grow; a smaller reading comes from a processor that
            # was reset after the bundle ended, or from a worker that no longer runs it.
            before = self._live.get(instruction_id)
            if before is not None and _size(snap) < _size(before):
                return
            self._live[instruction_id] = snap
            self.live_reports += 1

    def finished(self, instruction_id: str, snap: Snapshot) -> None:
        with self._lock:
            self._finished.add(instruction_id)
            self._live.pop(instruction_id, None)
            self._done.add(snap)

    def planned(self, plan: dict[str, tuple[str, ...]]) -> None:
        with self._lock:
            self._plan = dict(plan)

    def stage_started(self, stage: str) -> None:
        with self._lock:
            self._runs[stage] = self._runs.get(stage, 0) + 1
            self._since.setdefault(stage, time.monotonic())

    def stage_ended(self, stage: str) -> None:
        with self._lock:
            self._runs[stage] = self._runs.get(stage, 1) - 1
            if self._runs[stage] <= 0:
                self._durations.append(time.monotonic() - self._since.pop(stage, time.monotonic()))
            self._ran.add(stage)

    def snapshot(self) -> Snapshot:
        with self._lock:
            out = Snapshot(dict(self._done.counters), dict(self._done.msecs))
            for snap in self._live.values():
                out.add(snap)
            if self._plan:
                names = list(self._plan)
                out.plan = tuple(self._plan.values())
                out.running = tuple(i for i, s in enumerate(names) if self._runs.get(s, 0) > 0)
                out.pending = tuple(
                    i for i, s in enumerate(names) if s not in self._ran or i in out.running
                )
                out.durations = tuple(self._durations)
        return out

    def poll_embedded(self) -> None:
        """In-process workers: read the active bundle processors' metrics directly."""
        for manager in list(self.running):
            try:
                for iid, infos in embedded_bundle_infos(manager):
                    self.in_flight(iid, from_monitoring_infos(infos))
            except Exception:  # the bundle ended under us; the next poll sees the next one
                continue


ACTIVE: list[LiveMetrics] = []


def _event(name: str, *args: Any) -> None:
    """What the runner's hooks report (runners/beam_private.py), to every active LiveMetrics."""
    for live in list(ACTIVE):
        if name == "running":
            manager, on = args
            (live.running.add if on else live.running.discard)(manager)
        elif name in ("in_flight", "finished"):
            instruction_id, infos = args
            getattr(live, name)(instruction_id, from_monitoring_infos(infos))
        else:
            getattr(live, name)(*args)


def install_hooks() -> bool:
    """Once per process: the runner reports running bundles and its fused stages."""
    return install_progress_hooks(_event)


def enable_progress_requests(runner: Any, seconds: float = POLL_S) -> None:
    request_progress(runner, seconds)
