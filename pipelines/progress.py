"""Live progress of a local run: input bytes read, documents per stage, elapsed time and ETA.

Where the numbers come from: Beam's FnApiRunner reports a bundle's metrics only when the bundle
ends, and a local run is mostly one long bundle per fused stage, so the job's own counters
(`read.<source>/bytes`, `<stage>/<source>.kept|dropped.*`) and Beam's per-transform execution
times are read from the bundles *while they run*:

- one worker (`in_memory`): the bundle runs synchronously in the calling thread, so a poller
  thread reads the metrics of the active bundle processors of the embedded worker directly;
- several workers (`multi_processing`): the runner's ProgressRequester asks each worker process
  for progress over the control channel (`progress_request_frequency`); the responses, which
  Beam otherwise drops, are kept here.

Finished bundles contribute their final metrics. Both hooks are installed on Beam's private
FnApiRunner classes (checked against apache-beam 2.77); if Beam changes them, the display
says so and shows finished bundles only, and the job itself is never affected.

The ETA is a cost model over phases (read, each stage, the final writes): a phase's cost is
its execution time divided by its done fraction once it has started, and a prior cost per
input MB (scaled by the speed observed so far) before; CPU milliseconds turn into wall time
at the rate observed in this run, which folds in the worker count and the runner's overhead.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from apache_beam.metrics import monitoring_infos as mi
from apache_beam.portability import common_urns

log = logging.getLogger("gristmill")

POLL_S = 0.5  # how often running bundles are asked for their metrics
UPDATE_S = 1.0  # how often the estimate and the display are refreshed
PLAIN_EVERY_S = 10.0  # one log line per this many seconds when not on a terminal
MSECS_URN = common_urns.monitoring_info_specs.PROCESS_BUNDLE_MSECS.spec.urn
TAIL = "write"  # the phase after the last stage: grouping and writing the tables
# Prior execution ms per MB of input, per phase (bench/progress.py prints them): only their
# ratios matter, the speed is learned during the run. Stages not listed get DEFAULT_PRIOR.
PRIOR_MS_PER_MB = {
    "read": 140.0,
    "normalize": 140.0,
    "langid": 75.0,
    "quality": 240.0,
    "dedup_exact": 110.0,
    "dedup_near": 100.0,
    "pii": 350.0,  # fast mode; 210-370 seen on the same corpus: the content decides
}
DEFAULT_PRIOR = 150.0
# Wall ms per MB kept of the tail, one worker / several (data crosses processes), same speed.
TAIL_WALL_MS_PER_MB = {1: 70.0, 2: 110.0}
TAIL_FLOOR = 0.05  # an overrunning tail still shows a little time left
MIN_FRACTION = 0.03  # below this, a phase's own rate is too noisy to extrapolate
MIN_SPENT_MS = 500.0  # no ETA before this much work was measured

Counts = dict[tuple[str, str], int]


@dataclass
class Snapshot:
    """Counters ((namespace, name) -> value) and execution msecs (transform -> ms), summed."""

    counters: Counts = field(default_factory=dict)
    msecs: dict[str, int] = field(default_factory=dict)

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


# ---- collecting metrics from the FnApiRunner while it runs -------------------------------------


class LiveMetrics:
    """Finished bundles' metrics plus the latest metrics of the bundles still running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = Snapshot()
        self._live: dict[str, Snapshot] = {}
        self._finished: set[str] = set()
        self.running: set[Any] = set()  # BundleManagers in process_bundle (embedded polling)
        self.live_reports = 0  # metrics received from bundles still running

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

    def snapshot(self) -> Snapshot:
        with self._lock:
            out = Snapshot(dict(self._done.counters), dict(self._done.msecs))
            for snap in self._live.values():
                out.add(snap)
        return out

    def poll_embedded(self) -> None:
        """In-process workers: read the active bundle processors' metrics directly."""
        from apache_beam.runners.portability.fn_api_runner.worker_handlers import (
            EmbeddedWorkerHandler,
        )

        for manager in list(self.running):
            handler = getattr(manager, "_worker_handler", None)
            if not isinstance(handler, EmbeddedWorkerHandler):
                continue
            try:
                active = list(handler.bundle_processor_cache.active_bundle_processors.items())
                for iid, (_, processor) in active:
                    self.in_flight(iid, from_monitoring_infos(processor.monitoring_infos()))
            except Exception:  # the bundle ended under us; the next poll sees the next one
                continue


_ACTIVE: list[LiveMetrics] = []
_INSTALL_LOCK = threading.Lock()
_installed = False


def install_hooks() -> bool:
    """Patches the FnApiRunner once so that every active LiveMetrics sees bundle metrics."""
    global _installed
    with _INSTALL_LOCK:
        if _installed:
            return True
        try:
            from apache_beam.runners.portability.fn_api_runner import fn_runner

            base_requester = fn_runner.ProgressRequester
            base_process = fn_runner.BundleManager.process_bundle
        except (ImportError, AttributeError):
            return False

        class ReportingRequester(base_requester):
            """Beam's progress poller, with its responses delivered instead of dropped."""

            def __init__(self, worker_handler, instruction_id, frequency, callback=None):
                def deliver(progress):
                    snap = from_monitoring_infos(progress.monitoring_infos)
                    for live in list(_ACTIVE):
                        live.in_flight(instruction_id, snap)
                    if callback is not None:
                        callback(progress)

                super().__init__(worker_handler, instruction_id, frequency, deliver)

        def process_bundle(self, *args, **kwargs):
            dry_run = kwargs.get("dry_run", args[4] if len(args) > 4 else False)
            for live in list(_ACTIVE):
                live.running.add(self)
            try:
                result, splits = base_process(self, *args, **kwargs)
            finally:
                for live in list(_ACTIVE):
                    live.running.discard(self)
            active = list(_ACTIVE)
            if active and not dry_run:
                snap = from_monitoring_infos(result.process_bundle.monitoring_infos)
                for live in active:
                    live.finished(result.instruction_id, snap)
            return result, splits

        fn_runner.ProgressRequester = ReportingRequester
        fn_runner.BundleManager.process_bundle = process_bundle
        _installed = True
        return True


def enable_progress_requests(runner: Any, seconds: float = POLL_S) -> None:
    """Worker processes answer progress requests only if the runner sends them; same as
    constructing FnApiRunner(progress_request_frequency=seconds)."""
    if getattr(runner, "_progress_frequency", 0) is None:
        runner._progress_frequency = seconds


# ---- the estimate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobShape:
    """What the driver knows before the run: stages in flow order and input bytes per source."""

    stages: list[str]  # "read" first, as JobPlan.stages
    source_bytes: dict[str, int]
    workers: int = 1

    @property
    def total_bytes(self) -> int:
        return sum(self.source_bytes.values())


@dataclass
class Estimate:
    elapsed_s: float
    fraction: float  # elapsed work time over elapsed work time + ETA
    eta_s: float | None  # None until work has started
    bytes_read: int
    phases: dict[str, float]  # phase -> done fraction
    ms: dict[str, float]  # phase -> execution milliseconds so far
    docs: dict[str, tuple[int, int, int]]  # stage -> (in, kept, dropped) documents
    tail_started: float | None = None  # elapsed seconds when every stage was done


def phase_of(transform: str, stages: list[str]) -> str:
    """The phase a transform's execution time counts for, from its label in corpus.build."""
    top = transform.split("/", 1)[0].lower()
    if top in ("files", "spread", "read", "countread"):
        return "read"
    if top.startswith("tokenizer") or top == "mlm":  # training data, after the stages
        return "tokenizer" if top.startswith("tokenizer") else "mlm"
    return top if top in stages else TAIL


def _stage_docs(counters: Counts, stage: str) -> dict[str, list[int]]:
    """source -> [in, kept, dropped] documents of one stage, from its counters."""
    out: dict[str, list[int]] = {}
    for (ns, name), value in counters.items():
        if ns != stage or "." not in name:
            continue
        source, outcome = name.split(".", 1)
        slot = {"in": 0, "kept": 1}.get(outcome, 2 if outcome.startswith("dropped") else -1)
        if slot >= 0:
            out.setdefault(source, [0, 0, 0])[slot] += value
    return out


def estimate(
    shape: JobShape,
    snap: Snapshot,
    elapsed: float,
    work_started: float | None,
    tail_started: float | None = None,
) -> Estimate:
    """Where the job is and how long it has left, from one snapshot of its metrics."""
    c = snap.counters
    total = max(shape.total_bytes, 1)
    read_bytes = {s: c.get((f"read.{s}", "bytes"), 0) for s in shape.source_bytes}
    read_docs = {s: c.get((f"read.{s}", "documents"), 0) for s in shape.source_bytes}
    bytes_read = sum(read_bytes.values())
    # A kept document stands for its source's input bytes per kept document, so every stage's
    # work is counted in input-byte units, and the first stage expects its sources' bytes.
    unit = {s: read_bytes[s] / read_docs[s] if read_docs[s] else 0.0 for s in shape.source_bytes}
    fractions = {"read": min(1.0, bytes_read / total)}
    expected = {
        s: 0 if read_bytes[s] >= n and not read_docs[s] else n
        for s, n in shape.source_bytes.items()
    }
    docs: dict[str, tuple[int, int, int]] = {}
    for stage in shape.stages[1:]:
        per = _stage_docs(c, stage)
        done = sum((k + d) * unit.get(s, 0.0) for s, (_, k, d) in per.items())
        fractions[stage] = (
            min(1.0, done / sum(expected.values())) if any(expected.values()) else 1.0
        )
        docs[stage] = tuple(sum(v[i] for v in per.values()) for i in range(3))  # type: ignore[assignment]
        for s, (_, kept, dropped) in per.items():
            if kept + dropped and s in expected:
                expected[s] *= kept / (kept + dropped)
    ms: dict[str, float] = {}
    for transform, value in snap.msecs.items():
        phase = phase_of(transform, shape.stages)
        ms[phase] = ms.get(phase, 0.0) + value
    mb, kept_mb = total / 1e6, sum(expected.values()) / 1e6
    prior = {
        p: PRIOR_MS_PER_MB.get(p, DEFAULT_PRIOR) * (mb if p == "read" else kept_mb)
        for p in fractions
    }
    # Phases under way cost what they cost so far over their done fraction; the others cost
    # their prior, scaled by how fast this run has been against the priors.
    seen = [p for p, f in fractions.items() if f >= MIN_FRACTION and ms.get(p)]
    speed = sum(ms[p] for p in seen) / sum(prior[p] * fractions[p] for p in seen) if seen else 1.0
    cost = {p: ms[p] / f if p in seen else prior[p] * speed for p, f in fractions.items()}
    # Stages under way together usually run fused in one bundle: one rate for all of them,
    # their time over their time-weighted done fraction, is steadier than one rate each.
    pool = [p for p in seen if p != "read"]
    remaining_ms = sum(cost[p] * (1.0 - f) for p, f in fractions.items() if p not in pool)
    if pool:
        pooled = sum(ms[p] for p in pool)
        done = sum(ms[p] * fractions[p] for p in pool) / pooled
        remaining_ms += pooled / done * (1.0 - done)
    # The tail (grouping and writing the tables) is mostly the runner's own serial work, which
    # no counter follows: a wall-time prior, counted down once every stage is done.
    tail_s = TAIL_WALL_MS_PER_MB[min(shape.workers, 2)] * kept_mb * speed / 1000.0
    if all(f >= 1.0 for f in fractions.values()):
        tail_started = elapsed if tail_started is None else tail_started
    in_tail = elapsed - tail_started if tail_started is not None else 0.0
    fractions[TAIL] = min(0.95, in_tail / tail_s) if tail_started is not None and tail_s else 0.0
    spent = sum(ms.values())
    eta = fraction = None
    if work_started is not None and spent >= MIN_SPENT_MS and elapsed - work_started >= 1.0:
        worked = elapsed - work_started
        eta = remaining_ms * worked / spent + max(tail_s - in_tail, TAIL_FLOOR * tail_s)
        fraction = worked / (worked + eta)
    return Estimate(elapsed, fraction or 0.0, eta, bytes_read, fractions, ms, docs, tail_started)


# ---- display -----------------------------------------------------------------------------------


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "estimating"
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def plain_line(shape: JobShape, est: Estimate) -> str:
    stages = " · ".join(
        f"{s} {kept + dropped:,}/{inn:,}" for s, (inn, kept, dropped) in est.docs.items()
    )
    return (
        f"gristmill: {clock(est.elapsed_s)} elapsed · read {est.bytes_read / 1e6:,.1f} of "
        f"{shape.total_bytes / 1e6:,.1f} MB · {stages} documents · {est.fraction:.0%} done · "
        f"ETA {clock(est.eta_s)}"
    )


class RichView:
    """A live terminal panel: input bar, overall bar with ETA, a row per stage."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def show(self, shape: JobShape, est: Estimate) -> None:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        total = max(shape.total_bytes, 1)
        head = Table.grid(padding=(0, 1))
        head.add_row(
            "input ",
            ProgressBar(total=total, completed=min(est.bytes_read, total), width=40),
            f"{est.bytes_read / 1e6:,.1f} / {total / 1e6:,.1f} MB",
        )
        head.add_row(
            "overall",
            ProgressBar(total=1.0, completed=est.fraction, width=40),
            f"{est.fraction:.0%} · elapsed {clock(est.elapsed_s)} · ETA {clock(est.eta_s)}",
        )
        stages = Table(box=None, padding=(0, 2), show_edge=False)
        for col in ("stage", "in", "kept", "dropped", "done"):
            stages.add_column(col, justify="left" if col == "stage" else "right")
        for stage, (inn, kept, dropped) in est.docs.items():
            stages.add_row(
                stage, f"{inn:,}", f"{kept:,}", f"{dropped:,}", f"{est.phases[stage]:.0%}"
            )
        self.live.update(Group(head, stages), refresh=True)

    def close(self) -> None:
        self.live.stop()


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
        self.updates: list[Estimate] = []
        self.hooked = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._work_started: float | None = None
        self._view: RichView | None = None
        self._last_line = float("-inf")

    def start(self) -> None:
        self.hooked = install_hooks()
        if not self.hooked and self.mode != "off":
            log.warning(
                "gristmill: no live metrics from this Beam version: progress shows finished work only"
            )
        _ACTIVE.append(self.metrics)
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
        while not self._stop.wait(UPDATE_S):
            self.update()

    def update(self) -> Estimate:
        now = time.monotonic() - self._started
        snap = self.metrics.snapshot()
        if self._work_started is None and sum(snap.msecs.values()) > 0:
            self._work_started = now
        tail = self.updates[-1].tail_started if self.updates else None
        est = estimate(self.shape, snap, now, self._work_started, tail)
        self.updates.append(est)
        if self.on_update is not None:
            self.on_update(est)
        if self._view is not None:
            self._view.show(self.shape, est)
        elif self.mode == "plain" and now - self._last_line >= self.plain_every:
            self._last_line = now
            print(plain_line(self.shape, est), file=self.stream, flush=True)
        return est

    def stop(self, ok: bool = True) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.metrics in _ACTIVE:
            _ACTIVE.remove(self.metrics)
        if self._view is not None:
            self._view.close()
        if ok and self.mode == "plain":
            elapsed = time.monotonic() - self._started
            print(f"gristmill: pipeline finished in {clock(elapsed)}", file=self.stream, flush=True)

    def stage_seconds(self) -> dict[str, float]:
        """Execution seconds per phase (read, each stage, write), summed over workers."""
        per: dict[str, float] = {}
        for transform, ms in self.metrics.snapshot().msecs.items():
            phase = phase_of(transform, self.shape.stages)
            per[phase] = per.get(phase, 0.0) + ms / 1000.0
        order = [*self.shape.stages, "tokenizer", "mlm", TAIL]
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
) -> Iterator[Tracker]:
    """Around `with beam.Pipeline(...)`: shows progress (mode rich | plain | off) and collects
    the per-stage execution times either way."""
    enable_progress_requests(runner)
    shape = JobShape(list(stages), dict(source_bytes), workers)
    tracker = Tracker(shape, mode, stream, plain_every)
    tracker.start()
    ok = False
    try:
        yield tracker
        ok = True
    finally:
        tracker.stop(ok)
