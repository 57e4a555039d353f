"""How a job is run: named profiles mapped to a Beam runner and its options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gristmill.runners.profiles import PROFILES, RUNNER_DEFAULTS, ProfileError, check_profile

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import PipelineRunner

__all__ = [
    "PROFILES",
    "RUNNER_DEFAULTS",
    "ProfileError",
    "check_profile",
    "is_local",
    "runner_for",
]


def is_local(section: dict[str, Any]) -> bool:
    """In-process FnApiRunner: the only runner whose live metrics the progress display reads."""
    return section["profile"] == "local"


def runner_for(section: dict[str, Any]) -> tuple[PipelineRunner | None, PipelineOptions]:
    """(runner, options) for a validated runner section. None as runner: Beam picks it from
    the options (--runner=...)."""
    check_profile(section)
    if is_local(section):
        from gristmill.runners.local.runner import local_runner

        return local_runner([str(a) for a in section.get("args", [])])
    from apache_beam.options.pipeline_options import PipelineOptions

    from gristmill.runners.packaging import build_wheel
    from gristmill.runners.profiles import beam_args, reachable

    if section["profile"] == "portable":
        reachable(section["job_endpoint"])
    packages = [build_wheel()] if section.get("package") == "wheel" else []
    return None, PipelineOptions(beam_args(section, packages))
