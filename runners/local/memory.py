"""A process's peak resident memory, per phase of a run (Linux; None elsewhere).

The kernel keeps a high-water mark (VmHWM); writing 5 to /proc/self/clear_refs resets it, so
each phase can report its own peak rather than the largest since the process started.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

STATUS, CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        CLEAR.write_text("5")


def peak_mb() -> float | None:
    """This process's peak resident MB since the last reset_peak (or its start)."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except OSError:
        return None
    return None
