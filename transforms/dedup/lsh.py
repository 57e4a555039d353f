"""LSH for near dedup: band keys of a signature, candidate edges from the buckets of documents
that agree on a band, and their verification by estimated Jaccard.

Each document emits one (band, bucket) key per band; a bucket's members become candidate edges
(components.BucketEdges: all pairs, or a star past `max_bucket_size`, so a bucket's fan-out is
bounded by its size, never squared past the limit); an edge found in several bands is kept once.
Verification meets each edge with its endpoints' sketches in two joins keyed by id
(components.AttachEndpoints) and keeps the edges whose estimated Jaccard reaches the threshold.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from gristmill.transforms.dedup import sketch_store
from gristmill.transforms.dedup.joins import AttachEndpoints
from gristmill.transforms.dedup.shingles import SHINGLE_BASE, fmix64
from gristmill.transforms.dedup.signer import jaccard, sketch_jaccard

BAND_BASE = 0xC2B2AE3D27D4EB4F


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 [n, bands]: a hash of each band's rows (salted by band number)."""
    s = sig[:, : bands * rows].reshape(len(sig), bands, rows).astype(np.uint64)
    acc = s[:, :, 0].copy()
    base = np.uint64(BAND_BASE)
    for k in range(1, rows):
        acc *= base
        acc += s[:, :, k]
    acc ^= np.arange(1, bands + 1, dtype=np.uint64) * np.uint64(SHINGLE_BASE)
    return fmix64(acc)


def band_key(band: int, bucket: int) -> bytes:
    """The shuffle key of one bucket: band number and bucket hash, big-endian."""
    return struct.pack(">HQ", band, bucket)


def band_rows(bands: int, rows: int) -> Callable[[tuple[str, bytes]], list[tuple[int, int, str]]]:
    """(id, signature bytes) -> its (band, bucket, id) rows of the index/bands files."""

    def expand(kept):
        doc_id, sig = kept
        keys = band_keys(np.frombuffer(sig, dtype=np.uint32)[None, :], bands, rows)[0]
        return [(band, int(bucket), doc_id) for band, bucket in enumerate(keys.tolist())]

    return expand


class CandidatePairs(beam.PTransform):
    """(band key, node) -> distinct candidate edges (a, b), a < b."""

    def __init__(self, stage: str, max_bucket_size: int):
        super().__init__()
        self.stage = stage
        self.max_bucket_size = max_bucket_size

    def expand(self, bands):
        return (
            bands
            | "Buckets" >> beam.GroupByKey()
            | "Candidates" >> beam.ParDo(BucketEdges(self.stage, self.max_bucket_size))
            | "Unique" >> beam.Distinct()
        )


def scorer(verify_k: int) -> Callable[[tuple], tuple[Any, Any, float]]:
    """Estimated Jaccard of an edge from its endpoints' sketches (or MinHash signatures)."""

    def score(edge):
        a, b, x, y = edge
        return a, b, sketch_jaccard(x, y, verify_k) if verify_k else jaccard(x, y)

    return score


class _Verified(beam.DoFn):
    def __init__(self, stage: str, threshold: float):
        self.stage = stage
        self.threshold = threshold

    def setup(self):
        self.kept = Metrics.counter(self.stage, "_all.pairs_verified")
        self.rejected = Metrics.counter(self.stage, "_all.pairs_rejected")

    def process(self, scored):
        a, b, j = scored
        if j >= self.threshold:
            self.kept.inc()
            yield a, b
        else:
            self.rejected.inc()


class Scored(beam.PTransform):
    """(edges (a, b), (id, sketch) of their nodes) -> (a, b, estimated Jaccard). The sketches
    meet the edges in two joins keyed by id (AttachEndpoints), or, `by_side`, the second input
    is the paths of files sketch_store.WriteSketches wrote, a side input (`_ScoreFromStore`):
    for an in-process runner, which holds every join's groups in memory, where the process
    holds the candidates' sketches once."""

    def __init__(self, stage: str, verify_k: int, by_side: bool = False):
        super().__init__()
        self.stage = stage
        self.verify_k = verify_k
        self.by_side = by_side

    def expand(self, pcolls):
        edges, sketches = pcolls
        if self.by_side:
            return edges | "Score" >> beam.ParDo(
                _ScoreFromStore(self.stage, self.verify_k), beam.pvalue.AsList(sketches)
            )
        return (
            (edges, sketches)
            | "Attach" >> AttachEndpoints(self.stage, lambda n: n[1])
            | "Score" >> beam.Map(scorer(self.verify_k))
        )


class VerifiedPairs(beam.PTransform):
    """(candidate edges, (id, sketch) of their nodes) -> the edges whose estimated Jaccard
    reaches `threshold` (scored as `Scored` does); counted `_all.pairs_verified` and
    `_all.pairs_rejected`."""

    def __init__(self, stage: str, threshold: float, verify_k: int, by_side: bool = False):
        super().__init__()
        self.stage = stage
        self.threshold = threshold
        self.verify_k = verify_k
        self.by_side = by_side

    def expand(self, pcolls):
        return (
            pcolls
            | "Scored" >> Scored(self.stage, self.verify_k, self.by_side)
            | "Verify" >> beam.ParDo(_Verified(self.stage, self.threshold))
        )


class _ScoreFromStore(beam.DoFn):
    """An edge (a, b) and the sketches' files (a side input, sketch_store) -> (a, b, estimated
    Jaccard); an edge whose endpoint has no sketch is counted (`_all.edge_without_value`) and
    left out."""

    def __init__(self, stage: str, verify_k: int):
        self.stage = stage
        self.score = scorer(verify_k)

    def setup(self):
        self.missing = Metrics.counter(self.stage, "_all.edge_without_value")
        self.sketches = None

    def process(self, edge, paths):
        if self.sketches is None:  # held until this DoFn goes: the other step shares it
            self.sketches = sketch_store.shared(paths)
        sketches = self.sketches
        a, b = edge
        x, y = sketches.get(a[1]), sketches.get(b[1])
        if x is None or y is None:
            self.missing.inc()
            return
        yield self.score((a, b, x, y))


class BucketEdges(beam.DoFn):
    """(LSH bucket, member nodes) -> candidate edges (a, b), a < b.

    A bucket of at most `max_size` members gives every pair; a larger one gives a star from its
    smallest member to every other, found in one streaming pass and emitted in a second, so a
    bucket of 100,000 identical documents costs 99,999 edges and no list. Counted per bucket:
    `_all.buckets_pairs`, `_all.buckets_star`."""

    def __init__(self, stage: str, max_size: int):
        self.stage = stage
        self.max_size = max_size

    def setup(self):
        self.pairs = Metrics.counter(self.stage, "_all.buckets_pairs")
        self.star = Metrics.counter(self.stage, "_all.buckets_star")

    def process(self, keyed):
        _, members = keyed
        smallest, n, held = None, 0, []
        for v in members:
            n += 1
            if smallest is None or v < smallest:
                smallest = v
            if n <= self.max_size:
                held.append(v)
            elif held:
                held = []
        if n < 2:
            return
        if n <= self.max_size:
            self.pairs.inc()
            nodes = sorted(set(held))
            for i, a in enumerate(nodes):
                for b in nodes[i + 1 :]:
                    yield a, b
            return
        self.star.inc()
        for v in members:
            if v != smallest:
                yield smallest, v
