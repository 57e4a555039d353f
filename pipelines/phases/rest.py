"""The rest of a local run, after phase 1: one pipeline over the partitions' staged outputs.

It reads the staged documents back (Parquet row groups, a batch at a time), runs the stages
from the first that needs every document's keys (dedup) to the end, makes the training data,
and writes the release's tables; the partitions' drops, dead letters, counts, inputs and
report rows join the ones it makes, so the release is the one a single pipeline would write.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases.front import DEAD, DOCUMENTS, DROPS
from gristmill.pipelines.release.manifest import SUMMARY, read_json
from gristmill.schemas import tables
from gristmill.schemas.records import InputStat
from gristmill.transforms.accounting import text_bytes
from gristmill.transforms.sinks import shard_name
from gristmill.transforms.stage import Stage

BATCH_ROWS = 1024


class ReadStaged(beam.DoFn):
    """A staged Parquet file -> its rows as records, one bounded batch at a time. Documents are
    counted as the read stage counts them (`read.<source>` bytes, documents): what the live
    progress reads."""

    def __init__(self, from_row: Callable[[dict], Any], counted: bool = False):
        self.from_row = from_row
        self.counted = counted

    def setup(self):
        self._counters: dict[str, tuple[Any, Any]] = {}

    def process(self, path: str) -> Iterator[Any]:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=BATCH_ROWS):
                for row in batch.to_pylist():
                    record = self.from_row(row)
                    if self.counted:
                        self._count(record)
                    yield record

    def _count(self, doc) -> None:
        pair = self._counters.get(doc.source)
        if pair is None:
            ns = f"read.{doc.source}"
            pair = Metrics.counter(ns, "bytes"), Metrics.counter(ns, "documents")
            self._counters[doc.source] = pair
        pair[0].inc(text_bytes(doc.text))
        pair[1].inc()


def _files(folders: list[str], name: str) -> list[str]:
    """Each partition's one file of a staged table (front.py writes it as shard 0 of 1)."""
    return [posixpath.join(f, shard_name(name, 0, 1, ".parquet")) for f in folders]


def _merge(a: Any, b: Any) -> Any:
    """Two partitions' report values of one key: numbers add up, mappings merge key by key."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {
            k: _merge(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}
        }
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return a + b
    return a


def staged_summary(folders: list[str]) -> dict[str, Any]:
    """The partitions' summaries as one: tallies summed, inputs listed, report rows merged."""
    totals: dict[tuple, list[int]] = {}
    rows: dict[tuple[str, str], Any] = {}
    inputs: list[dict] = []
    for folder in folders:
        summary = read_json(posixpath.join(folder, SUMMARY))
        for key, (n, nbytes) in summary["totals"]:
            got = totals.setdefault(tuple(key), [0, 0])
            got[0] += n
            got[1] += nbytes
        for stage, key, value in summary["report"]:
            at = (stage, key)
            rows[at] = _merge(rows[at], value) if at in rows else value
        inputs.extend(summary["inputs"])
    return {
        "tallies": sorted((k, tuple(v)) for k, v in totals.items()),
        "report": [
            (s, k, dict(sorted(v.items())) if isinstance(v, dict) else v)
            for (s, k), v in sorted(rows.items())
        ],
        "inputs": [
            InputStat(**{**i, "skipped": tuple(sorted(i["skipped"].items()))}) for i in inputs
        ],
    }


def build_rest(
    p: beam.Pipeline,
    cfg: JobConfig,
    job: graph.JobPlan,
    folders: list[str],
    prior: dict[str, Any],
    stages: list[Stage],
) -> dict:
    """The release's PCollections, as graph.build returns them, from the staged partitions
    (`prior`: their summaries as one, staged_summary) through the remaining `stages`."""
    staged = lambda name: p | f"Staged/{name}" >> beam.Create(_files(folders, name))  # noqa: E731
    docs = staged(DOCUMENTS) | "ReadDocuments" >> beam.ParDo(
        ReadStaged(tables.document_from_row, True)
    )
    drops = staged(DROPS) | "ReadDrops" >> beam.ParDo(ReadStaged(tables.drop_from_row))
    dead = staged(DEAD) | "ReadDeadLetters" >> beam.ParDo(ReadStaged(tables.dead_letter_from_row))
    got = graph.Collected(
        [drops],
        [p | "PriorTallies" >> beam.Create(prior["tallies"])],
        [],
        [p | "PriorReports" >> beam.Create(prior["report"])],
    )
    docs = graph.run_stages(docs, cfg, got, stages)
    inputs = p | "Inputs" >> beam.Create(prior["inputs"])
    return graph.finish_graph(p, docs, cfg, job, got, dead, inputs)
