"""The progress tracker: live numbers from running bundles (1 and 2 workers), the estimate, the
plain and rich displays."""

from __future__ import annotations

import io
import sys
import time

import apache_beam as beam
import pytest
from apache_beam.internal.cloudpickle import cloudpickle  # the pickler Beam uses
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from gristmill.pipelines.progress import track as progress
from gristmill.pipelines.progress.estimate import flow, stage_overhead
from gristmill.pipelines.progress.track import Estimator, JobShape, Snapshot, estimate, phase_of

# Worker processes cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ITEMS = 60
ITEM_BYTES = 1000
SOURCE_BYTES = {"src": ITEMS * ITEM_BYTES}


class SlowRead(beam.DoFn):
    """Counts like the job's reader and a stage do, slowly enough to be watched."""

    def setup(self):
        self.bytes = Metrics.counter("read.src", "bytes")
        self.docs = Metrics.counter("read.src", "documents")
        self.kept = Metrics.counter("normalize", "src.kept")

    def __init__(self, pause: float):
        self.pause = pause

    def process(self, item):
        time.sleep(self.pause)
        self.bytes.inc(ITEM_BYTES)
        self.docs.inc()
        self.kept.inc()
        yield item


def _run(workers: int, pause: float) -> progress.Tracker:
    mode = "in_memory" if workers == 1 else "multi_processing"
    options = PipelineOptions([f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"])
    runner = FnApiRunner()
    out = io.StringIO()
    shown = progress.track(["read", "normalize"], SOURCE_BYTES, runner, "plain", out, 0.0)
    with shown as tr, beam.Pipeline(runner=runner, options=options) as p:
        _ = (
            p
            | "Files/src" >> beam.Create(range(ITEMS))
            | "Spread/src" >> beam.Reshuffle()
            | "Read/src" >> beam.ParDo(SlowRead(pause))
        )
    tr.output = out.getvalue()  # type: ignore[attr-defined]
    return tr


def _check_live(tracker: progress.Tracker) -> None:
    assert tracker.metrics.live_reports > 0, "no metrics from a running bundle"
    reads = [u.bytes_read for u in tracker.updates]
    total = ITEMS * ITEM_BYTES
    # Seen while bundles ran: finished bundles alone (one per worker) could show at most one
    # value between 0 and the total.
    assert len({r for r in reads if 0 < r < total}) >= 2, reads
    assert reads == sorted(reads), "counts went backwards"
    stamps = [u.elapsed_s for u in tracker.updates]
    assert max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) <= 2.0
    mid = [u for u in tracker.updates if 0 < u.bytes_read < total]
    assert any(u.eta_s is not None and u.eta_s > 0 for u in mid), "no ETA while running"
    assert "gristmill:" in tracker.output and "MB" in tracker.output  # type: ignore[attr-defined]
    assert "pipeline finished" in tracker.output  # type: ignore[attr-defined]
    seconds = tracker.stage_seconds()
    assert seconds.get("read", 0) > 0.5  # 60 x 50 ms of sleeping inside Read/src
    # the runner's plan was seen, and by the end every fused stage in it had run
    last = tracker.metrics.snapshot()
    assert last.plan and any("Read/src" in stage for stage in last.plan)
    assert last.pending == () and len(last.durations) >= len(last.plan)
    assert tracker.updates[-1].wall.get("read/src", 0) > 1.0  # the sleeping, charged to it


@pytest.mark.job
def test_live_numbers_with_one_worker():
    tracker = _run(1, 0.05)
    assert tracker.hooked
    _check_live(tracker)


@pytest.mark.job
def test_live_numbers_with_two_worker_processes():
    tracker = _run(2, 0.1)  # each worker's half takes ~3 s
    _check_live(tracker)


# ---- the estimate, from synthetic snapshots ---------------------------------------------------

MB = 1_000_000
STAGES = ["read", "normalize", "dedup_exact", "pii"]
PRIORS = {"read": 100.0, "normalize": 100.0, "dedup_exact": 100.0, "pii": 200.0}
PRIORS |= {"tokenizer": 300.0, "mlm": 300.0, "write": 0.0}
# the runner's fused stages: read; the text stages; dedup's join with pii; training; shards
PLAN = (
    ("Files/src", "Spread/src", "Read/src"),
    ("Normalize/Check", "Dedup_exact/Hash", "CountRead/Kept"),
    ("Dedup_exact/Join", "Pii/Scan", "Tokenizer/Sample", "WriteDocuments/Write"),
    ("Tokenizer/Train", "ref_PCollection_PCollection_7"),
    ("Mlm/Encode", "Mlm/Shards/Write"),
)


def _counters(read=0, docs=0, **stages: tuple[int, int]) -> dict:
    """Counters of one source `src`: bytes and documents read, (kept, dropped) per stage."""
    out = {("read.src", "bytes"): read, ("read.src", "documents"): docs}
    for stage, (kept, dropped) in stages.items():
        out[(stage, "src.kept")] = kept
        out[(stage, "src.dropped.why")] = dropped
    return out


def _shot(counters=None, ms=None, pending=None, running=(), durations=(), plan=PLAN):
    """A snapshot; by default, no fused stage of the plan has run yet."""
    pending = range(len(plan or ())) if pending is None else pending
    return Snapshot(
        counters or {},
        ms or {},
        plan,
        tuple(pending) if plan else (),
        tuple(running) if plan else (),
        tuple(durations),
    )


STEPS = ["tokenizer", "mlm"]


def _estimator(stages=STAGES) -> Estimator:
    return Estimator(JobShape(list(stages), {"src": 100 * MB}, steps=STEPS), PRIORS)


def test_time_is_charged_to_the_phases_that_worked_in_proportion():
    est = _estimator()
    est.update(_shot(_counters(0, 0), {"Read/src": 1}), 10.0)  # work starts
    later = est.update(
        _shot(_counters(50 * MB, 50), {"Read/src": 1001, "Normalize/Check": 3000}), 14.0
    )
    assert later.wall["read/src"] == pytest.approx(1.0)  # each source read is a phase
    assert later.wall["normalize"] == pytest.approx(3.0)


def test_while_no_transform_runs_the_time_goes_to_the_running_stage():
    # The runner groups the join's input: no msecs grow; dedup_exact (the earliest phase of the
    # stage that is not done) is waiting for it, not pii and not the writes.
    est = _estimator()
    ms = {"Read/src": 5000, "Normalize/Check": 5000}
    c = _counters(100 * MB, 100, normalize=(100, 0))
    est.update(_shot(c, {"Read/src": 1}), 0.0)
    est.update(_shot(c, ms, pending=(2, 3, 4), running=(2,)), 10.0)
    gap = est.update(_shot(c, ms, pending=(2, 3, 4), running=(2,)), 17.0)
    assert gap.wall["dedup_exact"] == pytest.approx(7.0)
    assert gap.wall.get("pii", 0.0) == 0.0


def test_a_phase_under_way_goes_on_at_its_own_rate_after_its_first_output():
    est = _estimator(["read", "dedup_exact"])
    c = _counters(100 * MB, 100)
    est.update(_shot(c, {"Read/src": 1}), 0.0)
    # 20 s of hashing and grouping before dedup's first document comes out...
    est.update(_shot(c, {"Read/src": 1, "Dedup_exact/Hash": 20_000}), 20.0)
    # ...then 10 s for the first half of its documents: 10 s more to go, not 20 + 20 + ...
    c = _counters(100 * MB, 100, dedup_exact=(40, 10))
    ms = {"Read/src": 1, "Dedup_exact/Hash": 20_000, "Dedup_exact/Join": 10_000}
    half = est.update(_shot(c, ms), 30.0)
    assert half.phases["dedup_exact"] == pytest.approx(0.5)
    assert half.cost["dedup_exact"] == pytest.approx(40.0)


def test_phases_not_started_cost_their_prior_at_the_speed_of_this_run():
    est = _estimator()
    est.update(_shot(_counters(0, 0), {"Read/src": 1}), 0.0)
    # the read took 20 s for a prior of 100 ms/MB x 100 MB = 10 s: this run goes at speed 2
    done = est.update(_shot(_counters(100 * MB, 100), {"Read/src": 20_000}), 20.0)
    assert done.speed == pytest.approx(2.0)
    # normalize 100 ms/MB, dedup 100, pii 200, tokenizer and mlm 300 each, on 100 MB, twice
    # as slow; the writes have no prior; no stage overhead measured yet
    assert done.eta_s == pytest.approx(2 * (10 + 10 + 20 + 30 + 30))
    assert done.cost["tokenizer"] == pytest.approx(60.0)


def test_each_source_is_read_at_its_own_rate_and_the_cheapest_sets_the_speed():
    shape = JobShape(["read", "normalize"], {"books": 50 * MB, "web": 50 * MB})
    est = Estimator(shape, {"read": 100.0, "normalize": 100.0, "write": 0.0})
    plan = (("Read/books",), ("Read/web",), ("Normalize/Check",))
    c = {("read.books", "bytes"): 0, ("read.books", "documents"): 0}
    est.update(_shot(c, {"Read/books": 1}, plan=plan), 0.0)
    # the books took 5 s (their prior: speed 1); half the web pages 50 s (HTML: 20 times that)
    c = {("read.books", "bytes"): 50 * MB, ("read.books", "documents"): 50}
    c |= {("read.web", "bytes"): 25 * MB, ("read.web", "documents"): 500}
    read = est.update(_shot(c, {"Read/books": 5001, "Read/web": 50_000}, plan=plan), 55.0)
    assert read.speed == pytest.approx(1.0, rel=1e-3)
    assert read.eta_s == pytest.approx(50 + 10, rel=1e-3)  # the web's other half; normalize


def test_what_the_stages_drop_does_not_reach_the_phases_after_them():
    est = _estimator()
    est.update(_shot(_counters(0, 0), {"Read/src": 1}), 0.0)
    c = _counters(100 * MB, 100, normalize=(100, 0), dedup_exact=(20, 80))
    ms = {"Read/src": 10_000, "Normalize/Check": 10_000, "Dedup_exact/Join": 10_000}
    after = est.update(_shot(c, ms, pending=(3, 4)), 30.0)
    assert flow(est.shape, c).mb["pii"] == pytest.approx(20.0)
    # speed 1 (30 s for 30 s of priors): pii 200 ms/MB, tokenizer and mlm 300, on 20 MB
    assert after.eta_s == pytest.approx(4 + 6 + 6, rel=1e-3)


def test_the_plan_says_which_phases_come_after_the_stages():
    text_only = (*PLAN[:2], ("Dedup_exact/Join", "Pii/Scan", "WriteDocuments/Write"))
    shots = []
    for plan in (PLAN, text_only, None):
        est = _estimator()
        est.update(_shot(_counters(0, 0), {"Read/src": 1}, plan=plan), 0.0)
        c = _counters(100 * MB, 100)
        shots.append(est.update(_shot(c, {"Read/src": 10_000}, plan=plan), 10.0))
    full, text, unknown = shots
    assert "tokenizer" in full.cost and "mlm" in full.cost
    assert "tokenizer" not in text.cost and "mlm" not in text.cost
    assert full.eta_s == pytest.approx(text.eta_s + 30 + 30)
    assert unknown.eta_s == pytest.approx(text.eta_s)  # without a plan: the stages only


def test_a_phase_without_counters_is_done_when_its_stages_have_run():
    est = _estimator()
    c = _counters(100 * MB, 100, normalize=(100, 0), dedup_exact=(100, 0), pii=(100, 0))
    ms = {"Read/src": 10_000, "Normalize/Check": 10_000, "Dedup_exact/Join": 10_000}
    est.update(_shot(c, {"Read/src": 1}), 0.0)
    est.update(_shot(c, ms | {"Pii/Scan": 20_000}, pending=(3, 4), running=(3,)), 50.0)
    training = ms | {"Pii/Scan": 20_000, "Tokenizer/Train": 30_000}
    trained = est.update(_shot(c, training, pending=(4,)), 80.0)
    assert trained.phases["tokenizer"] == 1.0
    assert trained.eta_s == pytest.approx(30.0, rel=1e-3)  # mlm only: 300 ms/MB x 100 MB at speed 1


def test_each_stage_still_to_run_costs_the_runner_s_overhead_per_stage():
    est = _estimator(["read"])
    plan = (("Files/src",), ("Read/src",), *((f"WriteDocuments/Step{i}",) for i in range(10)))
    est.update(_shot(_counters(0, 0), {"Read/src": 1}, plan=plan, pending=range(12)), 0.0)
    shot = _shot(
        _counters(100 * MB, 100),
        {"Read/src": 10_000},
        plan=plan,
        pending=range(2, 12),
        durations=(0.2, 0.3, 0.4, 0.5, 9.0),  # the median: most stages are small
    )
    assert est.update(shot, 10.0).eta_s == pytest.approx(10 * 0.4)


def test_the_stage_overhead_needs_enough_stages_to_ignore_the_big_ones():
    assert stage_overhead((8.0, 0.1, 0.2, 0.1)) == 0.0  # the workers' start is no typical stage
    assert stage_overhead((8.0, 0.1, 0.2, 0.1, 0.3)) == pytest.approx(0.2)


def test_no_eta_before_work_is_measured():
    shape = JobShape(["read"], {"src": 1000})
    assert estimate(shape, Snapshot(), 3.0).eta_s is None
    est = Estimator(shape)
    est.update(Snapshot(_counters(0, 0), {"Read/src": 10}), 2.9)
    assert est.update(Snapshot(_counters(10, 1), {"Read/src": 20}), 3.0).eta_s is None


def test_stage_fraction_counts_documents_by_their_source_size():
    # two sources: big books, small articles; one book done is worth many articles
    shape = JobShape(["read", "normalize"], {"books": 9_000, "news": 1_000})
    counters = {
        ("read.books", "bytes"): 9_000,
        ("read.books", "documents"): 3,
        ("read.news", "bytes"): 1_000,
        ("read.news", "documents"): 10,
        ("normalize", "books.kept"): 1,
        ("normalize", "news.kept"): 8,
        ("normalize", "news.dropped.empty"): 2,
    }
    assert flow(shape, counters).fractions["normalize"] == pytest.approx((3_000 + 1_000) / 10_000)


def test_transform_labels_map_to_phases():
    stages = ["read", "normalize", "dedup_near", "tokenizer", "mlm"]
    assert phase_of("Read/books", stages) == "read"
    assert phase_of("ReadDocs", stages) == "read"
    assert phase_of("Spread/books/AddRandomKeys", stages) == "read"
    assert phase_of("Normalize/Apply/Check", stages) == "normalize"
    assert phase_of("Dedup_near/Apply/MinHash", stages) == "dedup_near"
    assert phase_of("WriteDocuments/Write", stages) == "write"
    assert phase_of("Tokenizer/TokenizerInfo", stages) == "tokenizer"
    assert phase_of("Mlm/Shards/Write", stages) == "mlm"


def test_display_mode():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert progress.display_mode(True, Tty()) == "off"
    assert progress.display_mode(False, Tty()) == "rich"
    assert progress.display_mode(False, io.StringIO()) == "plain"


def test_rich_view_renders_bars_and_stages():
    out = io.StringIO()
    shape = JobShape(["read", "normalize"], SOURCE_BYTES)
    view = progress.RichView(out)
    est = Estimator(shape)
    est.update(Snapshot(_counters(0, 0), {"Read/src": 1}), 1.0)
    view.show(shape, est.update(Snapshot(_counters(30_000, 30), {"Read/src": 900}), 5.0))
    view.close()
    text = out.getvalue()
    assert "0.0 / 0.1" in text
    assert "normalize" in text and "ETA" in text


def test_the_overall_share_shown_never_goes_backwards():
    """The cost model may raise its forecast mid-run (37% then 4% was seen): the share shown
    holds until the work catches up; the estimates themselves are kept as made."""
    from gristmill.pipelines.progress.estimate import Estimate

    raw = [0.10, 0.37, 0.04, 0.20, 0.50, 1.0]
    tracker = progress.Tracker(JobShape(["read"], SOURCE_BYTES), mode="off")
    made = iter(Estimate(float(i), f, 10.0, 0, {}, {}, {}) for i, f in enumerate(raw))
    tracker.estimator = type("Fixed", (), {"update": lambda self, snap, now: next(made)})()
    shown: list[float] = []
    tracker.on_update = lambda est: shown.append(est.fraction)
    tracker._started = time.monotonic()
    for _ in raw:
        tracker.update()
    assert shown == [0.10, 0.37, 0.37, 0.37, 0.50, 1.0]
    assert [e.fraction for e in tracker.updates] == raw


def test_log_records_go_above_the_live_panel_not_into_it():
    """Beam's warnings (any log record) print through the panel's console while it is live,
    and the terminal's own handler gets them back once it is closed."""
    import logging

    root = logging.getLogger()
    term = logging.StreamHandler(sys.stderr)
    term.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root.addHandler(term)
    beam_log = logging.getLogger("apache_beam.runners.test_progress")
    old_level = beam_log.level
    beam_log.setLevel(logging.WARNING)
    out = io.StringIO()
    try:
        view = progress.RichView(out)
        assert term not in root.handlers  # the raw terminal writer is out while the panel is live
        beam_log.warning("a warning from Beam")
        shape = JobShape(["read"], SOURCE_BYTES)
        view.show(shape, Estimator(shape).update(Snapshot(_counters(0, 0), {}), 1.0))
        view.close()
        assert term in root.handlers
        line = next(x for x in out.getvalue().splitlines() if "a warning from Beam" in x)
        assert line.strip().endswith("a warning from Beam")  # a line of its own, not a panel row
        assert "ETA" not in line and "━" not in line
    finally:
        root.removeHandler(term)
        beam_log.setLevel(old_level)
