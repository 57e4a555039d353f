"""Near dedup in a local run's phase 2 form (keys.py): band entries spilled by hash range and
grouped a range at a time, verdicts and sketches as side inputs over fresh reads, index files
spilled and merged; the same drops, report rows and index bytes as the one-graph form."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from test_near import NEAR, SINK, _append, corpus

from gristmill.pipelines.phases.staged import ReadStaged
from gristmill.transforms.accounting import Accounted
from gristmill.transforms.dedup import near as mh
from gristmill.transforms.dedup.near_buckets import entry_from_row
from gristmill.transforms.dedup.params import defaults
from gristmill.transforms.sorted_runs import merge_runs, run_files
from gristmill.transforms.stage import StageContext

RANGES = 3


def _section() -> dict:
    section = defaults()
    section["near"].update(NEAR)
    return section


def _collect(build, key: str) -> list:
    SINK.pop(key, None)
    with beam.Pipeline(runner=FnApiRunner()) as p:
        _ = build(p) | f"Collect/{key}" >> beam.Map(_append, key)
    return SINK.get(key, [])


def _graph_form(docs, out):
    """The stage in one graph, as the distributed runners run it."""
    ctx = StageContext("dedup_near", str(out), 0, {})
    got = {}
    with beam.Pipeline(runner=FnApiRunner()) as p:
        result = p | beam.Create(docs) | Accounted("dedup_near", mh.STAGE.build(_section(), ctx))
        SINK.pop("g-drops", None), SINK.pop("g-report", None)
        result.drops | "Drops" >> beam.Map(_append, "g-drops")
        result.extras["report"] | "Report" >> beam.Map(_append, "g-report")
    got["drops"], got["report"] = SINK["g-drops"], SINK["g-report"]
    return got


def _ranges_form(docs, out):
    """The stage as phase 2 runs it: keys first, candidates by range, then the rest."""
    section = _section()
    ctx = StageContext("dedup_near", str(out), 0, {}, spill=str(out / "_runs"))
    records = _collect(lambda p: p | beam.Create(docs) | mh.STAGE.keys(section, ctx), "records")
    bands = out / "_runs" / "_bands"
    inner = mh.STAGE.on_keys(section, ctx)
    with beam.Pipeline(runner=FnApiRunner()) as p:
        _ = p | beam.Create(records) | inner.spill_bands(str(bands), RANGES)
    runs = run_files([str(bands)])
    assert len(runs) == RANGES  # every range got entries
    edges = []
    for r, ((_, _), paths) in enumerate(sorted(runs.items())):
        edges += _collect(
            lambda p, paths=paths: (
                p
                | beam.Create(paths)
                | beam.ParDo(ReadStaged(entry_from_row))
                | inner.range_pairs()
            ),
            f"edges-{r}",
        )
    got = {}
    with beam.Pipeline(runner=FnApiRunner()) as p:
        inner.candidates = p | "Edges" >> beam.Create(edges)
        inner.reread = lambda label: p | f"Again/{label}" >> beam.Create(records)
        result = p | beam.Create(records) | Accounted("dedup_near", inner)
        SINK.pop("r-drops", None), SINK.pop("r-report", None)
        result.drops | "Drops" >> beam.Map(_append, "r-drops")
        result.extras["report"] | "Report" >> beam.Map(_append, "r-report")
    got["drops"], got["report"] = SINK["r-drops"], SINK["r-report"]
    for spec in mh.tables(section, ctx):
        merge_runs(str(out / "_runs" / spec.relprefix), str(out), spec)
    return got


@pytest.mark.job
def test_ranges_form_gives_the_graph_forms_outcome(tmp_path):
    docs, expect = corpus()
    graph = _graph_form(docs, tmp_path / "graph")
    ranges = _ranges_form(docs, tmp_path / "ranges")
    assert {d.id for d in ranges["drops"]} == set(expect["dup_of"])
    assert sorted(map(repr, ranges["drops"])) == sorted(map(repr, graph["drops"]))
    assert sorted(map(repr, ranges["report"])) == sorted(map(repr, graph["report"]))
    made = sorted((tmp_path / "graph" / "index").glob("*.parquet"))
    assert len(made) == 2 * defaults()["index"]["shards"]
    for path in made:
        assert (tmp_path / "ranges" / "index" / path.name).read_bytes() == path.read_bytes()
