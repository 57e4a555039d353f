"""Exact dedup (stage "dedup_exact"): documents whose normalized text is identical.

The key is xxh3-128 of the text with every whitespace run made one space and the ends stripped
(the normalize stage has already applied NFC, mojibake repair and control-character rules).
One survivor per key: the smallest rank key (see dedup_params). Every other member is a Drop
`exact_duplicate` with `survivor=<id>` in its detail.

Memory: documents are never grouped by key. The winner per key is a CombinePerKey over small
(rank key, count) accumulators, combined before the shuffle; each member's rank key then meets
its key's single winner in a join whose member side is streamed (JoinOneToMany), and the verdicts
reach the documents through a join keyed by document id (a group of one document). So 100,000
identical documents cost one accumulator per worker and bundle, never a list of 100,000 texts.
Kept documents' keys go to `index/exact-*.parquet` (hash, id) for later runs.

On a local run a sample of the documents is counted under their key in `dedup_exact.sample`
while the input is still being read: the progress ETA needs the share that will survive long
before the verdicts exist (progress_estimate.flow). A document is in the sample if its key,
read as a fraction of the key space, is below its length times `sample_per_char`: every copy
of a text is in or out together, a document's chance grows with its length, so each sampled
document stands for the same number of bytes and distinct keys over sampled documents is the
share of the bytes exact dedup keeps. About SAMPLE_DOCS documents, whatever their sizes.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import pyarrow as pa
import xxhash

from gristmill.transforms import dedup_params
from gristmill.transforms.accounting import StageContext
from gristmill.transforms.components import JoinOneToMany
from gristmill.transforms.dedup_params import DedupParams
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.survivors import ApplyVerdicts, ClusterReport, detail

STAGE = "dedup_exact"
SECTION = dedup_params.SECTION
DEFAULTS = dedup_params.DEFAULTS
validate = dedup_params.validate
REASON = "exact_duplicate"
SAMPLE_NS = f"{STAGE}.sample"  # counter names: "<source>.<key prefix hex>"
SAMPLE_DOCS = 2000  # documents to sample, whatever their sizes
INDEX_SCHEMA = pa.schema([("hash", pa.string()), ("id", pa.string())])


def enabled(section: dict[str, Any]) -> bool:
    return dedup_params.exact_enabled(section)


def exact_key(text: str) -> bytes:
    """128-bit key of a text, whitespace-insensitive."""
    return xxhash.xxh3_128_digest(" ".join(text.split()).encode("utf-8", "surrogatepass"))


def sample_per_char(input_bytes: int) -> float:
    """Sampled documents per character of text, for about SAMPLE_DOCS from this input."""
    return SAMPLE_DOCS / max(input_bytes, 1)


class _Key(beam.DoFn):
    """document -> (exact key, rank node); counts the sampled keys."""

    def __init__(self, params: DedupParams, per_char: float):
        self.params = params
        self.per_char_of_keys = per_char * 2**64  # the key's first 8 bytes, as a number

    def process(self, doc):
        key = exact_key(doc.text)
        head = int.from_bytes(key[:8], "big")
        if self.per_char_of_keys and head < len(doc.text) * self.per_char_of_keys:
            beam.metrics.Metrics.counter(SAMPLE_NS, f"{doc.source}.{key[:8].hex()}").inc()
        yield key, self.params.node(doc.source, doc.id)


class _Best(beam.CombineFn):
    """(smallest node, members) of one key."""

    def create_accumulator(self):
        return (None, 0)

    def add_input(self, acc, node):
        best, n = acc
        return (node if best is None or node < best else best, n + 1)

    def merge_accumulators(self, accs):
        best, n = None, 0
        for b, k in accs:
            n += k
            if b is not None and (best is None or b < best):
                best = b
        return best, n

    def extract_output(self, acc):
        return acc


def _verdicts(joined):
    _, winner, node = joined
    best, _ = winner
    if node != best:
        yield node[1], (best[1], detail(survivor=best[1]))


def index_table(rows: list[tuple[str, str]]) -> pa.Table:
    """(id, hash hex) rows -> the index table."""
    return pa.Table.from_pylist([{"hash": h, "id": i} for i, h in rows], schema=INDEX_SCHEMA)


class ExactDedup(beam.PTransform):
    def __init__(self, params: DedupParams, ctx: StageContext):
        super().__init__()
        self.params = params
        self.ctx = ctx

    def expand(self, docs):
        params = self.params
        members = docs | "Key" >> beam.ParDo(_Key(params, self.ctx.sample_per_char))
        winners = members | "Winner" >> beam.CombinePerKey(_Best())
        verdicts = (
            (winners, members) | "Join" >> JoinOneToMany() | "Verdicts" >> beam.FlatMap(_verdicts)
        )
        joined = (docs, verdicts)
        if params.index:  # the kept documents' hashes ride along to the index
            joined += (members | "HashById" >> beam.Map(lambda kn: (kn[1][1], kn[0].hex())),)
        out = joined | "Apply" >> ApplyVerdicts(STAGE, REASON)
        groups = winners | "Groups" >> beam.FlatMap(
            lambda kw: [("groups", 1)] if kw[1][1] > 1 else []
        )
        report = (out.pairs, out.kept, groups) | "Report" >> ClusterReport(
            STAGE, params.report_top, {"groups": 0}
        )
        extras = {"report": report}
        if params.index:
            extras["files"] = out.extra | "Index" >> WriteShardedParquet(
                self.ctx.output,
                "index/exact",
                params.index_shards,
                index_table,
                lambda row: row[1],
                lambda row: (row[1], row[0]),
            )
        return out.kept, out.drops, extras


def build(section: dict[str, Any], ctx: StageContext) -> beam.PTransform:
    return ExactDedup(DedupParams.from_section(section, ctx.seed), ctx)
