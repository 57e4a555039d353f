"""The train / validation split: whole documents, drawn by a seeded hash of the id.

A document goes to validation when its hash is under a threshold, so it never feeds both
splits and the draw does not depend on the runner. Drawn by document count alone (the
`validation_fraction`), a small corpus gets no validation at all and a corpus of few long
documents gets a handful of rows; so the threshold is raised, in hash order, until validation
holds `validation_min_share` of the tokens (and at least one document), and never so far that
train is left without a document. What that takes is read from a histogram of tokens over
hash buckets: a fixed-size Combine, so no process holds a key per document.
"""

from __future__ import annotations

import math
from typing import Any

import apache_beam as beam
import numpy as np
import xxhash

from gristmill.transforms.accounting import SourceCounters

BUCKET_BITS = 14
BUCKETS = 1 << BUCKET_BITS
SHIFT = 64 - BUCKET_BITS
TRAIN, VALIDATION = "train", "validation"


def split_score(seed: int, doc_id: str) -> int:
    """The document's place in the draw: a 64-bit hash of (seed, id)."""
    return xxhash.xxh64_intdigest(f"split\x00{seed}\x00{doc_id}".encode())


def fraction_threshold(validation_fraction: float) -> int:
    """The threshold that `validation_fraction` alone gives (score < it: validation)."""
    return math.ceil(validation_fraction * 2.0**64) if validation_fraction > 0 else 0


def split_of(seed: int, doc_id: str, threshold: int) -> str:
    return VALIDATION if split_score(seed, doc_id) < threshold else TRAIN


def plan_threshold(
    tokens: np.ndarray, docs: np.ndarray, validation_fraction: float, min_share: float
) -> int:
    """The score threshold from per-bucket token and document counts (documents with tokens).

    At least `validation_fraction` by hash; raised to the first bucket boundary below which
    `min_share` of the tokens (at least one token) lie; lowered to the last bucket that holds
    a document, so train keeps one. 0 when there is no validation split."""
    if validation_fraction <= 0:
        return 0
    threshold = fraction_threshold(validation_fraction)
    total = int(tokens.sum())
    filled = np.flatnonzero(docs)
    if total == 0 or not len(filled):
        return threshold
    need = max(1, math.ceil(min_share * total))
    reach = int(np.searchsorted(np.cumsum(tokens), need))  # first bucket that reaches `need`
    threshold = max(threshold, (reach + 1) << SHIFT)
    return min(threshold, int(filled[-1]) << SHIFT)


class BucketHistogram(beam.CombineFn):
    """(bucket, tokens) -> (tokens per bucket, documents with tokens per bucket)."""

    def create_accumulator(self):
        return np.zeros(BUCKETS, np.int64), np.zeros(BUCKETS, np.int64)

    def add_input(self, acc, item):
        bucket, n = item
        if n:
            acc[0][bucket] += n
            acc[1][bucket] += 1
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        return sum(a[0] for a in accs), sum(a[1] for a in accs)

    def extract_output(self, acc):
        return acc


class AssignSplit(beam.DoFn):
    """EncodedDoc -> (split, EncodedDoc), by the planned threshold; counted per source."""

    def __init__(self, seed: int, stage: str):
        self.seed = seed
        self.stage = stage

    def setup(self):
        self._counters = SourceCounters(self.stage)

    def process(self, doc, threshold: int):
        split = split_of(self.seed, doc.id, threshold)
        self._counters.inc(doc.source, split)
        yield split, doc


class SplitDocs(beam.PTransform):
    """EncodedDoc -> (split, EncodedDoc), and the threshold (a singleton) for the report."""

    def __init__(self, seed: int, section: dict[str, Any], stage: str):
        super().__init__()
        self.seed = seed
        self.fraction = float(section["validation_fraction"])
        self.min_share = float(section["validation_min_share"])
        self.stage = stage

    def expand(self, encoded):
        seed, fraction, min_share = self.seed, self.fraction, self.min_share
        threshold = (
            encoded
            | "Buckets" >> beam.Map(lambda d: (split_score(seed, d.id) >> SHIFT, len(d.ids)))
            | "Histogram" >> beam.CombineGlobally(BucketHistogram())
            | "Threshold" >> beam.Map(lambda h: plan_threshold(h[0], h[1], fraction, min_share))
        )
        split = encoded | "Assign" >> beam.ParDo(
            AssignSplit(seed, self.stage), beam.pvalue.AsSingleton(threshold)
        )
        return split, threshold


def validation_report(
    totals: dict[str, tuple], threshold: int, fraction: float, min_share: float
) -> dict:
    """The validation split's share of tokens, and a warning when it is not what was asked;
    `threshold` tells which documents it holds: `split_of(seed, id, threshold)`."""
    tokens = {split: int(t[0]) for split, t in totals.items()}
    docs = {split: int(t[1]) for split, t in totals.items()}
    total = sum(tokens.values())
    held = tokens.get(VALIDATION, 0)
    share = held / total if total else 0.0
    warning = None
    if fraction > 0 and not docs.get(VALIDATION):
        warning = (
            f"no validation split: {docs.get(TRAIN, 0)} document(s) with tokens, too few to "
            "draw one without leaving train empty"
        )
    elif fraction > 0 and share < min_share:
        warning = (
            f"the validation split holds {share:.2%} of the tokens, under "
            f"mlm.validation_min_share ({min_share:.2%}): the documents are too few or too "
            "long to split finer (train keeps at least one)"
        )
    return {
        "tokens": held,
        "documents": docs.get(VALIDATION, 0),
        "share": round(share, 6),
        "min_share": min_share,
        "validation_fraction": fraction,
        "threshold": threshold,
        "warning": warning,
    }
