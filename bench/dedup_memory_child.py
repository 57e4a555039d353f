"""The measured side of bench/dedup_memory.py: one job on one input, in a process of its own.

`python -m bench.dedup_memory --child ...` runs `child` here, so the peaks it prints are this
job's alone: the kernel's high-water marks of this process and of the workers it waited for.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import tempfile
import threading
import time
from pathlib import Path

SAMPLE_SECONDS = 0.1
BUNDLE_LOGGER = "apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle"
STAGE_PREFIX = "Running bundle for stage "


def _status_kib(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (the workers run under a /bin/sh of the runner's)."""
    parent: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        kids = parent.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _stage_name(fused: str) -> str:
    """A fused stage by its first named read (`Near/Apply/ById/Read`) or first transform."""
    parts = re.findall(r"[^()+]+", fused)
    for part in parts:
        if part.endswith("/Read") and not part.startswith("ref_"):
            return part
    named = [p for p in parts if p.startswith("ref_AppliedPTransform_")] or parts or [fused]
    return re.sub(r"^ref_AppliedPTransform_|_\d+$", "", named[0])[:80]


class Sampler(threading.Thread):
    """Worker and runner RSS every SAMPLE_SECONDS, with the stage the runner is running."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stage = "start"
        self.worker_peak = (0, "")
        self.workers: set[int] = set()
        self.done = threading.Event()
        runner = self

        class Stages(logging.Handler):
            def emit(self, record):
                msg = record.getMessage()
                if msg.startswith(STAGE_PREFIX):
                    runner.stage = _stage_name(msg.split("\n")[0][len(STAGE_PREFIX) :])

        log = logging.getLogger(BUNDLE_LOGGER)
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(Stages())

    def run(self):
        while not self.done.wait(SAMPLE_SECONDS):
            for pid in _descendants(os.getpid()):
                kib = _status_kib(pid, "VmRSS:")
                if kib > 50 * 1024:  # a worker, not its /bin/sh
                    self.workers.add(pid)
                if kib > self.worker_peak[0]:
                    self.worker_peak = (kib, self.stage)


def _watch_group_messages() -> list[int]:
    """Sizes of the grouped inputs the runner sends to workers: one message per worker, or
    with the bounded transport one per 1 MB piece."""
    sizes: list[int] = []
    try:
        from apache_beam.runners.portability.fn_api_runner import execution

        original = execution.GroupingBuffer.partition
    except (ImportError, AttributeError):
        return sizes

    def partition(self, n):
        parts = original(self, n)
        sizes.extend(len(b) for part in parts for b in part)
        return parts

    execution.GroupingBuffer.partition = partition
    return sizes


def _pipeline_options(mode: str, workers: int):
    """Beam's own local transport: `workers` SDK worker processes, or one in `in_memory` mode."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(
        [
            f"--direct_num_workers={workers if mode == 'multi_processing' else 1}",
            f"--direct_running_mode={mode}",
            "--default_sdk_harness_log_level=ERROR",
        ]
    )


def _grouping_job(docs, job: str):
    """The jobs with no dedup code, only a GroupByKey: what the transport alone costs."""
    import apache_beam as beam

    if job == "flatten":  # a GroupByKey fed by a Flatten of two stages' outputs
        keyed = docs | "KeyDocs" >> beam.Map(lambda d: (d.id, d))
        ids = (
            docs
            | "Ids" >> beam.Map(lambda d: (d.id, d.id))
            | "GroupIds" >> beam.GroupByKey()
            | "One" >> beam.MapTuple(lambda k, _: (k, k))
        )
        return (keyed, ids) | beam.Flatten() | beam.GroupByKey() | beam.Values()
    return docs | beam.Map(lambda d: (d.id, d)) | beam.GroupByKey() | beam.Values()


def _print_peaks(
    sampler: Sampler, group_sizes: list[int], started: float, kept: int, code: list[str]
) -> None:
    """The run's figures as one JSON line, the last the driver reads."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "runner_kib": _status_kib("self", "VmHWM:"),
                "worker_kib": max(children, sampler.worker_peak[0]),
                "worker_peak_stage": sampler.worker_peak[1],
                "workers": len(sampler.workers),
                "largest_group_msg_kib": max(group_sizes, default=0) // 1024,
                "seconds": round(time.perf_counter() - started, 1),
                "kept": kept,
                "code": code,
            }
        )
    )


def child(path: str, mode: str, job: str, workers: int, transport: str) -> None:
    """Runs one job on one input; prints its peaks as JSON."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    import gristmill.transforms as ours
    from gristmill.schemas.records import Document
    from gristmill.transforms.dedup import exact as dedup_exact
    from gristmill.transforms.dedup import near as minhash
    from gristmill.transforms.dedup.params import defaults
    from gristmill.transforms.stage import StageContext

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    section = defaults()
    section["index"]["enabled"] = False
    options = _pipeline_options(mode, workers)
    counts = Path(path).with_suffix(f".{mode}.{job}.{os.getpid()}.counts")

    def parse(line: str) -> Document:
        row = json.loads(line)
        return Document(row["id"], row["source"], "bench", row["text"])

    def save(n: int) -> None:
        import gristmill.transforms as in_worker  # the code the workers ran

        counts.write_text(json.dumps([n, str(Path(in_worker.__file__).parent)]))

    runner = FnApiRunner()
    if transport == "bounded":  # what `gristmill run --workers N` uses
        from gristmill.runners.local.runner import local_runner

        runner, options = local_runner(workers, ["--default_sdk_harness_log_level=ERROR"])
    sampler = Sampler()
    group_sizes = _watch_group_messages()
    started = time.perf_counter()
    sampler.start()
    with (
        tempfile.TemporaryDirectory() as tmp,
        beam.Pipeline(runner=runner, options=options) as p,
    ):
        docs = p | beam.io.ReadFromText(path) | beam.Map(parse)
        if job in ("flatten", "control"):
            kept = _grouping_job(docs, job)
        else:
            ctx = StageContext("dedup_exact", tmp, 0, {})
            kept, _, _ = docs | "Exact" >> dedup_exact.build(section, ctx)
            ctx = StageContext("dedup_near", tmp, 0, {})
            kept, _, _ = kept | "Near" >> minhash.build(section, ctx)
        kept | beam.combiners.Count.Globally() | beam.Map(save)
    sampler.done.set()
    sampler.join()
    kept_n, worker_code = json.loads(counts.read_text())
    _print_peaks(
        sampler, group_sizes, started, kept_n, [str(Path(ours.__file__).parent), worker_code]
    )
    counts.unlink()
