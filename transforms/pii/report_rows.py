"""What the pii stage tells the privacy report: counts, score histograms, masked examples and
the residual scan, summed through Beam combiners (small accumulators: sources x entity types).

Report rows are `("pii", key, value)`: `engine`, `config`, `sources`, `examples`, `residual`.
Nothing in them is a value: examples are contexts from the scrubbed text in which every
replaced span is shown as its `<ENTITY_TYPE>` placeholder, whatever the operator.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import apache_beam as beam

STAGE = "pii"
BINS = 10  # score histogram: [0, 0.1), ..., [0.9, 1.0]


class DocStats(NamedTuple):
    """One document's contribution to the per-source summary."""

    source: str
    bytes: int
    counts: dict[str, int]  # entity type -> findings
    histograms: dict[str, list[int]]  # entity type -> score bins
    errors: dict[str, int]  # recognizer group -> errors
    ner_bytes: int
    failed: bool


LEFT = "documents_with_pattern_findings"  # re-scanned documents still holding a pattern entity
NER_KINDS = ("PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME")


class ResidualStats(NamedTuple):
    source: str
    bytes: int
    counts: dict[str, int]


def score_bin(score: float) -> int:
    return min(BINS - 1, max(0, int(score * BINS)))


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def _new_source() -> dict[str, Any]:
    return {
        "documents": 0,
        "documents_with_findings": 0,
        "documents_failed": 0,
        "bytes": 0,
        "ner_bytes": 0,
        "errors": {},
        "entities": {},
    }


class SummariseSources(beam.CombineFn):
    """DocStats -> {source: {documents, documents_with_findings, bytes, entities: {...}}}."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, s: DocStats):
        src = acc.setdefault(s.source, _new_source())
        src["documents"] += 1
        src["documents_failed"] += int(s.failed)
        src["documents_with_findings"] += int(any(s.counts.values()))
        src["bytes"] += s.bytes
        src["ner_bytes"] += s.ner_bytes
        _add(src["errors"], s.errors)
        for kind, n in s.counts.items():
            ent = src["entities"].setdefault(
                kind, {"findings": 0, "documents": 0, "score_histogram": [0] * BINS}
            )
            ent["findings"] += n
            ent["documents"] += 1
            for i, c in enumerate(s.histograms.get(kind, ())):
                ent["score_histogram"][i] += c
        return acc

    def merge_accumulators(self, accs):
        out: dict[str, dict] = {}
        for acc in accs:
            for source, src in acc.items():
                into = out.setdefault(source, _new_source())
                for key in (
                    "documents",
                    "documents_with_findings",
                    "documents_failed",
                    "bytes",
                    "ner_bytes",
                ):
                    into[key] += src[key]
                _add(into["errors"], src["errors"])
                for kind, ent in src["entities"].items():
                    e = into["entities"].setdefault(
                        kind, {"findings": 0, "documents": 0, "score_histogram": [0] * BINS}
                    )
                    e["findings"] += ent["findings"]
                    e["documents"] += ent["documents"]
                    e["score_histogram"] = [
                        a + b
                        for a, b in zip(e["score_histogram"], ent["score_histogram"], strict=True)
                    ]
        return out

    def extract_output(self, acc):
        return canonical_json(acc)


class SummariseResidual(beam.CombineFn):
    def create_accumulator(self):
        return {"documents": 0, "bytes": 0, "findings": {}, "by_source": {}, LEFT: 0}

    def add_input(self, acc, r: ResidualStats):
        acc["documents"] += 1
        acc[LEFT] += any(k not in NER_KINDS and n for k, n in r.counts.items())
        acc["bytes"] += r.bytes
        _add(acc["findings"], r.counts)
        src = acc["by_source"].setdefault(r.source, {"documents": 0, "bytes": 0, "findings": {}})
        src["documents"] += 1
        src["bytes"] += r.bytes
        _add(src["findings"], r.counts)
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for acc in accs:
            out["documents"] += acc["documents"]
            out["bytes"] += acc["bytes"]
            out[LEFT] += acc.get(LEFT, 0)
            _add(out["findings"], acc["findings"])
            for source, src in acc["by_source"].items():
                into = out["by_source"].setdefault(
                    source, {"documents": 0, "bytes": 0, "findings": {}}
                )
                into["documents"] += src["documents"]
                into["bytes"] += src["bytes"]
                _add(into["findings"], src["findings"])
        return out

    def extract_output(self, acc):
        return canonical_json(acc)


def canonical_json(value: Any) -> Any:
    """Dicts with sorted keys all the way down, so the report never depends on merge order."""
    if isinstance(value, dict):
        return {k: canonical_json(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [canonical_json(v) for v in value]
    return value


def _examples_dict(rows) -> dict:
    out: dict[str, dict[str, list[str]]] = {}
    for (source, kind), picked in rows:
        out.setdefault(source, {})[kind] = [context for _, context in sorted(picked)]
    return canonical_json(out)


def example_rank(context: str) -> float:
    """Where an example context stands among its type's candidates: from the context alone,
    so partitions' picks merge into the pick of the whole run (merge_row)."""
    return int.from_bytes(hashlib.sha256(context.encode("utf-8")).digest()[:8], "big") / 2**64


def _merge_examples(a: dict, b: dict, k: int) -> dict:
    out: dict[str, dict[str, list[str]]] = {}
    for side in (a, b):
        for source, kinds in side.items():
            for kind, contexts in kinds.items():
                out.setdefault(source, {}).setdefault(kind, []).extend(contexts)
    for kinds in out.values():
        for kind, contexts in kinds.items():
            kinds[kind] = sorted(contexts, key=lambda c: (example_rank(c), c))[:k]
    return canonical_json(out)


def _counts(row: dict, settings: tuple[str, ...]) -> dict:
    return {k: v for k, v in row.items() if k not in settings}


def merge_row(key: str, a: Any, b: Any, examples_per_type: int) -> Any:
    """The stage's report row `key` of two partitions as the row of both: counts added,
    examples re-picked, settings kept."""
    if key == "sources":
        return canonical_json(SummariseSources().merge_accumulators([a, b]))
    if key == "examples":
        return _merge_examples(a, b, examples_per_type)
    if key == "residual":
        fixed = tuple(k for k in a if k not in SummariseResidual().create_accumulator())
        both = SummariseResidual().merge_accumulators([_counts(a, fixed), _counts(b, fixed)])
        return canonical_json({**{k: a[k] for k in fixed}, **both})
    return a  # engine, config: the same in every partition


class ReportRows(beam.PTransform):
    """Per-document stats, example candidates and residual stats -> the stage's report rows."""

    def __init__(self, engine: dict, config: dict, examples_per_type: int, residual: dict):
        super().__init__()
        self.engine = engine
        self.config = config
        self.k = examples_per_type
        self.residual = residual

    def expand(self, pcolls):
        stats, examples, residual = pcolls
        p = stats.pipeline
        fixed = p | "Fixed" >> beam.Create(
            [(STAGE, "engine", self.engine), (STAGE, "config", self.config)]
        )
        sources = (
            stats
            | "Sources" >> beam.CombineGlobally(SummariseSources())
            | "SourcesRow" >> beam.Map(lambda v: (STAGE, "sources", v))
        )
        picked = (
            examples
            | "TopExamples" >> beam.combiners.Top.SmallestPerKey(self.k)
            | "ExamplesList" >> beam.combiners.ToList()
            | "ExamplesRow" >> beam.Map(lambda rows: (STAGE, "examples", _examples_dict(rows)))
        )
        settings = dict(self.residual)
        resid = (
            residual
            | "Residual" >> beam.CombineGlobally(SummariseResidual())
            | "ResidualRow" >> beam.Map(lambda v: (STAGE, "residual", {**settings, **v}))
        )
        return (fixed, sources, picked, resid) | "Rows" >> beam.Flatten()
