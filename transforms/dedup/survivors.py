"""What the dedup stages share: applying verdicts to documents, the report of what was removed,
and the tables of the release's index/ files.

A verdict is `(doc_id, (survivor_id, detail))` for a document that leaves the flow. Verdicts
reach their documents through one Beam join keyed by document id, so a group holds one document
and at most one verdict, however large the group of duplicates was.
"""

from __future__ import annotations

import json
import re

import apache_beam as beam
import pyarrow as pa

from gristmill.schemas.records import Drop
from gristmill.transforms.accounting import SourceCounters
from gristmill.transforms.dedup.params import DedupParams
from gristmill.transforms.sorted_runs import ShardSpec

DOC, VERDICT, EXTRA = 0, 1, 2
SNIPPET_CHARS = 80
_MASKS = (
    (re.compile(r"\S+@\S+"), "<email>"),
    (re.compile(r"(?:https?://|www\.)\S+"), "<url>"),
    (re.compile(r"\d[\d\s().+-]{5,}\d"), "<number>"),
)


def snippet(text: str) -> str:
    """The start of a text for the report, whitespace collapsed; email addresses, URLs and long
    digit runs are masked (dedup runs before PII scrubbing)."""
    short = " ".join(text[: SNIPPET_CHARS * 4].split())
    for pattern, mask in _MASKS:
        short = pattern.sub(mask, short)
    return short[:SNIPPET_CHARS]


def _tag(tag: int):
    return lambda kv: (kv[0], (tag, kv[1]))


class _Apply(beam.DoFn):
    """(id, [documents, verdicts, extra]) -> the documents, kept or dropped. The group is read in
    two streaming passes, never listed: a source that repeats an id puts every copy in one group.
    """

    def __init__(self, stage: str, reason: str):
        self.stage = stage
        self.reason = reason
        self._counters = SourceCounters(stage)

    def process(self, keyed):
        doc_id, values = keyed
        verdict, extra, has_doc = None, None, False
        for tag, value in values:  # pass 1: the verdict; documents wait for pass 2, unlisted
            if tag == DOC:
                has_doc = True
            elif tag == VERDICT:
                verdict = value if verdict is None else min(verdict, value)
            else:
                extra = value
        if not has_doc:
            self._counters.inc("_all", "verdict_without_document")
            return
        for tag, doc in values:
            if tag != DOC:
                continue
            if verdict is None:
                self._counters.inc(doc.source, "unique")
                yield doc
                if extra is not None:
                    yield beam.pvalue.TaggedOutput("extra", (doc_id, extra))
            else:
                survivor, detail = verdict
                self._counters.inc(doc.source, self.reason)
                drop = Drop(doc.id, doc.source, self.stage, self.reason, detail, doc.url_or_path)
                yield beam.pvalue.TaggedOutput("drops", drop)
                yield beam.pvalue.TaggedOutput("pairs", (survivor, (doc.id, doc.source)))


class ApplyVerdicts(beam.PTransform):
    """(docs, verdicts[, extras keyed by id]) -> outputs kept (main), drops, pairs
    ((survivor_id, (member_id, source)) per drop) and extra ((id, value) of kept documents)."""

    def __init__(self, stage: str, reason: str):
        super().__init__()
        self.stage = stage
        self.reason = reason

    def expand(self, pcolls):
        docs, verdicts, *extras = pcolls
        parts = [
            docs | "KeyDocs" >> beam.Map(lambda d: (d.id, (DOC, d))),
            verdicts | "TagVerdicts" >> beam.Map(_tag(VERDICT)),
        ]
        if extras:
            parts.append(extras[0] | "TagExtras" >> beam.Map(_tag(EXTRA)))
        return (
            parts
            | "Flatten" >> beam.Flatten()
            | "ById" >> beam.GroupByKey()
            | "Apply"
            >> beam.ParDo(_Apply(self.stage, self.reason)).with_outputs(
                "drops", "pairs", "extra", main="kept"
            )
        )


class _ApplyFromSide(beam.DoFn):
    """A record and the verdicts by id (a side input) -> kept, or dropped as _Apply does."""

    def __init__(self, stage: str, reason: str, extra_of):
        self.stage = stage
        self.reason = reason
        self.extra_of = extra_of
        self._counters = SourceCounters(stage)

    def process(self, doc, verdicts):
        verdict = verdicts.get(doc.id)
        if verdict is None:
            self._counters.inc(doc.source, "unique")
            yield doc
            extra = None if self.extra_of is None else self.extra_of(doc)
            if extra is not None:
                yield beam.pvalue.TaggedOutput("extra", (doc.id, extra))
            return
        survivor, detail = verdict
        self._counters.inc(doc.source, self.reason)
        yield beam.pvalue.TaggedOutput(
            "drops", Drop(doc.id, doc.source, self.stage, self.reason, detail, doc.url_or_path)
        )
        yield beam.pvalue.TaggedOutput("pairs", (survivor, (doc.id, doc.source)))


class ApplyVerdictsFromSide(beam.PTransform):
    """ApplyVerdicts with the verdicts as a side input (the smallest per id, as there) and the
    records streamed past it: memory holds the verdicts (the duplicates), never the records.
    For an in-process runner, whose shuffles are held in memory; on a distributed runner the
    join (ApplyVerdicts) spills where a side input would be sent to every worker.
    `extra_of(record)`: the value of the "extra" output for a kept record (None: none)."""

    def __init__(self, stage: str, reason: str, extra_of=None):
        super().__init__()
        self.stage = stage
        self.reason = reason
        self.extra_of = extra_of

    def expand(self, pcolls):
        docs, verdicts = pcolls
        smallest = verdicts | "Smallest" >> beam.CombinePerKey(min)
        return docs | "Apply" >> beam.ParDo(
            _ApplyFromSide(self.stage, self.reason, self.extra_of), beam.pvalue.AsDict(smallest)
        ).with_outputs("drops", "pairs", "extra", main="kept")


class _Cluster(beam.CombineFn):
    """One survivor's group: (members removed, their count per source, 5 smallest member ids)."""

    def create_accumulator(self):
        return (0, {}, ())

    def add_input(self, acc, member):
        member_id, source = member
        return self.merge_accumulators([acc, (1, {source: 1}, (member_id,))])

    def merge_accumulators(self, accs):
        n, by_source, sample = 0, {}, set()
        for count, sources, ids in accs:
            n += count
            for source, k in sources.items():
                by_source[source] = by_source.get(source, 0) + k
            sample.update(ids)
        return n, by_source, tuple(sorted(sample)[:5])

    def extract_output(self, acc):
        return acc


def size_bin(size: int) -> str:
    """Histogram bins: 2, 3-4, 5-8, 9-16, ..."""
    if size <= 2:
        return "2"
    hi = 1 << (size - 1).bit_length()
    return f"{hi // 2 + 1}-{hi}"


def _add(counts: dict, key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


class _Summary(beam.CombineFn):
    """Clusters ("cluster", survivor, (n, by_source, sample)) and counts ("count", key, n) ->
    removed per source, size histogram, the `top` largest clusters, summed counts."""

    def __init__(self, top: int):
        self.top = top

    def create_accumulator(self):
        return {"removed": {}, "hist": {}, "top": [], "counts": {}}

    def add_input(self, acc, item):
        kind, key, value = item
        if kind == "count":
            _add(acc["counts"], key, value)
            return acc
        n, by_source, sample = value
        for source, k in by_source.items():
            _add(acc["removed"], source, k)
        _add(acc["hist"], size_bin(n + 1), 1)
        acc["top"] = sorted([*acc["top"], (-(n + 1), key, sample)])[: self.top]
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for acc in accs:
            for part in ("removed", "hist", "counts"):
                for key, n in acc[part].items():
                    _add(out[part], key, n)
            out["top"].extend(acc["top"])
        out["top"] = sorted(out["top"])[: self.top]
        return out

    def extract_output(self, acc):
        return acc


class _Snippets(beam.DoFn):
    """The masked snippets of the largest clusters' survivors (kept `Keyed` records)."""

    def process(self, kept, summary):
        if any(kept.id == survivor for _, survivor, _ in summary["top"]):
            yield kept.id, kept.snippet


def _assemble(_, stage, summary, snippets, static):
    texts = dict(snippets)
    hist = summary["hist"]
    largest = [
        {"survivor": s, "size": -neg, "members": list(sample), "snippet": texts.get(s, "")}
        for neg, s, sample in summary["top"]
    ]
    rows = {
        "removed_by_source": dict(sorted(summary["removed"].items())),
        "cluster_sizes": {k: hist[k] for k in sorted(hist, key=lambda b: int(b.split("-")[0]))},
        "largest_clusters": largest,
        **static,
        **summary["counts"],
    }
    for key, value in rows.items():
        yield stage, key, value


class ClusterReport(beam.PTransform):
    """(pairs, kept docs[, (key, n) counts]) -> report rows: removed_by_source, cluster_sizes
    (histogram of group sizes, survivor included), largest_clusters (survivor, size, up to 5
    member ids, snippet), one row per item of `static`, and the summed counts."""

    def __init__(self, stage: str, top: int, static: dict | None = None):
        super().__init__()
        self.stage = stage
        self.top = top
        self.static = dict(static or {})

    def expand(self, pcolls):
        pairs, kept, *counts = pcolls
        clusters = (
            pairs
            | "Clusters" >> beam.CombinePerKey(_Cluster())
            | "AsItems" >> beam.MapTuple(lambda survivor, c: ("cluster", survivor, c))
        )
        if counts:
            counts = [counts[0] | "AsCounts" >> beam.MapTuple(lambda k, n: ("count", k, n))]
        summary = (
            [clusters, *counts]
            | "All" >> beam.Flatten()
            | "Summary" >> (beam.CombineGlobally(_Summary(self.top)))
        )
        snippets = kept | "Snippets" >> beam.ParDo(_Snippets(), beam.pvalue.AsSingleton(summary))
        return (
            kept.pipeline
            | "Once" >> beam.Create([None])
            | "Assemble"
            >> beam.FlatMap(
                _assemble,
                self.stage,
                beam.pvalue.AsSingleton(summary),
                beam.pvalue.AsList(snippets),
                self.static,
            )
        )


def detail(**fields) -> str:
    """A drop detail as compact `key=value` pairs, in the order given."""
    return " ".join(f"{k}={v}" for k, v in fields.items())


# ---- the index/ files of a release (for later runs) -------------------------------------------


def index_meta(params: DedupParams) -> dict[bytes, bytes]:
    """What a later run needs to make comparable signatures and bands (Parquet schema metadata
    `gristmill.minhash`); band buckets are `minhash_lsh.band_keys` of the signature."""
    near = params.near
    meta = {
        "scheme": "gristmill-minhash-1 (datasketch affine32 permutations)",
        "num_perm": near.num_perm,
        "seed": params.seed,
        "ngram": near.ngram,
        "char_ngram": near.char_ngram,
        "char_ngram_langs": list(near.char_ngram_langs),
        "char_ngram_script_share": near.char_ngram_script_share,
        "bands": near.bands,
        "rows": near.rows,
        "threshold": params.threshold,
    }
    return {b"gristmill.minhash": json.dumps(meta, sort_keys=True).encode()}


def bands_table(meta: dict[bytes, bytes]):
    schema = pa.schema([("band", pa.int16()), ("bucket", pa.uint64()), ("id", pa.string())])

    def to_table(rows: list[tuple[int, int, str]]) -> pa.Table:
        cols = list(zip(*rows, strict=True)) if rows else [[], [], []]
        return pa.table(cols, schema=schema).replace_schema_metadata(meta)

    return to_table


def _band_row(row: dict) -> tuple[int, int, str]:
    return row["band"], row["bucket"], row["id"]


def _sig_row(row: dict) -> tuple[str, bytes]:
    return row["id"], row["signature"]


def _first(row):
    return row[0]


def _band_shard(row) -> str:
    return f"{row[0]}:{row[1]}"


def _whole(row):
    return row


def index_specs(params: DedupParams) -> list[ShardSpec]:
    """Near dedup's index tables: signatures (id, signature) by id, bands (band, bucket, id)
    by bucket."""
    meta, n = index_meta(params), params.index_shards
    return [
        ShardSpec("index/signatures", n, signatures_table(meta), _sig_row, _first, _first),
        ShardSpec("index/bands", n, bands_table(meta), _band_row, _band_shard, _whole),
    ]


def signatures_table(meta: dict[bytes, bytes]):
    schema = pa.schema([("id", pa.string()), ("signature", pa.binary())])

    def to_table(rows: list[tuple[str, bytes]]) -> pa.Table:
        cols = list(zip(*rows, strict=True)) if rows else [[], []]
        return pa.table(cols, schema=schema).replace_schema_metadata(meta)

    return to_table
