"""How a job is run: named profiles mapped to a Beam runner and its options."""

from __future__ import annotations

from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineRunner

PROFILES = ("local",)


def runner_for(profile: dict[str, Any]) -> tuple[PipelineRunner, PipelineOptions]:
    name = profile.get("profile", "local")
    if name == "local":
        from gristmill.runners.local import local_runner

        return local_runner(int(profile.get("workers", 1)))
    raise ValueError(f"runner.profile: unknown profile {name!r} (known: {', '.join(PROFILES)})")
