"""What each phase of a run costs before it has run: the ETA's priors (estimate.py).

A stage's prior is its registry entry's `cost` (transforms/stage.py); the phases that are no
stage are here: reading, priced per source kind (HTML and mail cost ten times plain text), and
the final writes. Only ratios matter: the run's own speed scales them. Fitted by
bench/progress_fit.py from bench/progress.py runs on the quiet machine (the whole corpus, and
SOTU + books copied to 106 MB, where dedup leaves a fifth: that separates fixed costs from
per-MB ones). With several workers the phases before dedup run in parallel and the runner's
grouping does not, which shifts the ratios.
"""

from __future__ import annotations

from gristmill.pipelines import registry

# (ms per MB reaching the phase, fixed seconds) for one worker and for several
OWN: dict[int, dict[str, tuple[float, float]]] = {
    1: {
        "read/articles": (34, 0.0),
        "read/books": (106, 0.0),
        "read/mail": (389, 0.0),
        "read/web": (880, 0.0),
        "read/wiki": (466, 0.0),
        "read": (80, 0.0),  # a source of another name: as plain text
        "write": (74, 0.0),
    },
    2: {
        "read/articles": (70, 0.0),
        "read/books": (48, 0.0),
        "read/mail": (219, 0.0),
        "read/web": (480, 0.0),
        "read/wiki": (417, 0.0),
        "read": (60, 0.0),
        "write": (157, 0.0),
    },
}
DEFAULT_PRIOR = (80.0, 0.0)


def priors_for(workers: int) -> dict[str, tuple[float, float]]:
    """The table for this many workers: one, or several (fitted on two)."""
    table = dict(OWN[1 if workers <= 1 else 2])
    for stage in registry.stages():
        table[stage.name] = stage.cost.for_workers(workers)
    return table
