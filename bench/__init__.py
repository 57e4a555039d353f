"""`make bench`: the project's benchmarks, run as `python -m bench.NAME` from the repository root."""
