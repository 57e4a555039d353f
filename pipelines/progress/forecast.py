"""The time a local run should take, before it starts: `gristmill run --dry-run`'s estimate.

The live ETA (estimate.py) scales its priors by the speed it measures; before the run there is
nothing measured, so this is the priors at the speed they were fitted at (the quiet 2-core
bench machine), every stage assumed to see all of the input, plus the fixed start of a run
(imports and models in the driver and each worker: about 10 s of the 28 s a 0.2 MB job took). A
rough figure, for planning: once running, the live display corrects it.
"""

from __future__ import annotations

from gristmill.pipelines.progress.estimate import TAIL, JobShape
from gristmill.pipelines.progress.priors import DEFAULT_PRIOR, priors_for

START_S = 10.0  # a run's fixed start: imports, langid and PII models, the runner


def forecast(shape: JobShape, kinds: dict[str, str] | None = None) -> dict[str, float]:
    """Phase -> expected wall seconds (reading per source, priced by its kind; each stage and
    step; the writes; `start`); their sum is the estimate."""
    kinds = kinds or {}
    priors = priors_for(shape.workers)
    mb = shape.total_bytes / 1e6
    out = {"start": START_S}
    for source, nbytes in shape.source_bytes.items():
        ms, fixed = priors.get(f"read/{kinds.get(source, source)}") or priors.get(
            "read", DEFAULT_PRIOR
        )
        out[f"read/{source}"] = ms * nbytes / 1e9 + fixed
    for phase in [*shape.stages[1:], *shape.steps, TAIL]:
        ms, fixed = priors.get(phase, DEFAULT_PRIOR)
        out[phase] = ms * mb / 1000 + fixed
    return {k: round(v, 2) for k, v in out.items()}


def forecast_seconds(shape: JobShape, kinds: dict[str, str] | None = None) -> float:
    return round(sum(forecast(shape, kinds).values()), 1)
