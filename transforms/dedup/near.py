"""Near-duplicate detection (stage "dedup_near"): MinHash signatures, LSH bands, candidate pairs,
verification, connected components, one survivor per cluster.

Where each part lives:
- minhash_shingles: text to shingle hashes (tokens, n-grams, segments of long documents);
- minhash_signer: MinHash signatures (datasketch's affine32 permutations, bit for bit) and the
  bottom-k sketches that verification compares;
- minhash_lsh: band keys, candidate edges from LSH buckets, verification by estimated Jaccard;
- components: the Beam joins and connected components; survivors: verdicts, report, index tables;
- here: the stage itself, the composition of those steps in Beam.

The Beam side: documents are signed a batch at a time (`_Sign`, `batch_chars` of text per numpy
batch); a document without tokens has no signature and is kept without comparison (counted
`<source>.no_tokens`: literal copies of it are exact dedup's business). Each signed document emits
one (band, bucket) key per band; buckets give candidate edges, which meet their endpoints'
sketches (only candidates' sketches travel on) and are verified; verified edges go through
components.ConnectedComponents; each non-root node is dropped with `survivor=<root id>
jaccard=<estimated Jaccard to the survivor, from the sketches>`.

Every public name of the parts stays importable from here.
"""

from __future__ import annotations

import posixpath
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from gristmill.transforms.accounting import SourceCounters
from gristmill.transforms.dedup.components import ConnectedComponents
from gristmill.transforms.dedup.joins import ValuesOfEndpoints
from gristmill.transforms.dedup.keyed import keyed
from gristmill.transforms.dedup.lsh import (
    BAND_BASE,
    CandidatePairs,
    Scored,
    VerifiedPairs,
    band_key,
    band_keys,
    band_rows,
)
from gristmill.transforms.dedup.near_buckets import SpillBands
from gristmill.transforms.dedup.params import DedupParams, DedupSettings, dedup_stage, near_enabled
from gristmill.transforms.dedup.shingles import (
    M64,
    SEGMENT_CHARS,
    SEGMENT_OVERLAP,
    SHINGLE_BASE,
    TABLE_SIZE,
    TOKEN_BASE,
    UNSPACED_RANGES,
    char_table,
    segments,
)
from gristmill.transforms.dedup.signer import (
    CHUNK,
    U32_MAX,
    Signed,
    Signer,
    bottom_k,
    jaccard,
    permutations,
    sketch_jaccard,
)
from gristmill.transforms.dedup.sketch_store import WriteSketches
from gristmill.transforms.dedup.survivors import (
    ApplyVerdicts,
    ApplyVerdictsFromSide,
    ClusterReport,
    detail,
    index_specs,
)
from gristmill.transforms.sorted_runs import ShardedTable
from gristmill.transforms.stage import Cost, Rereads, StageContext

__all__ = [
    "BAND_BASE",
    "CHUNK",
    "FLAG_NAMES",
    "M64",
    "REASON",
    "SEGMENT_CHARS",
    "SEGMENT_OVERLAP",
    "SHINGLE_BASE",
    "NAME",
    "STAGE",
    "TABLE_SIZE",
    "TOKEN_BASE",
    "U32_MAX",
    "UNSPACED_RANGES",
    "NearKeys",
    "NearOnKeys",
    "Signed",
    "Signer",
    "band_key",
    "band_keys",
    "bottom_k",
    "keys",
    "on_keys",
    "char_table",
    "jaccard",
    "permutations",
    "segments",
    "sketch_jaccard",
]

NAME = "dedup_near"
REASON = "near_duplicate"
FLAG_NAMES = ("no_tokens", "word_ngrams", "short_doc", "char_ngrams")


class _Sign(beam.DoFn):
    """Documents -> Keyed records whose key is (node, signature bytes, bottom-k sketch bytes or
    None), or None for a document without tokens (kept without comparison). Buffers
    `batch_chars` of text per numpy batch, never more; counts <source>.<flag> (FLAG_NAMES)."""

    def __init__(self, params: DedupParams):
        self.params = params

    def setup(self):
        self.signer = Signer(self.params.near, self.params.seed)
        self._counters = SourceCounters(NAME)

    def start_bundle(self):
        self.buf: list = []
        self.chars = 0

    def process(self, doc):
        self.buf.append(doc)
        self.chars += len(doc.text) + 1
        if self.chars >= self.params.near.batch_chars:
            yield from self._flush()

    def finish_bundle(self):
        for out in self._flush():
            yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])

    def _flush(self):
        buf, self.buf, self.chars = self.buf, [], 0
        if not buf:
            return
        near = self.params.near
        got = self.signer.sign([d.text for d in buf], [d.lang for d in buf])
        for i, (doc, flag) in enumerate(zip(buf, got.flags, strict=True)):
            self._counters.inc(doc.source, FLAG_NAMES[flag])
            key = None
            if flag != 0:
                sketch = got.sketch(i) if near.verify_k else None
                key = (self.params.node(doc.source, doc.id), got.sig[i].tobytes(), sketch)
            yield keyed(doc, key)


class NearKeys(beam.PTransform):
    """documents -> Keyed records (see _Sign)."""

    def __init__(self, params: DedupParams):
        super().__init__()
        self.params = params

    def expand(self, docs):
        return docs | "Sign" >> beam.ParDo(_Sign(self.params))


def _signed(bands: int, rows: int, verify_k: int):
    """A Keyed record -> (id, signature); tagged "bands": (band key, node) (none when `bands`
    is 0) and "sketches": (id, sketch); nothing for a record without a signature."""

    def split(record):
        if record.key is None:
            return
        node, sig, sketch = record.key
        yield record.id, sig
        if verify_k:
            yield beam.pvalue.TaggedOutput("sketches", (record.id, sketch))
        if not bands:
            return
        row = band_keys(np.frombuffer(sig, dtype=np.uint32)[None, :], bands, rows)[0]
        for band, bucket in enumerate(row.tolist()):
            yield beam.pvalue.TaggedOutput("bands", (band_key(band, bucket), node))

    return split


class _CandidateSketches(beam.PTransform):
    """Records -> (id, sketch) of the records some candidate pair names (their ids are the
    side input: ids only)."""

    def __init__(self, candidates: beam.PCollection, part: int = 2):
        super().__init__()
        self.candidates = candidates
        self.part = part  # of the key: 2 the sketch, 1 the signature

    def expand(self, records):
        ids = (
            self.candidates
            | "Ends" >> beam.FlatMap(lambda e: [(e[0][1], True), (e[1][1], True)])
            | "Once" >> beam.CombinePerKey(any)
        )

        part = self.part

        def pick(record, wanted):
            if record.key is not None and record.id in wanted:
                yield record.id, record.key[part]

        return records | "Pick" >> beam.FlatMap(pick, beam.pvalue.AsDict(ids))


def _signature(record) -> bytes | None:
    return None if record.key is None else record.key[1]


def _verdict(scored):
    root, node, j = scored
    return node[1], (root[1], detail(survivor=root[1], jaccard=f"{j:.4f}"))


def _count_as(name: str):
    return lambda _: (name, 1)


class NearOnKeys(beam.PTransform):
    """Keyed records (NearKeys) -> (kept records, drops, extras); see the module docstring,
    joins.py and components.py."""

    def __init__(self, params: DedupParams, ctx: StageContext):
        super().__init__()
        self.params = params
        self.ctx = ctx
        # a local run's phase 2 (keys.py) sets `reread` (stage.py: Rereads)
        self.reread: Rereads | None = None
        # the candidate edges, found a hash range of band keys at a time (near_buckets.py)
        self.candidates: beam.PCollection | None = None

    def spill_bands(self, folder: str, ranges: int) -> beam.PTransform:
        """Records -> band entries spilled under `folder`, a shard per hash range."""
        return SpillBands(self.params.near.bands, self.params.near.rows, folder, ranges)

    def range_pairs(self) -> beam.PTransform:
        """One hash range's spilled band entries -> its candidate edges."""
        return CandidatePairs(NAME, self.params.near.max_bucket_size)

    def expand(self, keys):
        params, near = self.params, self.params.near
        split_k = near.verify_k if self.reread is None else 0
        bands = near.bands if self.candidates is None else 0
        signed = keys | "Split" >> beam.FlatMap(_signed(bands, near.rows, split_k)).with_outputs(
            "bands", "sketches", main="sigs"
        )
        if self.candidates is None:
            candidates = signed.bands | "CandidatePairs" >> CandidatePairs(
                NAME, near.max_bucket_size
            )
        else:  # found a hash range at a time (near_buckets.py): an edge may come from several
            candidates = self.candidates | "Unique" >> beam.Distinct()
        counts = [candidates | "CountCandidates" >> beam.Map(_count_as("candidate_pairs"))]
        if self.reread is None:
            sketches = signed.sketches if near.verify_k else signed.sigs
            # only candidates' sketches travel on: every node of a verified edge or cluster is one
            scored_by = (candidates, sketches) | "CandidateSketches" >> ValuesOfEndpoints(
                lambda n: n[1]
            )
            verdicts = self._verdicts(candidates, scored_by, counts, by_side=False)
            # verdicts meet records without their signatures and sketches: ids cross the join
            slim = keys | "Slim" >> beam.Map(lambda k: k._replace(key=None))
            joined = (slim, verdicts, signed.sigs) if params.index else (slim, verdicts)
            out = joined | "Apply" >> ApplyVerdicts(NAME, REASON)
            kept_for_report = out.kept
        else:
            # the candidates' sketches, read again (theirs only) into files the scoring steps
            # load once per process (sketch_store.py); their paths are the side input
            part = 2 if near.verify_k else 1  # of the key: the sketch, or the signature
            folder = posixpath.join(self.ctx.spill or self.ctx.output, "_sketches")
            scored_by = (
                self.reread("again")
                | "CandidatesAgain" >> _CandidateSketches(candidates, part)
                | "StoreSketches" >> beam.ParDo(WriteSketches(folder))
            )
            verdicts = self._verdicts(candidates, scored_by, counts, by_side=True)
            extra_of = _signature if params.index else None
            out = (self.reread("apply"), verdicts) | "Apply" >> ApplyVerdictsFromSide(
                NAME, REASON, extra_of
            )
            kept_for_report = self.reread("snippets")  # survivors are never dropped
        count_rows = counts | "AllCounts" >> beam.Flatten()
        report = (out.pairs, kept_for_report, count_rows) | "Report" >> ClusterReport(
            NAME, params.report_top, self._static()
        )
        extras = {"report": report}
        if params.index:
            extras["files"] = self._index_files(out.extra)
        return out.kept, out.drops, extras

    def _verdicts(self, candidates, scored_by, counts: list, by_side: bool):
        """Candidate edges and their nodes' sketches -> verdicts (lsh.Scored: `by_side`)."""
        params, near = self.params, self.params.near
        edges = candidates
        if near.verify:
            edges = (candidates, scored_by) | "Verified" >> VerifiedPairs(
                NAME, params.threshold, near.verify_k, by_side
            )
            counts.append(edges | "CountVerified" >> beam.Map(_count_as("verified_pairs")))
        labels = self._components(edges, counts)
        return (
            (labels, scored_by)
            | "ScoreRoot" >> Scored(NAME, near.verify_k, by_side)
            | "Verdicts" >> beam.Map(_verdict)
        )

    def _components(self, edges, counts: list):
        """Verified edges -> (root, node) of every non-root node."""
        cc = edges | "Components" >> ConnectedComponents(NAME, self.params.near.max_rounds)
        counts.append(cc.unsettled | "CountUnsettled" >> beam.Map(_count_as("unsettled_nodes")))
        return cc.labels | "RootFirst" >> beam.Map(lambda nr: (nr[1], nr[0]))

    def _static(self) -> dict[str, Any]:
        """The report rows known before the run (parameters) and the counts that start at 0."""
        params, near = self.params, self.params.near
        return {
            "params": {
                "threshold": params.threshold,
                "num_perm": near.num_perm,
                "bands": near.bands,
                "rows": near.rows,
                "ngram": near.ngram,
                "verify_k": near.verify_k if near.verify else None,
                "rounds": near.max_rounds,
            },
            "candidate_pairs": 0,
            "verified_pairs": 0,
            "unsettled_nodes": 0,
        }

    def _index_files(self, kept_sigs):
        """(id, signature) of kept documents -> index/signatures-* and index/bands-* files
        (spilled as sorted runs in a local run's phase 2)."""
        near = self.params.near
        sigs, bands = index_specs(self.params)
        out, spill = self.ctx.output, self.ctx.spill
        sig_files = kept_sigs | "IndexSignatures" >> ShardedTable(out, spill, sigs, _sig_size)
        band_files = (
            kept_sigs
            | "BandRows" >> beam.FlatMap(band_rows(near.bands, near.rows))
            | "IndexBands" >> ShardedTable(out, spill, bands, _band_size)
        )
        return (sig_files, band_files) | "IndexFiles" >> beam.Flatten()


def _sig_size(row) -> int:  # bytes in memory, for the spill limit
    return 650


def _band_size(row) -> int:
    return 150


def tables(settings: DedupSettings, ctx: StageContext) -> list:
    params = DedupParams.from_section(settings, ctx.seed)
    return index_specs(params) if params.index else []


def keys(settings: DedupSettings, ctx: StageContext) -> beam.PTransform:
    return NearKeys(DedupParams.from_section(settings, ctx.seed))


def on_keys(settings: DedupSettings, ctx: StageContext) -> beam.PTransform:
    return NearOnKeys(DedupParams.from_section(settings, ctx.seed), ctx)


STAGE = dedup_stage(
    NAME,
    keys,
    on_keys,
    near_enabled,
    tables,
    Cost(137, 12.1, 144, 12.2),
    "MinHash + LSH near-duplicates, connected components, one survivor per cluster",
)
