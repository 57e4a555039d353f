"""Partitions of the input: bounded slices of the file list, planned before any work.

The plan depends only on the matched files (sources in config order, files in path order) and
the partition size, never on the worker count: the same inputs give the same partitions, so a
partition's staged outputs are the same whichever worker made them, and a rerun finds the
partitions an earlier run finished. A file larger than the partition size is a partition of
its own (files are not split yet).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from gristmill.transforms.sources.read import MatchedFile

MiB = 1 << 20
# Staged documents, drops and keys take about this share of the input's bytes on disk
# (zstd Parquet of normalized text); the plan asks the output's filesystem for twice that.
STAGING_SHARE = 0.6


@dataclass(frozen=True)
class Partition:
    index: int
    files: tuple[tuple[str, MatchedFile], ...]  # (source name, file)

    @property
    def bytes(self) -> int:
        return sum(f.size for _, f in self.files)

    @property
    def name(self) -> str:
        return f"p{self.index:05d}"

    def by_source(self) -> dict[str, list[MatchedFile]]:
        out: dict[str, list[MatchedFile]] = {}
        for source, f in self.files:
            out.setdefault(source, []).append(f)
        return out


def plan_partitions(files: dict[str, list[MatchedFile]], target_bytes: int) -> list[Partition]:
    """Files packed in order into partitions of at most `target_bytes` (one file at least)."""
    ordered = [(source, f) for source, group in files.items() for f in sorted(group, key=_path)]
    parts: list[list[tuple[str, MatchedFile]]] = []
    size = 0
    for source, f in ordered:
        if not parts or (size + f.size > target_bytes and parts[-1]):
            parts.append([])
            size = 0
        parts[-1].append((source, f))
        size += f.size
    return [Partition(i, tuple(p)) for i, p in enumerate(parts)]


def _path(f: MatchedFile) -> str:
    return f.path


def plan_key(partitions: list[Partition], config_sha256: str) -> str:
    """What a partition's staged outputs depend on: its files (path, size) and the config."""
    listed = [[[s, f.path, f.size] for s, f in p.files] for p in partitions]
    canon = json.dumps({"config": config_sha256, "partitions": listed}, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]


def staging_bytes(input_bytes: int) -> int:
    """Disk the staging area may need at its largest, from the input's size."""
    return int(2 * STAGING_SHARE * input_bytes) + 64 * MiB
