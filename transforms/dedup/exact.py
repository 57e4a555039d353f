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

"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import xxhash

from gristmill.transforms.dedup.joins import JoinOneToMany
from gristmill.transforms.dedup.keyed import keyed
from gristmill.transforms.dedup.params import DedupParams, DedupSettings, dedup_stage, exact_enabled
from gristmill.transforms.dedup.survivors import (
    ApplyVerdicts,
    ApplyVerdictsFromSide,
    ClusterReport,
    detail,
)
from gristmill.transforms.sorted_runs import ShardedTable, ShardSpec
from gristmill.transforms.stage import Cost, Rereads, StageContext

NAME = "dedup_exact"
REASON = "exact_duplicate"
INDEX_SCHEMA = pa.schema([("hash", pa.string()), ("id", pa.string())])


def exact_key(text: str) -> bytes:
    """128-bit key of a text, whitespace-insensitive."""
    return xxhash.xxh3_128_digest(" ".join(text.split()).encode("utf-8", "surrogatepass"))


class ExactKeys(beam.PTransform):
    """documents -> Keyed records whose key is (exact key, rank node)."""

    def __init__(self, params: DedupParams):
        super().__init__()
        self.params = params

    def expand(self, docs):
        node = self.params.node
        return docs | "Key" >> beam.Map(
            lambda d: keyed(d, (exact_key(d.text), node(d.source, d.id)))
        )


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


def _hash_hex(record) -> str:
    return record.key[0].hex()


def _index_row(row: dict) -> tuple[str, str]:
    return row["id"], row["hash"]


def _by_hash(row) -> str:
    return row[1]


def _hash_then_id(row) -> tuple[str, str]:
    return row[1], row[0]


def _index_row_size(row) -> int:  # bytes in memory, for the spill limit
    return 200


def index_spec(params: DedupParams) -> ShardSpec:
    """index/exact: (hash, id) of kept documents, sharded by hash."""
    return ShardSpec(
        "index/exact", params.index_shards, index_table, _index_row, _by_hash, _hash_then_id
    )


def tables(settings: DedupSettings, ctx: StageContext) -> list[ShardSpec]:
    params = DedupParams.from_section(settings, ctx.seed)
    return [index_spec(params)] if params.index else []


class ExactOnKeys(beam.PTransform):
    """Keyed records (ExactKeys) -> (kept records, drops, extras)."""

    def __init__(self, params: DedupParams, ctx: StageContext):
        super().__init__()
        self.params = params
        self.ctx = ctx
        # a local run's phase 2 (keys.py) sets `reread` (stage.py: Rereads)
        self.reread: Rereads | None = None

    def expand(self, keys):
        params = self.params
        members = keys | "Members" >> beam.Map(lambda k: k.key)
        winners = members | "Winner" >> beam.CombinePerKey(_Best())
        verdicts = (
            (winners, members) | "Join" >> JoinOneToMany() | "Verdicts" >> beam.FlatMap(_verdicts)
        )
        if self.reread is not None:
            extra_of = _hash_hex if params.index else None
            out = (self.reread("apply"), verdicts) | "Apply" >> ApplyVerdictsFromSide(
                NAME, REASON, extra_of
            )
            kept_for_report = self.reread("snippets")  # survivors are never dropped
        else:
            joined = (keys, verdicts)
            if params.index:  # the kept documents' hashes ride along to the index
                joined += (members | "HashById" >> beam.Map(lambda kn: (kn[1][1], kn[0].hex())),)
            out = joined | "Apply" >> ApplyVerdicts(NAME, REASON)
            kept_for_report = out.kept
        groups = winners | "Groups" >> beam.FlatMap(
            lambda kw: [("groups", 1)] if kw[1][1] > 1 else []
        )
        report = (out.pairs, kept_for_report, groups) | "Report" >> ClusterReport(
            NAME, params.report_top, {"groups": 0}
        )
        extras = {"report": report}
        if params.index:
            extras["files"] = out.extra | "Index" >> ShardedTable(
                self.ctx.output, self.ctx.spill, index_spec(params), _index_row_size
            )
        return out.kept, out.drops, extras


def keys(settings: DedupSettings, ctx: StageContext) -> beam.PTransform:
    return ExactKeys(DedupParams.from_section(settings, ctx.seed))


def on_keys(settings: DedupSettings, ctx: StageContext) -> beam.PTransform:
    return ExactOnKeys(DedupParams.from_section(settings, ctx.seed), ctx)


STAGE = dedup_stage(
    NAME,
    keys,
    on_keys,
    exact_enabled,
    tables,
    Cost(60, 0.0, 58, 0.0),
    "identical normalized text: one survivor per group",
)
