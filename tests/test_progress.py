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

from gristmill.pipelines import progress
from gristmill.pipelines.progress import JobShape, Snapshot, estimate, phase_of

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


def test_live_numbers_with_one_worker():
    tracker = _run(1, 0.05)
    assert tracker.hooked
    _check_live(tracker)


def test_live_numbers_with_two_worker_processes():
    tracker = _run(2, 0.1)  # each worker's half takes ~3 s
    _check_live(tracker)


def _snap(read_bytes: int, docs: int, kept: int, ms: dict[str, int]) -> Snapshot:
    return Snapshot(
        counters={
            ("read.src", "bytes"): read_bytes,
            ("read.src", "documents"): docs,
            ("normalize", "src.in"): kept,
            ("normalize", "src.kept"): kept,
        },
        msecs=ms,
    )


def test_estimate_extrapolates_each_phase_at_its_own_rate():
    shape = JobShape(["read", "normalize"], {"src": 100_000_000})
    # read done (100 docs, 20 s of work), normalize a quarter through (10 s): normalize will
    # need 30 s more; then the tail, its wall-time prior at the speed seen against the priors.
    snap = _snap(100_000_000, 100, 25, {"Read/src": 20_000, "Normalize/Check": 10_000})
    est = estimate(shape, snap, elapsed=32.0, work_started=2.0)
    assert est.phases["read"] == 1.0
    assert est.phases["normalize"] == pytest.approx(0.25)
    prior = progress.PRIOR_MS_PER_MB
    speed = 30_000 / (prior["read"] * 100 + prior["normalize"] * 100 * 0.25)
    tail_s = progress.TAIL_WALL_MS_PER_MB[1] * 100 * speed / 1000
    wall_per_ms = 30.0 / 30_000  # this run's wall seconds per execution ms
    assert est.eta_s == pytest.approx(30_000 * wall_per_ms + tail_s)
    assert est.fraction == pytest.approx(30 / (30 + est.eta_s))
    assert est.docs["normalize"] == (25, 25, 0)


def test_the_tail_counts_down_once_every_stage_is_done():
    shape = JobShape(["read", "normalize"], {"src": 100_000_000}, workers=2)
    snap = _snap(100_000_000, 100, 100, {"Read/src": 20_000, "Normalize/Check": 40_000})
    first = estimate(shape, snap, elapsed=40.0, work_started=2.0)
    assert first.tail_started == 40.0 and first.phases["write"] == 0.0
    later = estimate(shape, snap, elapsed=43.0, work_started=2.0, tail_started=40.0)
    assert later.eta_s == pytest.approx(first.eta_s - 3.0)
    assert 0 < later.phases["write"] < 1
    overdue = estimate(shape, snap, elapsed=400.0, work_started=2.0, tail_started=40.0)
    assert 0 < overdue.eta_s < first.eta_s


def test_no_eta_before_work_is_measured():
    shape = JobShape(["read"], {"src": 1000})
    assert estimate(shape, Snapshot(), 3.0, None).eta_s is None
    assert estimate(shape, _snap(0, 0, 0, {"Read/src": 10}), 3.0, 2.9).eta_s is None


def test_stage_fraction_counts_documents_by_their_source_size():
    # two sources: big books, small articles; one book done is worth many articles
    shape = JobShape(["read", "normalize"], {"books": 9_000, "news": 1_000})
    snap = Snapshot(
        counters={
            ("read.books", "bytes"): 9_000,
            ("read.books", "documents"): 3,
            ("read.news", "bytes"): 1_000,
            ("read.news", "documents"): 10,
            ("normalize", "books.kept"): 1,
            ("normalize", "news.kept"): 8,
            ("normalize", "news.dropped.empty"): 2,
        }
    )
    est = estimate(shape, snap, 10.0, None)
    assert est.phases["normalize"] == pytest.approx((3_000 + 1_000) / 10_000)


def test_transform_labels_map_to_phases():
    stages = ["read", "normalize", "dedup_near"]
    assert phase_of("Read/books", stages) == "read"
    assert phase_of("Spread/books/AddRandomKeys", stages) == "read"
    assert phase_of("Normalize/Apply/Check", stages) == "normalize"
    assert phase_of("Dedup_near/Apply/MinHash", stages) == "dedup_near"
    assert phase_of("WriteDocuments/Write", stages) == "write"
    assert phase_of("TokenizerInfo", stages) == "tokenizer"
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
    est = estimate(shape, _snap(30_000, 30, 10, {"Read/src": 900}), 5.0, 1.0)
    view.show(shape, est)
    view.close()
    text = out.getvalue()
    assert "0.0 / 0.1 MB" in text or "0.0 / 0.1" in text
    assert "normalize" in text and "ETA" in text
