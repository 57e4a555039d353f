"""The ETA of a local run: a cost model over its phases, in wall seconds, updated as it runs.

Phases: read, each document stage, then whatever else the runner's plan holds (tokenizer
training, the masked-LM shards, the final writes). Costs are wall time, not execution time,
because much of a run is the runner's own work (grouping data between fused stages, starting
each one), which no transform's msecs count, and because the training phases run on one
worker however many there are. So the time between two updates is charged to phases: to
those whose execution time grew, in proportion; while none grew, to the earliest unfinished
phase of the fused stage the runner is executing (it is grouping that phase's input).

A phase costs a fixed overhead per fused stage the runner executes for it (the median wall
time of the stages run so far: most are tiny, so this is the runner's cost of a stage) plus
its work, which is
- done: what was charged to it, less its stages' overhead;
- under way, with a done fraction f from its counters: the work charged before its first
  output (grouping, signatures: what precedes any result) plus the work since, over f;
- not started, or without a fraction (a tokenizer trains in one call): its prior (a fixed cost
  plus wall ms per MB of the data that reaches it, for one worker or several) times this run's
  speed, and at least what it has used.

The speed is the work of the phases measured so far over their priors: it folds in the
machine, the worker count and the load from other processes, so the priors only need to be
right relative to each other. Each source's reading is a phase of its own, since a format's
cost per byte (plain text, HTML, mail) varies tenfold; until a phase that works on the text
has been measured, the speed is that of the source read at the least cost per prior. The data reaching a phase is the input bytes times the share
each earlier stage kept, in input-byte units; a stage that has not counted yet is assumed to
keep everything, except exact dedup: while the input is read, it counts a sample of its keys,
and the distinct share of the sample stands for what it will keep until its verdicts count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gristmill.pipelines.progress.metrics import Counts, Snapshot
from gristmill.pipelines.progress.priors import DEFAULT_PRIOR, priors_for

TAIL = "write"  # grouping and writing the tables, and everything not named for a phase
MIN_FRACTION = 0.03  # below this, a phase's own rate is too noisy to extrapolate
MIN_WORK_S = 1.0  # no ETA before the runner has worked this long
MIN_STAGES = 5  # fused stages run before their median says what a stage costs the runner


@dataclass(frozen=True)
class JobShape:
    """What the driver knows before the run: stages in flow order and input bytes per source."""

    stages: list[str]  # "read" first, as JobPlan.stages
    source_bytes: dict[str, int]
    workers: int = 1
    steps: list[str] = field(default_factory=list)  # corpus steps after the stages (JobPlan.steps)

    @property
    def total_bytes(self) -> int:
        return sum(self.source_bytes.values())


@dataclass
class Estimate:
    elapsed_s: float
    fraction: float  # elapsed work time over elapsed work time + ETA
    eta_s: float | None  # None until work has been measured
    bytes_read: int
    phases: dict[str, float]  # phase -> done fraction
    ms: dict[str, float]  # phase -> execution milliseconds so far
    docs: dict[str, tuple[int, int, int]]  # stage -> (in, kept, dropped) documents
    wall: dict[str, float] = field(default_factory=dict)  # phase -> wall seconds charged
    cost: dict[str, float] = field(default_factory=dict)  # phase -> expected wall seconds
    speed: float | None = None  # this run's work over the priors
    work: dict[str, float] = field(default_factory=dict)  # phase -> wall s less stage overhead
    overhead_s: float = 0.0  # the runner's wall time per fused stage


def phase_of(transform: str, phases: list[str]) -> str:
    """The phase a transform's time counts for, from its label in graph.build (a stage or a
    step is labelled by its name)."""
    top = transform.split("/", 1)[0].lower()
    if top.startswith("read") or top in ("files", "spread", "countread", "inputstats"):
        return "read"
    return top if top in phases else TAIL


def is_runner_label(transform: str) -> bool:
    """Transforms the runner adds (side inputs, flattens): no phase of the job's own."""
    return transform.startswith("ref_")


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


@dataclass
class Flow:
    """Where the documents are: done fractions (None: no counter says), the MB reaching each
    phase, the documents through each stage."""

    fractions: dict[str, float | None]
    mb: dict[str, float]
    docs: dict[str, tuple[int, int, int]]
    bytes_read: int


def flow(shape: JobShape, counters: Counts) -> Flow:
    """Done fractions in input-byte units: a document stands for its source's input bytes per
    document read, so every stage's work is counted against the bytes expected to reach it."""
    total = max(shape.total_bytes, 1)
    read_bytes = {s: counters.get((f"read.{s}", "bytes"), 0) for s in shape.source_bytes}
    read_docs = {s: counters.get((f"read.{s}", "documents"), 0) for s in shape.source_bytes}
    bytes_read = sum(read_bytes.values())
    unit = {s: read_bytes[s] / read_docs[s] if read_docs[s] else 0.0 for s in shape.source_bytes}
    fractions: dict[str, float | None] = {"read": min(1.0, bytes_read / total)}
    mb = {"read": total / 1e6}
    for s, n in shape.source_bytes.items():  # each source is read by its own fused stage
        fractions[f"read/{s}"] = min(1.0, read_bytes[s] / n) if n else 1.0
        mb[f"read/{s}"] = n / 1e6
    expected = {
        s: 0 if read_bytes[s] >= n and not read_docs[s] else n
        for s, n in shape.source_bytes.items()
    }

    def done_share(per_source: dict[str, float]) -> float:
        want = sum(expected.values())
        done = sum(n * unit.get(s, 0.0) for s, n in per_source.items())
        return min(1.0, done / want) if want else 1.0

    docs: dict[str, tuple[int, int, int]] = {}
    for stage in shape.stages[1:]:
        per = _stage_docs(counters, stage)
        mb[stage] = sum(expected.values()) / 1e6
        fractions[stage] = done_share({s: k + d for s, (_, k, d) in per.items()})
        docs[stage] = tuple(sum(v[i] for v in per.values()) for i in range(3))  # type: ignore[assignment]
        for s in expected:
            _, kept, dropped = per.get(s, (0, 0, 0))
            if kept + dropped:
                expected[s] *= kept / (kept + dropped)
    kept_mb = sum(expected.values()) / 1e6
    for phase in (*shape.steps, TAIL):
        mb[phase] = kept_mb
    for step in shape.steps:  # a step that sees every document counts them in
        seen = {s: v[0] for s, v in _stage_docs(counters, step).items()}
        fractions[step] = done_share(seen) if any(seen.values()) else None
    return Flow(fractions, mb, docs, bytes_read)


def stage_overhead(durations: tuple[float, ...]) -> float:
    """The runner's wall time per fused stage: the median stage, once there are enough of them
    that the few doing the work (or starting the workers) do not set it."""
    ordered = sorted(durations)
    return ordered[len(ordered) // 2] if len(ordered) >= MIN_STAGES else 0.0


class Estimator:
    """Follows one run update by update: charges wall time to phases and extrapolates."""

    def __init__(
        self, shape: JobShape, priors: dict[str, tuple[float, float] | float] | None = None
    ):
        self.shape = shape
        table = priors_for(shape.workers) if priors is None else priors
        # a bare number is ms per MB with no fixed cost
        self.priors = {p: v if isinstance(v, tuple) else (v, 0.0) for p, v in table.items()}
        # reading costs per byte what the format asks (plain text, HTML, mail): each source
        # is a phase of its own; "read" keeps the bookkeeping after the reads
        sources = [f"read/{s}" for s in shape.source_bytes]
        self.order = [*sources, *shape.stages, *shape.steps, TAIL]
        self.wall: dict[str, float] = {}
        self.setup: dict[str, tuple[float, int]] = {}  # (wall, stages run) at the first output
        self.work_started: float | None = None
        self._last: float | None = None
        self._ms: dict[str, float] = {}
        self._active = "read"  # the phase that last did measurable work
        self._plan: tuple[tuple[str, ...], ...] | None = None
        self._owner: list[str] = []  # plan index -> the phase a fused stage's overhead counts for
        self._holds: list[set[str]] = []  # plan index -> the phases it has transforms of

    def _key(self, transform: str) -> str:
        """The phase a transform's time counts for, each source's reading apart."""
        phase = phase_of(transform, [*self.shape.stages, *self.shape.steps])
        parts = transform.split("/", 2)
        if phase == "read" and len(parts) > 1 and parts[1] in self.shape.source_bytes:
            return f"read/{parts[1]}"
        return phase

    def _prior_s(self, phase: str, mb: float) -> float:
        """The phase's prior wall seconds for `mb` reaching it, at speed 1."""
        if phase == "read" or mb <= 0:  # "read": the bookkeeping after the sources' reads
            return 0.0
        ms, fixed = self.priors.get(phase) or self.priors.get(phase.split("/", 1)[0], DEFAULT_PRIOR)
        return ms * mb / 1000 + fixed

    def _phase_ms(self, snap: Snapshot) -> dict[str, float]:
        ms: dict[str, float] = {}
        for transform, value in snap.msecs.items():
            phase = self._key(transform)
            ms[phase] = ms.get(phase, 0.0) + value
        return ms

    def _learn_plan(self, plan: tuple[tuple[str, ...], ...] | None) -> None:
        if plan is None or plan is self._plan:
            return
        self._plan = plan
        rank = {p: i for i, p in enumerate(self.order)}
        self._holds = [
            {self._key(t) for t in stage if not is_runner_label(t)} or {TAIL} for stage in plan
        ]
        self._owner = [min(held, key=rank.__getitem__) for held in self._holds]

    def _gap_phase(self, snap: Snapshot, fractions: dict[str, float | None]) -> str:
        """Who waits while no transform runs: the earliest phase of the running fused stage
        that is not done, else the phase that worked last."""
        running = set().union(*(self._holds[i] for i in snap.running)) if self._holds else set()
        candidates = [p for p in self.order if p in running]
        open_ = [p for p in candidates if (fractions.get(p) or 0.0) < 1.0]
        return (open_ or candidates or [self._active])[0]

    def _charge(self, snap: Snapshot, ms: dict[str, float], fl: Flow, elapsed: float) -> None:
        last, self._last = self._last, elapsed
        grown = {p: v - self._ms.get(p, 0.0) for p, v in ms.items() if v > self._ms.get(p, 0.0)}
        self._ms = ms
        if self.work_started is None:  # before: building the graph, starting workers
            if not grown:
                return
            self.work_started = elapsed if last is None else last
        dt = elapsed - (last if last is not None else elapsed)
        ran = self._stages_ran(snap)
        for phase, f in fl.fractions.items():
            if f and phase not in self.setup:
                self.setup[phase] = (self.wall.get(phase, 0.0), ran.get(phase, 0))
        if grown:
            total = sum(grown.values())
            for phase, v in grown.items():
                self.wall[phase] = self.wall.get(phase, 0.0) + dt * v / total
            self._active = max(grown, key=grown.__getitem__)
        elif dt > 0:
            phase = self._gap_phase(snap, fl.fractions)
            self.wall[phase] = self.wall.get(phase, 0.0) + dt

    def _stages_ran(self, snap: Snapshot) -> dict[str, int]:
        pending = set(snap.pending)
        ran: dict[str, int] = {}
        for i, owner in enumerate(self._owner):
            if i not in pending:
                ran[owner] = ran.get(owner, 0) + 1
        return ran

    def _fractions(self, snap: Snapshot, fl: Flow, phases: list[str]) -> dict[str, float | None]:
        """Counted fractions; a phase without counters is done once every fused stage holding
        its transforms has run."""
        open_ = set().union(*(self._holds[i] for i in snap.pending)) if self._holds else None
        out: dict[str, float | None] = {}
        for p in phases:
            f = fl.fractions.get(p)
            if f is None and open_ is not None and p not in open_ and p in self.wall:
                f = 1.0
            out[p] = f
        return out

    def update(self, snap: Snapshot, elapsed: float) -> Estimate:
        self._learn_plan(snap.plan)
        ms = self._phase_ms(snap)
        fl = flow(self.shape, snap.counters)
        self._charge(snap, ms, fl, elapsed)
        seen = set(self.shape.stages) | set(ms) | set(self.wall) | {TAIL}
        phases = [p for p in self.order if p in seen.union(*self._holds)]
        fractions = self._fractions(snap, fl, phases)
        overhead = stage_overhead(snap.durations)
        ran = self._stages_ran(snap)
        left = sum(1 for i in snap.pending if i not in snap.running)  # stages to start
        wall = {p: self.wall.get(p, 0.0) for p in phases}
        work = {p: max(wall[p] - ran.get(p, 0) * overhead, 0.0) for p in phases}
        prior = {p: self._prior_s(p, fl.mb.get(p, 0.0)) for p in phases}
        need: dict[str, float] = {}  # phase -> its whole work, where measured
        for p, f in fractions.items():
            if f is not None and f >= 1.0:
                need[p] = work[p]
            elif f is not None and f >= MIN_FRACTION and work[p] > 0:
                wall0, ran0 = self.setup.get(p, (0.0, 0))
                before = min(max(wall0 - ran0 * overhead, 0.0), work[p])
                need[p] = before + (work[p] - before) / f
        measured = [p for p in need if prior[p] > 0 and work[p] > 0]
        text = [p for p in measured if not p.startswith("read")]
        if text:
            speed: float | None = sum(need[p] for p in text) / sum(prior[p] for p in text)
        else:  # the cheapest format read is the nearest to working on text
            speed = min((need[p] / prior[p] for p in measured), default=None)
        for p in phases:
            if p not in need:
                need[p] = max(prior[p] * (speed or 0.0), work[p])
        stages = {p: self._owner.count(p) for p in phases}
        cost = {p: need[p] + stages[p] * overhead for p in phases}
        eta = fraction = None
        worked = elapsed - self.work_started if self.work_started is not None else 0.0
        if speed is not None and worked >= MIN_WORK_S:
            done = {p for p, f in fractions.items() if f is not None and f >= 1.0}
            eta = left * overhead + sum(
                max(need[p] - work[p], 0.0) for p in phases if p not in done
            )
            fraction = worked / (worked + eta) if worked + eta > 0 else 1.0
        shown = {
            p: f if f is not None else (min(wall[p] / cost[p], 0.99) if cost[p] else 0.0)
            for p, f in fractions.items()
        }
        return Estimate(
            elapsed,
            fraction or 0.0,
            eta,
            fl.bytes_read,
            shown,
            ms,
            fl.docs,
            wall,
            cost,
            speed,
            work,
            overhead,
        )


def estimate(shape: JobShape, snap: Snapshot, elapsed: float) -> Estimate:
    """One snapshot's estimate, as the first update of a run."""
    return Estimator(shape).update(snap, elapsed)
