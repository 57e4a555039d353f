"""The SDK worker process of a local run with several workers: Beam's own, with small buffers.

Beam's worker buffers what a bundle outputs in 10 MB messages and queues up to 100 MB of them
for the runner, which on the local runner reads them more slowly than the workers write (it
groups every element in Python). At 10x the dedup input that queue is what grows a worker's
memory (bench/dedup_memory.py). Here messages are 1 MB and the queue holds 8 MB; the queue only
throttles a worker that runs ahead of the runner, which waits on it anyway. Together with
local_transport.py (the runner's side) a worker holds a bounded amount of data in flight.

    python -m gristmill.runners.local_worker   # started by the FnApiRunner, as its own worker
"""

from __future__ import annotations

import logging
import sys

MESSAGE_BYTES = 1 << 20
SEND_QUEUE_BYTES = 8 << 20


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
    if not hasattr(data_plane, "_DEFAULT_SEND_QUEUE_MAX_BYTES") or any(
        n[3] != "size_flush_threshold" or d is None or len(d) < 3
        for n, d in zip(names, defaults, strict=True)
    ):
        return False
    data_plane._DEFAULT_SEND_QUEUE_MAX_BYTES = SEND_QUEUE_BYTES
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
