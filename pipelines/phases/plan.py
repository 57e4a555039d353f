"""Partitions of the input: bounded slices of the file list, planned before any work.

The plan depends only on the matched files (sources in config order, files in path order) and
the partition size, never on the worker count: the same inputs give the same partitions, so a
partition's staged outputs are the same whichever worker made them, and a rerun finds the
partitions an earlier run finished. A file larger than the partition size is cut into pieces
where its format allows (JSON lines and Parquet, uncompressed: transforms/sources/splits.py),
each read by its own partition; any other is a partition of its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gristmill.transforms.sources.read import MatchedFile
from gristmill.transforms.sources.splits import pieces, splittable

if TYPE_CHECKING:
    from gristmill.pipelines.config import JobConfig

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
        return sum(f.length for _, f in self.files)

    @property
    def name(self) -> str:
        return f"p{self.index:05d}"

    def by_source(self) -> dict[str, list[MatchedFile]]:
        out: dict[str, list[MatchedFile]] = {}
        for source, f in self.files:
            out.setdefault(source, []).append(f)
        return out


def plan_partitions(
    files: dict[str, list[MatchedFile]],
    target_bytes: int,
    can_split: Callable[[str, MatchedFile], bool] | None = None,
) -> list[Partition]:
    """Files packed in order into partitions of at most `target_bytes` (one file at least);
    a larger file that `can_split(source, file)` allows, cut into pieces first."""
    ordered = [
        (source, piece)
        for source, group in files.items()
        for f in sorted(group, key=_path)
        for piece in (
            pieces(f, target_bytes)
            if f.size > target_bytes and can_split and can_split(source, f)
            else [f]
        )
    ]
    parts: list[list[tuple[str, MatchedFile]]] = []
    size = 0
    for source, f in ordered:
        if not parts or (size + f.length > target_bytes and parts[-1]):
            parts.append([])
            size = 0
        parts[-1].append((source, f))
        size += f.length
    return [Partition(i, tuple(p)) for i, p in enumerate(parts)]


def partitions_of(cfg: JobConfig, files: dict[str, list[MatchedFile]]) -> list[Partition]:
    """The job's partitions, its large files cut where their source's format allows."""
    sources = {s.name: s for s in cfg.sources}

    def can_split(source: str, f: MatchedFile) -> bool:
        return splittable(sources[source].kind, sources[source].options, f)

    return plan_partitions(files, int(cfg.section("runner")["partition_bytes"]), can_split)


def _path(f: MatchedFile) -> str:
    return f.path


def plan_key(partitions: list[Partition], config_sha256: str) -> str:
    """What a partition's staged outputs depend on: its files (path, size) and the config."""
    listed = [
        [[s, f.path, f.size, *([f.start, f.end] if f.is_piece else [])] for s, f in p.files]
        for p in partitions
    ]
    canon = json.dumps({"config": config_sha256, "partitions": listed}, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]


def staging_bytes(input_bytes: int) -> int:
    """Disk the staging area may need at its largest, from the input's size."""
    return int(2 * STAGING_SHARE * input_bytes) + 64 * MiB
