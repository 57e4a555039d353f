"""Local work items: this process takes its share beside the worker processes, every item runs
once, the first error stops the run, and workers import Beam without pandas."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from gristmill.runners.local.pool import run_items


def where(payload: float, item: int) -> tuple[int, int, bool, bool]:
    """A work item (resolved by name in the workers): which process ran it, and what it had
    imported."""
    time.sleep(payload)
    return item, os.getpid(), "pandas" in sys.modules, "apache_beam" in sys.modules


def fails_on(payload: int, item: int) -> int:
    if item == payload:
        raise ValueError(f"item {item} failed")
    time.sleep(0.05)
    return item


def _run(target: str, payload, items, workers: int, isolate: bool = False) -> dict:
    seen: dict = {}

    def done(item, result):
        assert item not in seen
        seen[item] = result

    run_items(f"{__name__}:{target}", payload, items, workers, done, isolate=isolate)
    return seen


def test_this_process_and_a_worker_share_the_items():
    seen = _run("where", 0.4, range(10), workers=2)
    assert sorted(seen) == list(range(10))
    pids = {pid for _, pid, _, _ in seen.values()}
    assert os.getpid() in pids and len(pids) == 2  # one worker process beside this one
    for _, pid, pandas, beam in seen.values():
        if pid != os.getpid():
            assert beam and not pandas  # runners/lean.py ran before the payload was unpickled


def test_one_worker_runs_here_and_isolate_runs_elsewhere():
    here = _run("where", 0.0, range(3), workers=1)
    assert {pid for _, pid, _, _ in here.values()} == {os.getpid()}
    away = _run("where", 0.0, range(3), workers=1, isolate=True)
    pids = {pid for _, pid, _, _ in away.values()}
    assert len(pids) == 1 and os.getpid() not in pids


@pytest.mark.parametrize("workers", [1, 2])
def test_an_item_that_fails_stops_the_run_with_its_error(workers):
    with pytest.raises(ValueError, match="item 3 failed"):
        _run("fails_on", 3, range(40), workers=workers)


def arrow_pool(payload: None, item: int) -> tuple[int, str | None]:
    return os.getpid(), os.environ.get("ARROW_DEFAULT_MEMORY_POOL")


def test_a_worker_takes_arrow_memory_from_the_system_allocator(monkeypatch):
    # the variable Arrow reads when pyarrow loads (pyarrow's default_memory_pool() in a worker
    # shows the pool set_memory_pool set afterwards, not the one Arrow's own readers use)
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    seen = _run("arrow_pool", None, range(2), workers=1, isolate=True)
    assert {pool for pid, pool in seen.values() if pid != os.getpid()} == {"system"}


POOL_AFTER_MAIN = """
import sys
from gristmill.pipelines.cli import main
try:
    main(["--version"])
except SystemExit:
    pass
import pyarrow as pa
print(pa.default_memory_pool().backend_name)
"""


@pytest.mark.parametrize("chosen,expected", [(None, "system"), ("jemalloc", "jemalloc")])
def test_the_command_line_puts_arrow_on_the_system_allocator_unless_told(chosen, expected):
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    cmd = [sys.executable, "-c", POOL_AFTER_MAIN]
    got = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert got.stdout.split()[-1] == expected


def test_no_items():
    assert _run("where", 0.0, [], workers=2) == {}
    assert _run("where", 0.0, [], workers=2, isolate=True) == {}


LEAN = """
import sys
from gristmill.runners.lean import import_beam
import_beam()
import apache_beam as beam
import pyarrow as pa
from gristmill.runners.local.runner import local_runner
runner, options = local_runner()
with beam.Pipeline(runner=runner, options=options) as p:
    _ = p | beam.Create([1, 2]) | beam.Map(lambda x: x + 1)
table = pa.table({"a": ["x", "y"]})
print("pandas" in sys.modules)
import pandas
print(table.to_pandas()["a"].tolist())
"""


def test_a_pipeline_process_runs_without_pandas_until_asked_for_it():
    got = subprocess.run([sys.executable, "-c", LEAN], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr[-3000:]
    assert got.stdout.split("\n")[:2] == ["False", "['x', 'y']"]


def test_a_failing_done_stops_the_run():
    seen = []

    def done(item, result):
        seen.append(item)
        if len(seen) == 2:
            raise RuntimeError("done failed")

    with pytest.raises(RuntimeError, match="done failed"):
        run_items(f"{__name__}:fails_on", -1, range(40), 2, done)
    assert len(seen) < 10  # the rest were not taken
