"""Every document that enters a stage leaves it kept or dropped, and both are counted.

A stage module in transforms/ declares `SECTION` (its config section), `DEFAULTS` (that
section's keys and default values, `enabled` among them), optionally `validate(section)`
(raise ValueError naming the key) and `enabled(section)`, and `build(section, ctx)` returning
a transform from documents to (kept, drops) or (kept, drops, extras).

`Accounted` wraps any stage transform. It counts what goes in, what comes out kept and what
comes out dropped, independently of the stage, as Beam counters (namespace = stage, name =
`source.outcome`) and as tally records that the manifest adds up and checks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from gristmill.schemas.records import Document, Drop

IN, KEPT, DROPPED = "in", "kept", "dropped"

# ((stage, source, outcome, reason), (documents, utf-8 bytes))
TallyKey = tuple[str, str, str, str]
Tally = tuple[TallyKey, tuple[int, int]]


@dataclass(frozen=True)
class StageContext:
    """What a stage may know of the job beyond its own config section."""

    stage: str
    output: str  # the release root, on any Beam filesystem
    seed: int
    kinds: dict[str, str]  # source name -> source kind
    # documents per character of text a stage may name in a counter for the live ETA (local
    # runs; else 0): see dedup_exact
    sample_per_char: float = 0.0


class StageResult(NamedTuple):
    kept: beam.PCollection
    drops: beam.PCollection
    tallies: list[beam.PCollection]
    # Optional outputs of a stage: "files" (FileInfo of files it wrote, listed in the manifest)
    # and "report" ((stage, key, JSON value) rows for the run report).
    extras: dict[str, beam.PCollection]


def text_bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


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
        yield (self.stage, doc.source, self.outcome, ""), (1, text_bytes(doc.text))


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


class DocFilter(beam.DoFn):
    """Base of per-document stages: `check` may rewrite the text and returns a drop or None."""

    stage = ""

    def check(self, doc: Document) -> tuple[str, str] | None:
        """(reason, detail) when the document leaves the flow, else None."""
        raise NotImplementedError

    def process(self, doc: Document):
        # Beam elements are immutable: work on a copy, which `check` may rewrite freely.
        doc = dataclasses.replace(doc, meta=dict(doc.meta))
        verdict = self.check(doc)
        if verdict is None:
            yield doc
        else:
            reason, detail = verdict
            yield beam.pvalue.TaggedOutput(
                DROPPED, Drop(doc.id, doc.source, self.stage, reason, detail)
            )


class FilterStage(beam.PTransform):
    """A stage made of one DocFilter: (kept, drops)."""

    def __init__(self, dofn: DocFilter):
        super().__init__()
        self.dofn = dofn

    def expand(self, docs):
        out = docs | "Check" >> beam.ParDo(self.dofn).with_outputs(DROPPED, main=KEPT)
        return out[KEPT], out[DROPPED]


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
