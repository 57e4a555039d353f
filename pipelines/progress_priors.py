"""What each phase of a run costs before it has run: the ETA's priors (progress_estimate.py)."""

from __future__ import annotations

# Prior wall cost of each phase's work: (ms per MB reaching it, fixed seconds), for one worker
# and for several. Only their ratios matter: the run's own speed scales them. Fitted by
# bench/progress_fit.py from bench/progress.py runs on the quiet machine (the whole corpus, and
# SOTU + books copied to 106 MB, where dedup leaves a fifth: that separates the fixed costs of
# the phases after dedup, such as its clustering rounds and loading the PII recognizers). With
# several workers the phases before dedup run in parallel and the runner's grouping does not,
# which shifts the ratios. Reading is priced per source kind: HTML and mail cost ten times
# plain text.
PRIORS: dict[int, dict[str, tuple[float, float]]] = {
    1: {
        "read/articles": (34, 0.0),
        "read/books": (106, 0.0),
        "read/mail": (389, 0.0),
        "read/web": (880, 0.0),
        "read/wiki": (466, 0.0),
        "read": (80, 0.0),  # a source of another name: as plain text
        "normalize": (79, 0.0),
        "langid": (42, 0.0),
        "quality": (96, 0.0),
        "dedup_exact": (60, 0.0),
        "dedup_near": (137, 12.1),
        "pii": (136, 3.2),
        "tokenizer": (343, 2.0),
        "mlm": (210, 4.0),
        "write": (74, 0.0),
    },
    2: {
        "read/articles": (70, 0.0),
        "read/books": (48, 0.0),
        "read/mail": (219, 0.0),
        "read/web": (480, 0.0),
        "read/wiki": (417, 0.0),
        "read": (60, 0.0),
        "normalize": (42, 0.0),
        "langid": (24, 0.0),
        "quality": (84, 0.0),
        "dedup_exact": (58, 0.0),
        "dedup_near": (144, 12.2),
        "pii": (74, 2.8),
        "tokenizer": (360, 3.0),
        "mlm": (101, 10.2),
        "write": (157, 0.0),
    },
}
DEFAULT_PRIOR = (80.0, 0.0)


def priors_for(workers: int) -> dict[str, tuple[float, float]]:
    """The table for this many workers: one, or several (fitted on two)."""
    return PRIORS[1 if workers <= 1 else 2]
