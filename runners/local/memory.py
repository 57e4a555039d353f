"""A process's peak resident memory, per phase of a run (Linux; None elsewhere), and what a
process that takes work items one after another does to give back what an item freed.

The kernel keeps a high-water mark (VmHWM); writing 5 to /proc/self/clear_refs resets it, so
each phase can report its own peak rather than the largest since the process started.

Between items: pyarrow's default pool (mimalloc) keeps the pages of freed buffers for reuse,
measured ~100 MB per worker after one partition's phase 1 with no buffer alive, and glibc keeps
freed heap pages until `malloc_trim` returns them (~45 MB more). Processes that take items use
the system allocator for Arrow and trim after each item; both are public APIs (pyarrow's
`set_memory_pool`, glibc's `malloc_trim`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from functools import cache
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


@cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def arrow_on_system_allocator() -> None:
    """Arrow buffers from malloc, so what an item frees can go back to the system."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def give_back_freed() -> None:
    """Returns the heap's free pages to the system (glibc; nothing elsewhere)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
