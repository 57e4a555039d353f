"""What the progress display shows: a log line (CI, cron) or a live terminal panel."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from gristmill.pipelines.progress.estimate import Estimate, JobShape


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


class AbovePanel(logging.Handler):
    """Log records (Beam's warnings among them) printed as lines above the live panel, through
    its console: written straight to the terminal they would land inside the panel and be
    overdrawn at the next refresh."""

    def __init__(self, console: Any, formatter: logging.Formatter | None, level: int):
        super().__init__(level)
        self.console = console
        self.setFormatter(formatter or logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self.console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        except Exception:  # a log line must never stop the job
            self.handleError(record)


def _terminal_handlers(root: logging.Logger, stream: TextIO) -> list[logging.Handler]:
    """The root's handlers that write to the panel's terminal (stderr, stdout or the stream)."""
    streams = {id(stream), id(sys.stderr), id(sys.stdout), id(sys.__stderr__), id(sys.__stdout__)}
    return [
        h
        for h in root.handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and id(getattr(h, "stream", None)) in streams
    ]


class RichView:
    """A live terminal panel: input bar, overall bar with ETA, a row per stage. While it is
    shown, log records and Python warnings go above it as lines (AbovePanel)."""

    def __init__(self, stream: TextIO):
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        root = logging.getLogger()
        self._moved = _terminal_handlers(root, stream)
        first = self._moved[0] if self._moved else None
        self._above = AbovePanel(
            self.console, first.formatter if first else None, first.level if first else 0
        )
        for handler in self._moved:
            root.removeHandler(handler)
        root.addHandler(self._above)
        logging.captureWarnings(True)  # warnings.warn(...) becomes a record, not a raw write
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
            done = est.phases.get(stage, 0.0)
            stages.add_row(stage, f"{inn:,}", f"{kept:,}", f"{dropped:,}", f"{done:.0%}")
        for phase in (p for p in shape.steps if p in est.phases):
            stages.add_row(phase, "", "", "", f"{est.phases[phase]:.0%}")
        self.live.update(Group(head, stages), refresh=True)

    def close(self) -> None:
        self.live.stop()
        root = logging.getLogger()
        root.removeHandler(self._above)
        for handler in self._moved:
            root.addHandler(handler)
        logging.captureWarnings(False)
