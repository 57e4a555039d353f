"""The SDK worker process of a local run with several workers: Beam's own, with small buffers.

Beam's worker buffers what a bundle outputs in 10 MB messages, queues up to 100 MB of them for
the runner (which on the local runner reads them more slowly than the workers write: it groups
every element in Python), and its send thread joins queued messages into gRPC messages of up to
10 MB, each serialized and copied again by gRPC while it waits to be sent. At 10x the dedup
input those are what grow a worker's memory (bench/dedup_memory.py, memray at the peak). Here
messages are 1 MB and each queue holds 4 MB; the queues only throttle a worker that runs ahead
of the runner, which waits on it anyway. Together with local_transport.py (the runner's side)
a worker holds a bounded amount of data in flight.

    python -m gristmill.runners.local_worker   # started by the FnApiRunner, as its own worker
"""

from __future__ import annotations

import logging
import sys

from gristmill.runners.local_transport import CHUNK_BYTES

MESSAGE_BYTES = CHUNK_BYTES  # the runner's pieces and the workers' messages: one size
SEND_QUEUE_BYTES = 4 << 20


def bound_buffers() -> bool:
    """Smaller output messages and send queue; False (nothing changed) if Beam's data plane is
    not the one this was written for (apache-beam 2.77)."""
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
        return False
    data_plane._DEFAULT_SEND_QUEUE_MAX_BYTES = SEND_QUEUE_BYTES
    # read when the send thread joins queued messages into one gRPC message (up to 10 MB)
    data_plane._DEFAULT_SIZE_FLUSH_THRESHOLD = MESSAGE_BYTES
    for cls, d in zip(streams, defaults, strict=True):
        cls.__init__.__defaults__ = (*d[:2], MESSAGE_BYTES, *d[3:])
    return True


def main(argv: list[str]) -> None:
    from apache_beam.runners.worker import sdk_worker_main

    if not bound_buffers():
        logging.getLogger("gristmill").info("gristmill: worker keeps Beam's data buffers")
    sdk_worker_main.main(argv)


if __name__ == "__main__":
    main(sys.argv)
