"""Peak memory of every process of a running job, read from /proc from outside it (Linux).

VmHWM is each process's own high-water mark, so a 0.2 s sampling period misses no peak of a
process that lives past one sample; roles tell the driver (the runner) from SDK worker processes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

SAMPLE_S = 0.2
# Beam's SDK worker, and the worker processes of a local run (runners/local/pool.py: spawned)
WORKER_MARKS = ("sdk_worker_main", "multiprocessing.spawn import spawn_main")


def role(cmdline: list[str], is_root: bool) -> str:
    if is_root:
        return "driver"
    shell = bool(cmdline) and os.path.basename(cmdline[0]) in ("sh", "bash", "dash")
    line = " ".join(cmdline)
    return "worker" if any(m in line for m in WORKER_MARKS) and not shell else "other"


def tree_pids(root: int) -> set[int]:
    """`root` and every process under it, now."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    pids, frontier = {root}, [root]
    while frontier:
        kids = [p for p, pp in parents.items() if pp in frontier and p not in pids]
        pids.update(kids)
        frontier = kids
    return pids


def _tree(root: int) -> dict[int, tuple[list[str], int]]:
    """pid -> (cmdline, peak bytes so far) for root and its descendants."""
    pids = tree_pids(root)
    out = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        hwm = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:")), "0")
        out[pid] = ([a for a in cmd.split("\0") if a], int(hwm) * 1024)
    return out


class TreeSampler(threading.Thread):
    """Peak memory per process of a running job, sampled from outside it."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.peaks: dict[int, tuple[str, int]] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_S):
            try:
                tree = _tree(self.root)
            except Exception:  # a process ended while being read; the next sample sees the rest
                continue
            for pid, (cmd, peak) in tree.items():
                was, before = self.peaks.get(pid, ("other", 0))
                # an exiting process shows no command line: it keeps the role it had
                now = role(cmd, pid == self.root) if cmd else was
                self.peaks[pid] = (now, max(before, peak))

    def stop(self) -> dict[str, list[float]]:
        """role -> peaks in MB, largest first."""
        self._halt.set()
        self.join()
        out: dict[str, list[float]] = {}
        for r, peak in self.peaks.values():
            out.setdefault(r, []).append(round(peak / 1e6, 1))
        return {r: sorted(v, reverse=True) for r, v in out.items()}
