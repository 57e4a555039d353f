"""The local profile: Beam's in-process FnApiRunner.

Chosen explicitly, never through the DirectRunner default, which first tries to download the
Prism binary. A local run with several workers does not hand Beam several SDK worker
processes: each worker is a process of its own that runs whole partitions on this runner
(pool.py), so no data moves between processes through Beam's gRPC data plane.
"""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

# glibc keeps freed memory in per-thread arenas; worker processes started with this keep two.
# Read when a process starts: set before starting workers. (Low mmap and trim thresholds were
# tried: 3x the system CPU of phase 1 and 8% more wall time, for the same peak per worker.)
MALLOC_ENV = {"MALLOC_ARENA_MAX": "2"}


def local_runner(extra_args: list[str] | None = None) -> tuple[FnApiRunner, PipelineOptions]:
    """The FnApiRunner in this process, with Beam's own options after ours."""
    args = [
        "--direct_num_workers=1",
        "--direct_running_mode=in_memory",
        "--default_sdk_harness_log_level=WARNING",
        *(extra_args or []),
    ]
    return FnApiRunner(), PipelineOptions(args)
