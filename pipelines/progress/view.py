"""What the progress display shows: a log line (CI, cron) or a live terminal panel."""

from __future__ import annotations

from typing import TextIO

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
            done = est.phases.get(stage, 0.0)
            stages.add_row(stage, f"{inn:,}", f"{kept:,}", f"{dropped:,}", f"{done:.0%}")
        for phase in (p for p in shape.steps if p in est.phases):
            stages.add_row(phase, "", "", "", f"{est.phases[phase]:.0%}")
        self.live.update(Group(head, stages), refresh=True)

    def close(self) -> None:
        self.live.stop()
