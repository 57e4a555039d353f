"""Every use of Apache Beam's private internals, in one module, behind one version check.

gristmill is tested with apache-beam TESTED (pyproject pins that minor version). On any other
Beam nothing here patches anything: `check_version` raises BeamInternalsError, and the live
progress falls back to finished bundles only; the job itself never needs these patches.
tests/runners/test_beam_private.py fails on any other version.

What is patched, and why: Beam's FnApiRunner reports a bundle's metrics only when the bundle
ends and drops the progress responses its workers send; the hooks deliver both, with the
runner's plan of fused stages, to the live display (pipelines/progress/metrics.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("gristmill")

TESTED = "2.77"  # the apache-beam minor version these internals were read from
_INSTALL_LOCK = threading.Lock()
_PROGRESS_HOOKED = False


class BeamInternalsError(RuntimeError):
    """This apache-beam is not the one gristmill's local runner was written for."""


def beam_minor() -> str:
    import apache_beam

    return ".".join(apache_beam.__version__.split(".")[:2])


def tested_version() -> bool:
    return beam_minor() == TESTED


def check_version() -> None:
    if not tested_version():
        raise BeamInternalsError(
            f"apache-beam {beam_minor()} is installed; gristmill's local runner is tested with "
            f"{TESTED}.x (pip install 'apache-beam~={TESTED}.0'), or run with one worker"
        )


# ---- live progress from the FnApiRunner ------------------------------------------------------


def _reporting_requester(base: type, event: Callable[..., None]) -> type:
    class ReportingRequester(base):
        """Beam's progress poller, with its responses delivered instead of dropped."""

        def __init__(self, worker_handler, instruction_id, frequency, callback=None):
            def deliver(progress):
                event("in_flight", instruction_id, progress.monitoring_infos)
                if callback is not None:
                    callback(progress)

            super().__init__(worker_handler, instruction_id, frequency, deliver)

    return ReportingRequester


def _runner_hooks(fn_runner: Any, event: Callable[..., None]) -> dict[str, Callable]:
    """Replacements for BundleManager.process_bundle, FnApiRunner.run_stages and
    FnApiRunner._execute_bundle that report to `event` around the originals."""
    base_process = fn_runner.BundleManager.process_bundle
    base_run_stages = fn_runner.FnApiRunner.run_stages
    base_execute = fn_runner.FnApiRunner._execute_bundle

    def process_bundle(self, *args, **kwargs):
        dry_run = kwargs.get("dry_run", args[4] if len(args) > 4 else False)
        event("running", self, True)
        try:
            result, splits = base_process(self, *args, **kwargs)
        finally:
            event("running", self, False)
        if not dry_run:
            event("finished", result.instruction_id, result.process_bundle.monitoring_infos)
        return result, splits

    def run_stages(self, stage_context, stages, *args, **kwargs):
        try:
            plan = {s.name: tuple(t.unique_name for t in s.transforms) for s in stages}
        except AttributeError:  # no plan: the estimate does without
            plan = {}
        event("planned", plan)
        return base_run_stages(self, stage_context, stages, *args, **kwargs)

    def execute_bundle(self, context, bundle_context_manager, *args, **kwargs):
        # the whole execution of a fused stage, with the runner's grouping of its input
        name = getattr(getattr(bundle_context_manager, "stage", None), "name", "")
        event("stage_started", name)
        try:
            return base_execute(self, context, bundle_context_manager, *args, **kwargs)
        finally:
            event("stage_ended", name)

    return {"process": process_bundle, "run_stages": run_stages, "execute": execute_bundle}


def install_progress_hooks(event: Callable[..., None]) -> bool:
    """Patches the FnApiRunner once so that `event(name, *args)` hears of bundles and stages:
    ("in_flight", instruction id, monitoring infos) from a running bundle; ("running", manager,
    bool) around a bundle; ("finished", instruction id, monitoring infos); ("planned", {fused
    stage: transforms}); ("stage_started" | "stage_ended", fused stage). False on another Beam:
    the live display then shows finished work only, and the job is never affected."""
    global _PROGRESS_HOOKED
    if not tested_version():
        return False
    with _INSTALL_LOCK:
        if _PROGRESS_HOOKED:
            return True
        try:
            from apache_beam.runners.portability.fn_api_runner import fn_runner

            requester = _reporting_requester(fn_runner.ProgressRequester, event)
            hooks = _runner_hooks(fn_runner, event)
        except (ImportError, AttributeError):
            return False
        fn_runner.ProgressRequester = requester
        fn_runner.BundleManager.process_bundle = hooks["process"]
        fn_runner.FnApiRunner.run_stages = hooks["run_stages"]
        fn_runner.FnApiRunner._execute_bundle = hooks["execute"]
        _PROGRESS_HOOKED = True
        return True


def embedded_bundle_infos(manager: Any) -> list[tuple[str, Any]]:
    """(instruction id, monitoring infos) of the bundles a BundleManager runs in this process."""
    from apache_beam.runners.portability.fn_api_runner.worker_handlers import (
        EmbeddedWorkerHandler,
    )

    handler = getattr(manager, "_worker_handler", None)
    if not isinstance(handler, EmbeddedWorkerHandler):
        return []
    active = list(handler.bundle_processor_cache.active_bundle_processors.items())
    return [(iid, processor.monitoring_infos()) for iid, (_, processor) in active]


def request_progress(runner: Any, seconds: float) -> None:
    """Worker processes answer progress requests only if the runner sends them; same as
    constructing FnApiRunner(progress_request_frequency=seconds)."""
    if tested_version() and getattr(runner, "_progress_frequency", 0) is None:
        runner._progress_frequency = seconds
