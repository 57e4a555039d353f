"""The dedup index of earlier releases, as a refresh reads it.

A release's `index/` holds its kept documents' exact hashes (`index/exact-*`, written by
dedup_exact) and MinHash signatures and band buckets (`index/signatures-*`, `index/bands-*`,
written by dedup_near, with the signing parameters in the Parquet schema metadata). A refresh
compares new documents with the index of its parent and of every release the parent descends
from (the parent manifest's `refresh.lineage`), so a chain of refreshes never re-admits what an
older release already holds. Index rows are tagged with their release's place in the lineage
(0 = the parent), so a new document's match names where the older copy lives.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.transforms.sinks import parquet_file

MANIFEST = "manifest.json"
MINHASH_META = b"gristmill.minhash"
EXACT, BANDS, SIGNATURES = "index/exact-", "index/bands-", "index/signatures-"


class ParentIndexError(ValueError):
    """An earlier release cannot serve as a dedup index (named in the message)."""


def read_manifest(root: str) -> dict[str, Any]:
    path = posixpath.join(root, MANIFEST)
    if not FileSystems.exists(path):
        raise ParentIndexError(f"{root}: no {MANIFEST}, so not a finished release")
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        try:
            return json.loads(fh.read().decode("utf-8"))
        except ValueError as err:
            raise ParentIndexError(f"{path}: not valid JSON ({err})") from None


def lineage(parent: str, manifest: dict[str, Any]) -> list[str]:
    """The parent's root, then the roots of the releases it was refreshed from, nearest first."""
    older = (manifest.get("refresh") or {}).get("lineage") or []
    return [parent, *[r for r in older if r != parent]]


def minhash_meta(path: str) -> dict[str, Any]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        meta = pq.read_schema(fh).metadata or {}
    if MINHASH_META not in meta:
        raise ParentIndexError(f"{path}: no {MINHASH_META.decode()} schema metadata")
    return json.loads(meta[MINHASH_META])


@dataclass(frozen=True)
class NearIndex:
    """One release's MinHash index: its files and the parameters its signatures were made with."""

    release: int
    meta: dict[str, Any]
    bands: tuple[str, ...]
    signatures: tuple[str, ...]


@dataclass(frozen=True)
class Lineage:
    roots: tuple[str, ...]  # parent first
    manifests: tuple[dict[str, Any], ...]  # of each root
    exact: tuple[tuple[int, str], ...]  # (release, file)
    near: tuple[NearIndex, ...]

    def near_groups(self) -> list[tuple[dict[str, Any], list[NearIndex]]]:
        """Releases grouped by signing parameters: each group is compared in one pass."""
        groups: dict[str, tuple[dict[str, Any], list[NearIndex]]] = {}
        for near in self.near:
            key = json.dumps(near.meta, sort_keys=True)
            groups.setdefault(key, (near.meta, []))[1].append(near)
        return [groups[k] for k in sorted(groups)]


def _files(root: str, manifest: dict[str, Any], prefix: str) -> list[str]:
    """The index files the manifest lists; one that is gone is named now, not mid-job."""
    paths = sorted(
        posixpath.join(root, o["path"])
        for o in manifest.get("outputs", [])
        if o["path"].startswith(prefix)
    )
    for path in paths:
        if not FileSystems.exists(path):
            raise ParentIndexError(f"{path}: missing (listed in {MANIFEST})")
    return paths


def load_lineage(parent: str) -> Lineage:
    """Reads the manifests of the parent and its ancestors; raises ParentIndexError when one is
    missing or none of them holds an index."""
    first = read_manifest(parent)
    roots = lineage(parent, first)
    manifests = [first, *(read_manifest(root) for root in roots[1:])]
    exact: list[tuple[int, str]] = []
    near: list[NearIndex] = []
    for k, (root, manifest) in enumerate(zip(roots, manifests, strict=True)):
        exact.extend((k, f) for f in _files(root, manifest, EXACT))
        bands = _files(root, manifest, BANDS)
        if bands:
            near.append(
                NearIndex(
                    k,
                    minhash_meta(bands[0]),
                    tuple(bands),
                    tuple(_files(root, manifest, SIGNATURES)),
                )
            )
    if not exact and not near:
        raise ParentIndexError(
            f"{parent}: no dedup index (index/ is written when dedup.index.enabled is true)"
        )
    return Lineage(tuple(roots), tuple(manifests), tuple(exact), tuple(near))


class ReadIndexRows(beam.DoFn):
    """(release, Parquet file) -> its rows as tuples of `columns`, prefixed by the release,
    a record batch at a time (an index file is never loaded whole)."""

    def __init__(self, columns: tuple[str, ...]):
        self.columns = columns

    def process(self, item: tuple[int, str]) -> Iterator[tuple]:
        release, path = item
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for batch in parquet_file(fh).iter_batches(columns=list(self.columns)):
                cols = [batch.column(c).to_pylist() for c in self.columns]
                for row in zip(*cols, strict=True):
                    yield (release, *row)
