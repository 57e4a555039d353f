"""The local job in phases: planned partitions, per-partition pipelines, staged outputs."""
