"""bench/dedup_memory.py's check that every run of a job on one input kept the same documents."""

from __future__ import annotations

from bench import dedup_memory


def _row(transport: str, size: str, kept: int, job: str = "dedup") -> dict:
    return {
        "tree": "current",
        "malloc": "trimmed",
        "transport": transport,
        "job": job,
        "input": size,
        "kept": kept,
    }


def test_runs_that_kept_different_documents_are_named():
    rows = [
        _row("bounded", "1x", 2000),
        _row("stock", "1x", 2000),
        _row("bounded", "30x", 19641),
        _row("stock", "30x", 21378),
        _row("bounded", "30x", 60000, job="control"),
        _row("stock", "30x", 60000, job="control"),
    ]
    assert dedup_memory._disagreements(rows) == [
        "kept differs, dedup 30x: 19641 by current/trimmed/bounded; 21378 by current/trimmed/stock"
    ]


def test_agreeing_runs_say_nothing():
    rows = [_row("bounded", "10x", 6888), _row("stock", "10x", 6888)]
    assert dedup_memory._disagreements(rows) == []
