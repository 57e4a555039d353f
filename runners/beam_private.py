"""Every use of Apache Beam's private internals, in one module, behind one version check.

gristmill is tested with apache-beam TESTED (pyproject pins that minor version). On any other
Beam nothing here patches anything: `check_version` raises BeamInternalsError (a local run with
several workers stops with one line saying so), and the live progress falls back to finished
bundles only. tests/runners/test_beam_private.py fails on any other version.

What is patched, and why:
- the local runner's transport (driver side): Beam's FnApiRunner sends each SDK worker its
  share of a grouped PCollection as one message before the bundle starts, and joins queued
  pieces into gRPC messages of up to 10 MB; here a worker's input goes in CHUNK_BYTES pieces
  at group boundaries, sent while the bundle runs, so a worker's memory does not grow with the
  corpus (bench/dedup_memory.py). With Beam's own transport, several workers at a few hundred
  MB lost elements between stages there (different survivors on every run);
- the SDK worker's buffers (worker side): 1 MB output messages, a 4 MB send queue;
- the runner's progress: Beam reports a bundle's metrics only when it ends and drops the
  progress responses its workers send; the hooks deliver both, with the runner's plan of fused
  stages, to the live display (pipelines/progress/metrics.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("gristmill")

TESTED = "2.77"  # the apache-beam minor version these internals were read from
CHUNK_BYTES = 1 << 20  # worker input pieces, and the largest gRPC data message, both ways
SEND_QUEUE_BYTES = 4 << 20  # an SDK worker's send queue
_INSTALLED: dict[str, Any] = {}
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


# ---- the local runner's transport (driver) ------------------------------------------------


def _chunked_partition(original):
    from apache_beam.coders.coder_impl import create_OutputStream
    from apache_beam.transforms.window import GlobalWindow, GlobalWindows
    from apache_beam.utils.windowed_value import PaneInfo, PaneInfoTiming

    pane = PaneInfo(True, True, PaneInfoTiming.ON_TIME, 0, 0)
    wrap = GlobalWindows.windowed_value(
        None, timestamp=GlobalWindow().max_timestamp(), pane_info=pane
    ).with_value

    def partition(self, n: int) -> list[list[bytes]]:
        # windowed groups need the runner's trigger driver: left as they were
        if self._grouped_output or not self._windowing.is_default():
            return original(self, n)
        coder = self._post_grouped_coder.get_impl()
        key_coder = self._key_coder.get_impl()
        parts: list[list[bytes]] = [[] for _ in range(n)]
        streams = [create_OutputStream() for _ in range(n)]
        for idx, (encoded_key, values) in enumerate(self._table.items()):
            k = idx % n
            coder.encode_to_stream(wrap((key_coder.decode(encoded_key), values)), streams[k], True)
            if streams[k].size() >= CHUNK_BYTES:
                parts[k].append(streams[k].get())
                streams[k] = create_OutputStream()
        for k, stream in enumerate(streams):
            if stream.size() or not parts[k]:
                parts[k].append(stream.get())
        self._table.clear()
        self._grouped_output = parts
        return parts

    return partition


def _pieces(stream: bytes, coder) -> list[bytes]:
    """`stream` in pieces of about CHUNK_BYTES at element boundaries. Worker output arrives in
    pieces of up to 10 MB (the SDK's flush size); a worker fed those would queue five of them."""
    if len(stream) <= 2 * CHUNK_BYTES or coder is None:
        return [stream]
    from apache_beam.coders.coder_impl import create_InputStream, create_OutputStream

    try:
        pieces, source, piece = [], create_InputStream(stream), create_OutputStream()
        while source.size() > 0:
            coder.encode_to_stream(coder.decode_from_stream(source, True), piece, True)
            if piece.size() >= CHUNK_BYTES:
                pieces.append(piece.get())
                piece = create_OutputStream()
        if piece.size():
            pieces.append(piece.get())
        return pieces
    except Exception:  # noqa: BLE001 - bytes its coder cannot re-read go as they came
        log.debug("gristmill: a worker input piece goes whole", exc_info=True)
        return [stream]


def _streamed_send(original):
    from apache_beam.runners.worker.data_plane import _GrpcDataChannel

    def send(self, process_bundle_id: str, read_transform_id: str, byte_streams) -> None:
        streams = list(byte_streams or [])
        conn = self._worker_handler.data_conn
        if not isinstance(conn, _GrpcDataChannel) or sum(map(len, streams)) <= CHUNK_BYTES:
            return original(self, process_bundle_id, read_transform_id, streams)
        try:
            coder = self.bundle_context_manager.get_input_coder_impl(read_transform_id)
        except (AttributeError, KeyError):
            coder = None
        out = conn.output_stream(process_bundle_id, read_transform_id)

        def write_all() -> None:
            try:
                for stream in streams:
                    for piece in _pieces(stream, coder):
                        out.write(piece)
                        out.flush()  # one message per piece: pieces hold whole elements
                out.close()
            except Exception:  # noqa: BLE001 - the channel is gone: so is the worker, and the
                # bundle fails on the control channel; never close with input missing
                log.warning("gristmill: sending a worker its input failed", exc_info=True)

        # the bundle starts while its input is still being sent: the worker takes what it
        # can hold, and the bundle cannot finish before the last message has arrived
        threading.Thread(target=write_all, name="gristmill-send-input", daemon=True).start()

    return send


def install_transport() -> None:
    """Patches the FnApiRunner in this process (once): worker input in CHUNK_BYTES pieces.
    Raises BeamInternalsError if this Beam is not the tested one."""
    check_version()
    if _INSTALLED:
        return
    try:
        from apache_beam.runners.portability.fn_api_runner import execution, fn_runner
        from apache_beam.runners.worker import data_plane

        grouping = execution.GroupingBuffer
        manager = fn_runner.BundleManager
        probe = grouping.__init__.__code__.co_names
        if not all(
            name in probe
            for name in (
                "_table",
                "_windowing",
                "_grouped_output",
                "_key_coder",
                "_post_grouped_coder",
            )
        ) or not hasattr(manager, "_send_input_to_worker"):
            raise AttributeError("GroupingBuffer or BundleManager changed")
        # the size up to which a data channel joins queued pieces into one gRPC message
        stock_message = data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD
        partition = _chunked_partition(grouping.partition)
        send = _streamed_send(manager._send_input_to_worker)
    except (ImportError, AttributeError) as err:
        # Beam's own transport: worker memory grows with the input, and in bench/dedup_memory.py
        # at 214 MB it lost elements between stages (different survivors on every run)
        raise BeamInternalsError(
            f"the local runner's transport cannot be installed ({err})"
        ) from None
    _INSTALLED["partition"] = grouping.partition
    _INSTALLED["send"] = manager._send_input_to_worker
    _INSTALLED["message"] = stock_message
    grouping.partition = partition
    manager._send_input_to_worker = send
    data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD = CHUNK_BYTES


def uninstall_transport() -> None:
    """Back to the runner's own transport (tests and benchmarks compare the two)."""
    if not _INSTALLED:
        return
    from apache_beam.runners.portability.fn_api_runner import execution, fn_runner
    from apache_beam.runners.worker import data_plane

    execution.GroupingBuffer.partition = _INSTALLED.pop("partition")
    fn_runner.BundleManager._send_input_to_worker = _INSTALLED.pop("send")
    data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD = _INSTALLED.pop("message")


# ---- the SDK worker's buffers ----------------------------------------------------------------


def bound_worker_buffers() -> None:
    """In an SDK worker process: 1 MB output messages and a 4 MB send queue (Beam's: 10 MB
    messages, 100 MB queued), so a worker holds a bounded amount of data in flight."""
    check_version()
    from apache_beam.runners.worker import data_plane

    streams = (
        data_plane.SizeBasedBufferingClosableOutputStream,
        data_plane.TimeBasedBufferingClosableOutputStream,
    )
    defaults = [cls.__init__.__defaults__ for cls in streams]
    names = [cls.__init__.__code__.co_varnames for cls in streams]
    constants = ("_DEFAULT_SEND_QUEUE_MAX_BYTES", "_DEFAULT_SIZE_FLUSH_THRESHOLD")
    if not all(hasattr(data_plane, name) for name in constants) or any(
        n[3] != "size_flush_threshold" or d is None or len(d) < 3
        for n, d in zip(names, defaults, strict=True)
    ):
        raise BeamInternalsError("the SDK worker's data buffers are not the tested ones")
    data_plane._DEFAULT_SEND_QUEUE_MAX_BYTES = SEND_QUEUE_BYTES
    # read when the send thread joins queued messages into one gRPC message (up to 10 MB)
    data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD = CHUNK_BYTES
    for cls, d in zip(streams, defaults, strict=True):
        cls.__init__.__defaults__ = (*d[:2], CHUNK_BYTES, *d[3:])


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
