"""The ETA's priors, fitted from runs that bench/progress.py saved.

    python -m bench.progress_fit RUNS.json [RUNS.json ...]

For each worker count: a phase's wall seconds of work (less the runner's per-stage overhead) over
the run's speed is modelled as `fixed + per_mb * MB reaching the phase`. The speed of a run is
its work in the phases before dedup over what the fitted per-MB figures of those phases predict
(so the machine's speed and load cancel out, as in the live estimator). The phases before dedup
see every input byte, so they get a per-MB figure only; the phases after it see what dedup
leaves, which differs between the inputs (the whole corpus keeps most of its bytes, the
replicated one a fifth), and that separates a fixed cost (model loading, the dedup rounds,
vocabulary merges) from the per-MB one. Prints the table pipelines/progress_priors.py holds.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EARLY = ("normalize", "langid", "quality", "dedup_exact")
LATE = ("dedup_near", "pii", "tokenizer", "mlm", "write")


def phase_work(run: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """phase -> (MB reaching it, wall seconds of work) at the end of the run."""
    from gristmill.pipelines.progress.estimate import JobShape, flow

    shape = JobShape(run["stages"], run["source_bytes"], run["workers"])
    raw = run["updates"][-1]["snapshot"]["counters"]
    counters = {tuple(k.split("|", 1)): v for k, v in raw.items()}
    mb = flow(shape, counters).mb  # type: ignore[arg-type]
    return {
        p: (mb[p], per_mb * mb[p] / 1000)
        for p, per_mb in run["work_ms_per_mb"].items()
        if p in mb and mb[p] > 0
    }


def fit(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """phase -> {"ms_per_mb", "fixed_s"} for runs of one worker count."""
    works = [phase_work(r) for r in runs]
    out: dict[str, dict[str, float]] = {}
    for p in EARLY:  # geometric mean of ms per MB: the reference every speed is measured by
        rates = [w[p][1] * 1000 / w[p][0] for w in works if p in w]
        out[p] = {"ms_per_mb": math.exp(sum(map(math.log, rates)) / len(rates)), "fixed_s": 0.0}
    speeds = []
    for w in works:
        done = [p for p in EARLY if p in w]
        want = sum(out[p]["ms_per_mb"] * w[p][0] / 1000 for p in done)
        speeds.append(sum(w[p][1] for p in done) / want)
    reads = sorted({p for w in works for p in w if p.startswith("read/")})
    for p in reads:  # per MB read, at the run's speed: HTML and mail cost more than plain text
        rates = [w[p][1] * 1000 / w[p][0] / s for w, s in zip(works, speeds, strict=True) if p in w]
        out[p] = {"ms_per_mb": math.exp(sum(map(math.log, rates)) / len(rates)), "fixed_s": 0.0}
    for p in LATE:
        points = [(w[p][0], w[p][1] / s) for w, s in zip(works, speeds, strict=True) if p in w]
        if len(points) < 2 or abs(points[0][0] - points[-1][0]) < 1.0:
            rate = sum(y for _, y in points) * 1000 / sum(x for x, _ in points)
            out[p] = {"ms_per_mb": rate, "fixed_s": 0.0}
            continue
        (x0, y0), (x1, y1) = min(points), max(points)
        per_mb = max((y1 - y0) / (x1 - x0), 0.0)
        fixed = max(y0 - per_mb * x0, 0.0)
        out[p] = {"ms_per_mb": per_mb * 1000, "fixed_s": fixed}
    return out


def main(argv: list[str]) -> dict[int, dict[str, dict[str, float]]]:
    runs = [r for f in argv for r in json.loads(Path(f).read_text())["runs"]]
    by_workers: dict[int, list[dict[str, Any]]] = {}
    for r in runs:
        by_workers.setdefault(r["workers"], []).append(r)
    table = {w: fit(rs) for w, rs in sorted(by_workers.items())}
    for w, phases in table.items():
        print(f"workers {w} ({len(by_workers[w])} runs)")
        for p, v in phases.items():
            print(f"  {p:14s} {v['ms_per_mb']:8.1f} ms/MB  + {v['fixed_s']:6.2f} s")
    print("\nas progress_priors.PRIORS (ms per MB, fixed s):")
    for w, phases in table.items():
        cells = ", ".join(
            f'"{p}": ({v["ms_per_mb"]:.0f}, {v["fixed_s"]:.1f})' for p, v in phases.items()
        )
        print(f"    {w}: {{{cells}}},")
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
