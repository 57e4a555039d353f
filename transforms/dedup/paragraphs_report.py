"""The run report's rows of repeated-paragraph removal: what went, per source, and the units found
in the most documents (by hash and survivor: the stage never sees their text)."""

from __future__ import annotations

import apache_beam as beam

STATS = ("documents_edited", "documents_dropped", "units_removed", "bytes_removed", "bytes_dropped")


class _BySource(beam.CombineFn):
    """(source, stats tuple) -> {source: summed stats}."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, item):
        source, stats = item
        have = acc.get(source, (0,) * len(STATS))
        acc[source] = tuple(a + b for a, b in zip(have, stats, strict=True))
        return acc

    def merge_accumulators(self, accs):
        out: dict = {}
        for acc in accs:
            for item in acc.items():
                self.add_input(out, item)
        return out

    def extract_output(self, acc):
        return acc


def _top_item(kv):
    """(hash key, (n, survivor)) -> a sortable row: most documents first, then by hash."""
    key, (n, survivor) = kv
    h = key[1] if isinstance(key, tuple) else key
    return (-n, f"{h:016x}", survivor[1])


def _assemble(_, stage, params, by_source, top, repeated):
    yield stage, "params", params
    yield stage, "repeated_units", repeated
    yield (
        stage,
        "by_source",
        {s: dict(zip(STATS, v, strict=True)) for s, v in sorted(by_source.items())},
    )
    yield (
        stage,
        "most_repeated",
        [{"documents": -n, "hash": h, "survivor": s} for n, h, s in top],
    )


class ParagraphsReport(beam.PTransform):
    """(stats, repeated hashes) -> report rows: params, repeated_units, by_source,
    most_repeated."""

    def __init__(self, stage: str, params):
        super().__init__()
        self.stage = stage
        self.params = params

    def expand(self, pcolls):
        stats, repeated = pcolls
        p = self.params
        by_source = stats | "BySource" >> beam.CombineGlobally(_BySource())
        top = (
            repeated
            | "TopItems" >> beam.Map(_top_item)
            | "Top" >> beam.combiners.Top.Smallest(p.report_top)
        )
        count = repeated | "CountRepeated" >> beam.combiners.Count.Globally()
        shown = {
            "unit": p.unit,
            "min_documents": p.min_documents,
            "min_chars": p.min_chars,
            "kinds": list(p.kinds),
            "scope": p.scope,
            "min_kept_share": p.min_kept_share,
            "min_kept_bytes": p.min_kept_bytes,
        }
        return (
            stats.pipeline
            | "Once" >> beam.Create([None])
            | "Assemble"
            >> beam.FlatMap(
                _assemble,
                self.stage,
                shown,
                beam.pvalue.AsSingleton(by_source),
                beam.pvalue.AsSingleton(top),
                beam.pvalue.AsSingleton(count),
            )
        )
