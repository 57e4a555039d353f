"""Every document that enters a stage leaves it kept or dropped, and both are counted.

`Accounted` wraps any stage transform. It counts what goes in, what comes out kept and what
comes out dropped, independently of the stage, as Beam counters (namespace = stage, name =
`source.outcome`) and as tally records that the manifest adds up and checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from gristmill.schemas.records import Document, Drop
from gristmill.transforms.stage import DROPPED, IN, KEPT

# ((stage, source, outcome, reason), (documents, utf-8 bytes))
TallyKey = tuple[str, str, str, str]
Tally = tuple[TallyKey, tuple[int, int]]


class StageResult(NamedTuple):
    kept: beam.PCollection
    drops: beam.PCollection
    tallies: list[beam.PCollection]
    # Optional outputs of a stage: "files" (FileInfo of files it wrote, listed in the manifest)
    # and "report" ((stage, key, JSON value) rows for the run report).
    extras: dict[str, beam.PCollection]


def text_bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def doc_bytes(doc) -> int:
    """A document's text bytes; a dedup key record carries them (`nbytes`) without the text."""
    n = getattr(doc, "nbytes", None)
    return text_bytes(doc.text) if n is None else n


class SourceCounters:
    """The Beam counters `<source>.<what>` of one stage, each made once: a DoFn holds one and
    calls `inc` per decision."""

    def __init__(self, stage: str):
        self.stage = stage
        self._made: dict[str, Any] = {}

    def inc(self, source: str, what: str, n: int = 1) -> None:
        name = f"{source}.{what}"
        counter = self._made.get(name)
        if counter is None:
            counter = self._made[name] = Metrics.counter(self.stage, name)
        counter.inc(n)


class CountDocs(beam.DoFn):
    """Counts documents passing a point of a stage, by source."""

    def __init__(self, stage: str, outcome: str):
        self.stage = stage
        self.outcome = outcome
        self._counters = SourceCounters(stage)

    def process(self, doc: Document):
        self._counters.inc(doc.source, self.outcome)
        yield (self.stage, doc.source, self.outcome, ""), (1, doc_bytes(doc))


class CountDrops(beam.DoFn):
    def __init__(self, stage: str):
        self.stage = stage
        self._counters = SourceCounters(stage)

    def process(self, drop: Drop):
        if drop.stage != self.stage:
            raise ValueError(f"stage {self.stage!r} emitted a drop labelled {drop.stage!r}")
        self._counters.inc(drop.source, f"{DROPPED}.{drop.reason}")
        yield (self.stage, drop.source, DROPPED, drop.reason), (1, 0)


class Accounted(beam.PTransform):
    """Applies `inner` and counts in, kept and dropped around it.

    `inner` maps documents to (kept, drops) or (kept, drops, extras) — see StageResult.
    """

    def __init__(self, stage: str, inner: beam.PTransform):
        super().__init__()
        self.stage = stage
        self.inner = inner

    def expand(self, docs):
        tally_in = docs | "CountIn" >> beam.ParDo(CountDocs(self.stage, IN))
        out = docs | "Apply" >> self.inner
        kept, drops = out[0], out[1]
        extras = out[2] if len(out) > 2 else {}
        tally_kept = kept | "CountKept" >> beam.ParDo(CountDocs(self.stage, KEPT))
        tally_drop = drops | "CountDropped" >> beam.ParDo(CountDrops(self.stage))
        return StageResult(kept, drops, [tally_in, tally_kept, tally_drop], dict(extras))


@dataclass
class StageCounts:
    """One stage's line in the manifest."""

    name: str
    docs_in: int
    kept: int
    dropped: dict[str, int]
    bytes_in: int
    bytes_kept: int
    by_source: dict[str, dict]

    def balanced(self) -> bool:
        return self.docs_in == self.kept + sum(self.dropped.values())

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "in": self.docs_in,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "bytes_in": self.bytes_in,
            "bytes_kept": self.bytes_kept,
            "by_source": self.by_source,
        }


def stage_counts(
    stage_names: list[str], totals: dict[TallyKey, tuple[int, int]]
) -> list[StageCounts]:
    """Fold the summed tallies into per-stage counts, in flow order."""
    out = []
    for name in stage_names:
        docs_in = kept = bytes_in = bytes_kept = 0
        dropped: dict[str, int] = {}
        by_source: dict[str, dict] = {}
        for (stage, source, outcome, reason), (n, nbytes) in sorted(totals.items()):
            if stage != name:
                continue
            entry = by_source.setdefault(source, {"in": 0, "kept": 0, "dropped": {}})
            if outcome == IN:
                docs_in += n
                bytes_in += nbytes
                entry["in"] += n
            elif outcome == KEPT:
                kept += n
                bytes_kept += nbytes
                entry["kept"] += n
            else:
                dropped[reason] = dropped.get(reason, 0) + n
                entry["dropped"][reason] = entry["dropped"].get(reason, 0) + n
        out.append(StageCounts(name, docs_in, kept, dropped, bytes_in, bytes_kept, by_source))
    return out


def table_of(path: str) -> str:
    """The release table a listed file belongs to: its first folder (documents, drops, ...)."""
    return path.split("/", 1)[0] if "/" in path else ""


def accounting_problems(
    stages: list[dict], inputs: list[dict], outputs: list[dict], counts: dict | None = None
) -> list[str]:
    """Every way the manifest's counts can fail to add up, one line each (none: it balances).

    For every stage and every source within it, in == kept + dropped; each stage takes what
    the previous one kept; the first takes every record the inputs held; the documents, drops
    and dead-letter tables hold exactly as many rows as were counted. The job runs it before it
    writes a manifest, `gristmill validate` on a release."""
    problems = []
    records = sum(i.get("records", 0) for i in inputs)
    if stages and stages[0]["in"] != records:
        problems.append(f"{stages[0]['name']}: in {stages[0]['in']}, the inputs hold {records}")
    for prev, cur in zip([None, *stages], stages, strict=False):
        dropped = sum(cur["dropped"].values())
        if cur["in"] != cur["kept"] + dropped:
            problems.append(
                f"{cur['name']}: in {cur['in']} != kept {cur['kept']} + dropped {dropped}"
            )
        if prev is not None and cur["in"] != prev["kept"]:
            problems.append(f"{cur['name']}: in {cur['in']} != {prev['name']} kept {prev['kept']}")
        parts = cur.get("by_source", {})
        for source, part in sorted(parts.items()):
            if part["in"] != part["kept"] + sum(part["dropped"].values()):
                problems.append(f"{cur['name']}/{source}: in != kept + dropped")
        if parts and sum(p["in"] for p in parts.values()) != cur["in"]:
            problems.append(f"{cur['name']}: the sources' in does not add up to {cur['in']}")
    rows: dict[str, int] = {}
    for o in outputs:
        kind = table_of(o["path"])
        rows[kind] = rows.get(kind, 0) + o["rows"]
    expected = {
        "documents": stages[-1]["kept"] if stages else 0,
        "drops": sum(sum(s["dropped"].values()) for s in stages),
        "dead_letters": sum(i.get("dead_letters", 0) for i in inputs),
    }
    for kind, n in expected.items():
        if rows.get(kind, 0) != n:
            problems.append(f"{kind}: {rows.get(kind, 0)} rows written, {n} counted")
        if counts is not None and counts.get(kind, n) != n:
            problems.append(f"counts.{kind}: {counts[kind]}, the stages counted {n}")
    return problems
