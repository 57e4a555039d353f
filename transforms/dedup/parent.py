"""Refresh dedup (stage "dedup_parent"): new documents that an earlier release already holds.

Runs only in a refresh (`refresh.parent` set), after the cheap filters and before the new
documents are deduplicated among themselves. Two passes against the lineage's index (see
parent_index.py):
- exact: the document's dedup_exact key equals a key in some `index/exact-*` file: a Drop
  `already_present_exact`, detail `survivor=<older id> release=<0 = parent, 1 = its parent...>`;
- near: the remaining documents are signed with the parameters recorded in the index (not the
  current config's: only those make comparable signatures), their band buckets meet the index's
  buckets, and a candidate whose estimated Jaccard (MinHash signatures: the index keeps no
  bottom-k sketch) reaches the index's threshold is a Drop `already_present_near`, detail
  `survivor=<best match> release=<k> jaccard=<estimate>` (best: highest estimate, then nearest
  release, then lowest id).

Memory: index rows are streamed from Parquet into Beam; a bucket keeps at most
`max_bucket_parents` older ids (the lowest), so 100,000 older documents in one bucket cost a
bounded list; joins stream the many side (components.JoinOneToMany).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np

from gristmill.transforms.dedup import params as dedup_params
from gristmill.transforms.dedup.exact import exact_key
from gristmill.transforms.dedup.joins import AttachEndpoints, JoinOneToMany, ValuesOfEndpoints
from gristmill.transforms.dedup.keyed import KeyedDedup, keyed
from gristmill.transforms.dedup.near import Signer, band_key, band_keys, jaccard
from gristmill.transforms.dedup.params import NearParams
from gristmill.transforms.dedup.parent_index import Lineage, NearIndex, ReadIndexRows, load_lineage
from gristmill.transforms.dedup.survivors import ApplyVerdicts, detail
from gristmill.transforms.params import option
from gristmill.transforms.stage import Needs, Stage, StageContext

NAME = "dedup_parent"
EXACT_REASON = "already_present_exact"
NEAR_REASON = "already_present_near"
TOKENIZER_CHOICES = ("reuse", "retrain")


@dataclass(frozen=True)
class RefreshParams:
    """The `refresh` section: a refresh builds on a previous release (see README)."""

    parent: str | None = option(
        None, "the previous release (a directory with manifest.json); null: not a refresh"
    )
    tokenizer: str = option(
        "reuse",
        "reuse: the parent's tokenizer.json | retrain: train one per `tokenizer`",
        choices=TOKENIZER_CHOICES,
    )
    skip_consumed_inputs: bool = option(
        True, "skip inputs an earlier release read (same path, size and sha256)"
    )
    max_bucket_parents: int = option(32, "older ids kept per LSH bucket (the lowest)", min=1)

    def check(self) -> None:
        if self.parent == "":
            raise ValueError("parent: expected the path of a release, got ''")


def enabled(params: RefreshParams) -> bool:
    return params.parent is not None


def near_params(meta: dict[str, Any]) -> NearParams:
    """The signing parameters an index was written with, over today's defaults for the rest."""
    near = dedup_params.defaults()["near"]
    return NearParams(
        num_perm=int(meta["num_perm"]),
        ngram=int(meta["ngram"]),
        bands=int(meta["bands"]),
        rows=int(meta["rows"]),
        verify=True,
        verify_k=0,
        char_ngram=int(meta["char_ngram"]),
        char_ngram_langs=tuple(meta["char_ngram_langs"]),
        char_ngram_script_share=float(meta["char_ngram_script_share"]),
        max_bucket_size=near["max_bucket_size"],
        max_rounds=near["max_rounds"],
        batch_chars=near["batch_chars"],
    )


def _exact_verdict(joined):
    _, older, doc_id = joined
    if older is None:
        return []
    release, older_id = older
    return [(doc_id, (older_id, detail(survivor=older_id, release=release)))]


class _SignBatch(beam.DoFn):
    """Batches of documents -> Keyed records whose key is (exact key, (signature bytes or None
    per near parameter group of the lineage, signed with that group's parameters))."""

    def __init__(self, metas: list[dict[str, Any]]):
        self.metas = metas

    def setup(self):
        self.signers = [Signer(near_params(m), int(m["seed"])) for m in self.metas]

    def process(self, batch):
        texts, langs = [d.text for d in batch], [d.lang for d in batch]
        groups = []
        for signer in self.signers:
            got = signer.sign(texts, langs)
            groups.append(
                [s.tobytes() if f else None for f, s in zip(got.flags, got.sig, strict=True)]
            )
        for i, doc in enumerate(batch):
            yield keyed(doc, (exact_key(doc.text), tuple(g[i] for g in groups)))


def _group_signed(group: int, bands: int, rows: int):
    """A Keyed record -> (("n", id), signature of the group); tagged "bands": (band key, id)."""

    def split(record):
        sig = record.key[1][group]
        if sig is None:  # no token: nothing to compare
            return
        yield ("n", record.id), sig
        row = band_keys(np.frombuffer(sig, dtype=np.uint32)[None, :], bands, rows)[0]
        for band, bucket in enumerate(row.tolist()):
            yield beam.pvalue.TaggedOutput("bands", (band_key(band, bucket), record.id))

    return split


def _candidates(joined):
    _, olders, doc_id = joined
    for release, older_id in olders or ():
        yield ("n", doc_id), ("p", release, older_id)


def _scored(threshold: float):
    def score(edge):
        new, old, sig_new, sig_old = edge
        j = jaccard(sig_new, sig_old)
        return [(new[1], (-j, old[1], old[2]))] if j >= threshold else []

    return score


def _near_verdict(best):
    doc_id, (neg_j, release, older_id) = best
    return doc_id, (older_id, detail(survivor=older_id, release=release, jaccard=f"{-neg_j:.4f}"))


class NearMatches(beam.PTransform):
    """Documents + the releases of one parameter group -> verdicts (id, (older id, detail))."""

    def __init__(self, group: int, meta: dict[str, Any], releases: list[NearIndex], cap: int):
        super().__init__()
        self.group = group
        self.meta = meta
        self.releases = releases
        self.cap = cap

    def expand(self, keys):
        p = keys.pipeline
        band_files = [(r.release, f) for r in self.releases for f in r.bands]
        sig_files = [(r.release, f) for r in self.releases for f in r.signatures]
        older_buckets = (
            p
            | "BandFiles" >> beam.Create(band_files)
            | "SpreadBands" >> beam.Reshuffle()
            | "ReadBands" >> beam.ParDo(ReadIndexRows(("band", "bucket", "id")))
            | "KeyBands" >> beam.Map(lambda r: (band_key(r[1], r[2]), (r[0], r[3])))
            | "LowestPerBucket" >> beam.combiners.Top.SmallestPerKey(self.cap)
        )
        older_sigs = (
            p
            | "SignatureFiles" >> beam.Create(sig_files)
            | "SpreadSignatures" >> beam.Reshuffle()
            | "ReadSignatures" >> beam.ParDo(ReadIndexRows(("id", "signature")))
            | "KeySignatures" >> beam.Map(lambda r: (("p", r[0], r[1]), r[2]))
        )
        near = near_params(self.meta)
        signed = keys | "Split" >> beam.FlatMap(
            _group_signed(self.group, near.bands, near.rows)
        ).with_outputs("bands", main="sigs")
        candidates = (
            (older_buckets, signed.bands)
            | "MeetBuckets" >> JoinOneToMany()
            | "Candidates" >> beam.FlatMap(_candidates)
            | "Unique" >> beam.Distinct()
        )
        values = (signed.sigs, older_sigs) | "AllSignatures" >> beam.Flatten()
        needed = (candidates, values) | "CandidateSignatures" >> ValuesOfEndpoints(lambda n: n)
        return (
            (candidates, needed)
            | "Attach" >> AttachEndpoints(NAME, lambda n: n)
            | "Score" >> beam.FlatMap(_scored(float(self.meta["threshold"])))
            | "Best" >> beam.CombinePerKey(min)
            | "Verdicts" >> beam.Map(_near_verdict)
        )


class ParentKeys(beam.PTransform):
    """documents -> Keyed records (see _SignBatch)."""

    def __init__(self, found: Lineage):
        super().__init__()
        self.metas = [meta for meta, _ in found.near_groups()]

    def expand(self, docs):
        return (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=16, max_batch_size=256)
            | "Sign" >> beam.ParDo(_SignBatch(self.metas))
        )


class ParentOnKeys(beam.PTransform):
    """Keyed records (ParentKeys) -> (kept records, drops, {})."""

    def __init__(self, section: dict[str, Any], found: Lineage):
        super().__init__()
        self.section = section
        self.lineage = found

    def expand(self, docs):
        p = docs.pipeline
        drops = []
        if self.lineage.exact:
            older = (
                p
                | "ExactFiles" >> beam.Create(list(self.lineage.exact))
                | "SpreadExact" >> beam.Reshuffle()
                | "ReadExact" >> beam.ParDo(ReadIndexRows(("hash", "id")))
                | "KeyExact" >> beam.Map(lambda r: (bytes.fromhex(r[1]), (r[0], r[2])))
                | "LowestPerKey" >> beam.CombinePerKey(min)
            )
            keys = docs | "Key" >> beam.Map(lambda k: (k.key[0], k.id))
            verdicts = (
                (older, keys)
                | "MeetExact" >> JoinOneToMany()
                | "ExactVerdicts" >> beam.FlatMap(_exact_verdict)
            )
            out = (docs, verdicts) | "ApplyExact" >> ApplyVerdicts(NAME, EXACT_REASON)
            docs = out.kept
            drops.append(out.drops)
        cap = int(self.section.max_bucket_parents)
        for i, (meta, releases) in enumerate(self.lineage.near_groups()):
            verdicts = docs | f"Near{i}" >> NearMatches(i, meta, releases, cap)
            out = (docs, verdicts) | f"ApplyNear{i}" >> ApplyVerdicts(NAME, NEAR_REASON)
            docs = out.kept
            drops.append(out.drops)
        if not drops:
            drops.append(p | "NoDrops" >> beam.Create([]))
        return docs, drops | "AllDrops" >> beam.Flatten(), {}


def keys(params: RefreshParams, ctx: StageContext) -> beam.PTransform:
    return ParentKeys(load_lineage(params.parent))


def on_keys(params: RefreshParams, ctx: StageContext) -> beam.PTransform:
    return ParentOnKeys(params, load_lineage(params.parent))


STAGE = Stage(
    name=NAME,
    section="refresh",
    params=RefreshParams,
    build=lambda params, ctx: KeyedDedup(keys(params, ctx), on_keys(params, ctx)),
    keys=keys,
    on_keys=on_keys,
    needs=Needs.KEYS,
    enabled=enabled,
    summary="refresh runs: drops documents an earlier release already holds",
)
