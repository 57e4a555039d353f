"""The rest of a local run, after phase 1: one pipeline over the partitions' staged outputs.

It reads the staged documents back (Parquet row groups, a batch at a time), runs the stages
from the first that needs every document's keys (dedup) to the end, makes the training data,
and writes the release's tables; the partitions' drops, dead letters, counts, inputs and
report rows join the ones it makes, so the release is the one a single pipeline would write.
"""

from __future__ import annotations

import posixpath
from typing import Any

import apache_beam as beam

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases.front import DEAD, DOCUMENTS, DROPS
from gristmill.pipelines.phases.staged import (
    ReadStaged,
    SkipListed,
    SpillRuns,
    doc_size,
    release_files,
    staged_files,
)
from gristmill.pipelines.release.manifest import SUMMARY, read_json
from gristmill.schemas import tables
from gristmill.schemas.records import FileInfo, InputStat
from gristmill.transforms.stage import Stage


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
    """The phases' summaries as one: tallies summed, inputs listed, report rows merged; the
    release files they wrote (not their staged tables: those are read again)."""
    totals: dict[tuple, list[int]] = {}
    rows: dict[tuple[str, str], Any] = {}
    inputs: list[dict] = []
    files: list[FileInfo] = []
    for folder in folders:
        summary = read_json(posixpath.join(folder, SUMMARY))
        files.extend(release_files(summary))
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
        "files": sorted(files, key=lambda f: f.path),
    }


def build_rest(
    p: beam.Pipeline,
    cfg: JobConfig,
    job: graph.JobPlan,
    folders: list[str],
    prior: dict[str, Any],
    stages: list[Stage],
    keyed: list[str] = (),
    runs: str | None = None,
) -> dict:
    """The release's PCollections, as graph.build returns them, from the staged partitions
    (`prior`: their summaries as one, staged_summary) through the remaining `stages`; `keyed`:
    phase 2's folders, whose drops are left out and whose files the release lists; `runs`: the
    documents are written there as sorted runs, not grouped into shards in memory."""
    staged = lambda name: p | f"Staged/{name}" >> beam.Create(staged_files(folders, name))  # noqa: E731
    docs = staged(DOCUMENTS) | "ReadDocuments" >> beam.ParDo(
        ReadStaged(tables.document_from_row, True)
    )
    if keyed:  # the documents phase 2's stages dropped, by id
        docs = docs | "SkipDropped" >> beam.ParDo(SkipListed(staged_files(keyed, DROPS)))
    drops = (
        p
        | "Staged/drops" >> beam.Create(staged_files([*folders, *keyed], DROPS))
        | "ReadDrops" >> beam.ParDo(ReadStaged(tables.drop_from_row))
    )
    dead = staged(DEAD) | "ReadDeadLetters" >> beam.ParDo(ReadStaged(tables.dead_letter_from_row))
    got = graph.Collected(
        [drops],
        [p | "PriorTallies" >> beam.Create(prior["tallies"])],
        [p | "PriorFiles" >> beam.Create(prior["files"])],
        [p | "PriorReports" >> beam.Create(prior["report"])],
    )
    docs = graph.run_stages(docs, cfg, got, stages)
    inputs = p | "Inputs" >> beam.Create(prior["inputs"])
    sink = SpillRuns(runs, graph.document_shards(cfg, job), doc_size) if runs else None
    return graph.finish_graph(p, docs, cfg, job, got, dead, inputs, sink)
