"""The local profile: Beam's in-process FnApiRunner, one process or several.

Chosen explicitly, never through the DirectRunner default, which first tries to download the
Prism binary. With workers > 1 the FnApiRunner starts that many SDK worker processes, as its
`multi_processing` mode does, but each runs `python -m gristmill.runners.local.worker` (Beam's
worker with small data buffers) and the runner streams their input in 1 MB pieces
(runners/beam_private.py): what a worker holds in flight is then bounded, whatever the input size.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import sys
import tempfile

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.environments import SubprocessSDKEnvironment

from gristmill.runners import beam_private

MALLOC_ENV = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": "65536",
    "MALLOC_TRIM_THRESHOLD_": "65536",
}


WORKER_COMMAND = f"{sys.executable} -m gristmill.runners.local.worker"


class _OwnWorkers(logging.Filter):
    """The FnApiRunner warns that several workers want `direct_running_mode=multi_processing`;
    that mode would replace our worker command with Beam's, and the workers are processes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "direct_running_mode" not in record.getMessage()


_OWN_WORKERS = _OwnWorkers()


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def local_runner(
    workers: int, extra_args: list[str] | None = None
) -> tuple[FnApiRunner, PipelineOptions]:
    if workers < 1:
        raise ValueError(f"runner.workers must be at least 1, got {workers}")
    if workers > 1 and "PIPELINE_OPTIONS_FILE" not in os.environ:
        # Worker processes take their log level only from this file (the FnApiRunner passes
        # them no options); without it each logs its gRPC set-up at INFO on our stderr.
        fd, path = tempfile.mkstemp(prefix="gristmill-worker-options-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump({"options": {"default_sdk_harness_log_level": "WARNING"}}, fh)
        os.environ["PIPELINE_OPTIONS_FILE"] = path
        atexit.register(_remove, path)  # one file per driver process, gone when it exits
    if workers > 1:
        # glibc keeps freed memory in per-thread arenas; the SDK worker processes inherit these
        # and give memory back between stages (bench/dedup_memory.py: worker peak at 10x input
        # 895 -> 557 MB)
        for key, value in MALLOC_ENV.items():
            os.environ.setdefault(key, value)
        # input in 1 MB pieces, sent while the bundle runs; small buffers in the workers
        beam_private.install_transport()  # BeamInternalsError on an untested Beam
        logging.getLogger(FnApiRunner.__module__).addFilter(_OWN_WORKERS)
    args = [
        f"--direct_num_workers={workers}",
        "--direct_running_mode=in_memory",  # one worker: in this process; more: WORKER_COMMAND
        "--default_sdk_harness_log_level=WARNING",
        *(extra_args or []),
    ]
    if workers == 1:
        return FnApiRunner(), PipelineOptions(args)
    own = SubprocessSDKEnvironment.from_command_string(command_string=WORKER_COMMAND)
    return FnApiRunner(default_environment=own), PipelineOptions(args)
