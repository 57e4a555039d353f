"""A time budget per record, checked inside the parsers' own loops (no threads, no signals).

A reader starts the clock on each record (`with budget.record(): ...`); the parsers call
`check()` in their loops (wikitext rendering and its pre-pass, MIME parts, WARC framing, ...),
which raises RecordTimeout once the record has used its budget. The reader turns that into a
dead letter `record_timeout` and goes on with the next record. Work done inside one C call
(an XML or HTML parser) cannot be interrupted this way, so the inputs that made those calls
superlinear are cut to linear-time forms first (see wikitext.py); `record()` also reports a
record that overran its budget inside such a call, so it is a dead letter all the same.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

DEFAULT_RECORD_SECONDS = 20.0
_CURRENT: contextvars.ContextVar[float] = contextvars.ContextVar("record_deadline", default=0.0)


class RecordTimeout(Exception):
    """A record used up its time budget (read.record_seconds)."""


def check() -> None:
    """Raise RecordTimeout if the record being parsed is past its deadline (cheap otherwise)."""
    deadline = _CURRENT.get()
    if deadline and time.monotonic() > deadline:
        raise RecordTimeout("record passed its time budget (read.record_seconds)")


@dataclass
class Budget:
    """Seconds one record may take to parse; 0 means no budget."""

    seconds: float = DEFAULT_RECORD_SECONDS
    timeouts: int = field(default=0, compare=False)

    @contextmanager
    def record(self) -> Iterator[None]:
        """The block parses one record: checks inside it raise once the budget is spent, and
        a block that overran inside a call that could not check raises at its end."""
        if self.seconds <= 0:
            yield
            return
        start = time.monotonic()
        token = _CURRENT.set(start + self.seconds)
        try:
            yield
        except RecordTimeout:
            self.timeouts += 1
            raise
        finally:
            _CURRENT.reset(token)
        if time.monotonic() - start > self.seconds:
            self.timeouts += 1
            raise RecordTimeout("record passed its time budget inside the parser")

    def detail(self) -> str:
        return f"parsing took longer than {self.seconds:g} s (read.record_seconds)"
