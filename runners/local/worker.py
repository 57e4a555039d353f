"""The SDK worker process of a local run with several workers: Beam's own, with small buffers.

Beam's worker buffers what a bundle outputs in 10 MB messages, queues up to 100 MB of them for
the runner (which on the local runner reads them more slowly than the workers write: it groups
every element in Python), and its send thread joins queued messages into gRPC messages of up to
10 MB. Here messages are 1 MB and each queue holds 4 MB (runners/beam_private.py); the queues
only throttle a worker that runs ahead of the runner, which waits on it anyway.

    python -m gristmill.runners.local.worker   # started by the FnApiRunner, as its own worker
"""

from __future__ import annotations

import sys

from gristmill.runners.beam_private import bound_worker_buffers


def main(argv: list[str]) -> None:
    from apache_beam.runners.worker import sdk_worker_main

    bound_worker_buffers()  # the driver checked the version before starting this worker
    sdk_worker_main.main(argv)


if __name__ == "__main__":
    main(sys.argv)
