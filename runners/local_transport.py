"""Worker input in bounded pieces on the local runner, so a worker does not hold its whole share.

Beam's FnApiRunner hands each SDK worker its share of a grouped PCollection (the output of a
GroupByKey, which holds every document at a dedup join) as one byte string, and sends it whole
before the bundle starts: the worker holds its entire share in its gRPC buffers while it works,
so its memory grows with the corpus (bench/dedup_memory.py). Dataflow, Flink and Spark stream a
bundle's input instead. `install()` makes the local runner do the same, in the driver only:

- a grouped share is cut into messages of about CHUNK_BYTES at group boundaries (same groups to
  the same workers, in the same order as before);
- a worker's input larger than one chunk is written from a thread while the bundle runs, one
  message per chunk (pieces other workers wrote, up to 10 MB each, are cut the same way); the
  worker's data channel takes at most five messages at a time, so that is what it holds,
  whatever the input size;
- the runner's data channel sends those pieces as they are: Beam joins queued pieces into gRPC
  messages of up to 10 MB, which the worker would receive and hold whole.

Written against apache-beam 2.77: if the runner's internals differ, it changes nothing and says
so in the log.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("gristmill")

CHUNK_BYTES = 1 << 20  # also the largest gRPC data message, both ways (local_worker.py)
_INSTALLED: dict[str, Any] = {}


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


def install() -> bool:
    """Patches the FnApiRunner in this process (once); False if its internals are not the
    ones this was written for."""
    if _INSTALLED:
        return True
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
        log.warning(
            "gristmill: this apache-beam's local runner internals are not the ones gristmill's "
            "transport was written for (%s); several workers use Beam's own, whose results "
            "at a few hundred MB were not reproducible here: run with one worker to be safe",
            err,
        )
        return False
    _INSTALLED["partition"] = grouping.partition
    _INSTALLED["send"] = manager._send_input_to_worker
    _INSTALLED["message"] = stock_message
    grouping.partition = partition
    manager._send_input_to_worker = send
    data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD = CHUNK_BYTES
    return True


def uninstall() -> None:
    """Back to the runner's own transport (tests and benchmarks compare the two)."""
    if not _INSTALLED:
        return
    from apache_beam.runners.portability.fn_api_runner import execution, fn_runner
    from apache_beam.runners.worker import data_plane

    execution.GroupingBuffer.partition = _INSTALLED.pop("partition")
    fn_runner.BundleManager._send_input_to_worker = _INSTALLED.pop("send")
    data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD = _INSTALLED.pop("message")
