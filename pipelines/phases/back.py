"""Phase 3 of a local run: each partition's documents through the stages after the keys.

Per partition, in the worker processes: its staged documents read back, those phase 2's
stages dropped left out and their edits applied, the remaining document stages run (pii), and
the documents and the stages' sharded tables (pii findings) spilled as sorted runs that the
driver merges into the release's shards once every partition is done (merge.py). Its drops and
a summary of counts and report rows are staged beside them; the folder is marked finished
last, so a rerun skips it. Whole documents never leave the partition's process.
"""

from __future__ import annotations

import posixpath
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases import staging
from gristmill.pipelines.phases.edits import apply_edits
from gristmill.pipelines.phases.front import DOCUMENTS, DROPS
from gristmill.pipelines.phases.staged import (
    ReadStaged,
    SkipListed,
    SpillRuns,
    doc_size,
    staged_files,
)
from gristmill.pipelines.phases.timed import stage_documents, timed_pipeline
from gristmill.pipelines.release.manifest import write_summary
from gristmill.pipelines.report.run import AFTER, LengthHistogram
from gristmill.runners.local import memory
from gristmill.schemas import tables
from gristmill.schemas.records import FileInfo
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.stage import Stage

FOLDER, RUNS = "_back", "_runs"


def folders_of(area: str, names: list[str]) -> list[str]:
    """Phase 3's folder of each partition."""
    return [posixpath.join(area, FOLDER, name) for name in names]


def runs_of(folder: str) -> str:
    return posixpath.join(folder, RUNS)


def build_back(p, cfg: JobConfig, job, stages: list[Stage], item: tuple, keyed: list[str]) -> None:
    """One partition's documents from phase 1's `staged` folder through `stages` into `out`."""
    _, staged, out = item
    got = graph.Collected(
        [p | "NoDrops" >> beam.Create([])], [p | "NoTallies" >> beam.Create([])], [], []
    )
    mine = staged_files([staged], DOCUMENTS)
    docs = (
        p
        | "Staged/documents" >> beam.Create(mine)
        | "ReadDocuments" >> beam.ParDo(ReadStaged(tables.document_from_row, True))
    )
    if keyed:  # the partition's documents phase 2's stages dropped, by id, and their edits
        docs = docs | "SkipDropped" >> beam.ParDo(SkipListed(staged_files(keyed, DROPS), mine))
        docs = apply_edits(docs, keyed, mine)
    runs = runs_of(out)
    docs = graph.run_stages(docs, cfg, got, stages, spill=runs)
    got.reports.append(docs | "Lengths/Documents" >> LengthHistogram(AFTER))
    spec = graph.document_shards(cfg, job)
    _ = docs | "SpillDocuments" >> SpillRuns(posixpath.join(runs, spec.relprefix), spec, doc_size)
    drops = got.drops | "AllDrops" >> beam.Flatten()
    files = [
        p | "NoFiles" >> beam.Create([]),
        drops
        | "StageDrops"
        >> WriteShardedParquet(out, DROPS, 1, tables.drops_table, graph.drop_key, graph.drop_order),
        *got.files,
    ]
    parts = {
        "totals": graph.sum_tallies(got.tallies),
        "files": files | "AllFiles" >> beam.Flatten(),
        "inputs": p | "NoInputs" >> beam.Create([]),
        "report": [p | "NoReports" >> beam.Create([]), *got.reports]
        | "AllReports" >> beam.Flatten(),
    }
    write_summary(p, out, parts)


def _run_files(out: str) -> list[FileInfo]:
    """The runs a partition spilled, as the finished record lists them (checked on a rerun)."""
    runs = runs_of(out)
    if not FileSystems.exists(runs):
        return []
    found = FileSystems.match([posixpath.join(runs, "**.parquet")])[0].metadata_list
    made = []
    for meta in sorted(found, key=lambda m: m.path):
        n, sha = staging.file_digest(meta.path)
        made.append(FileInfo(meta.path[len(out) :].lstrip("/"), 0, n, sha))
    return made


def run_back(payload: tuple, item: tuple) -> dict:
    """One partition's phase 3 (in a worker process): its wall and stage seconds, documents
    per stage and peak memory. A finished folder is left as it is."""
    cfg, job, stages, keyed = payload
    started = time.monotonic()
    out = item[-1]
    if staging.finished(out):
        return {"seconds": 0.0, "stages": {}, "docs": {}, "peak_mb": None}
    memory.reset_peak()
    if FileSystems.exists(out):  # a killed attempt's
        FileSystems.delete([out])
    per = timed_pipeline(
        lambda p: build_back(p, cfg, job, stages, item, keyed), [s.name for s in stages]
    )
    summary = staging.finish_with_summary(out, _run_files(out))
    return {
        "seconds": time.monotonic() - started,
        "stages": per,
        "docs": stage_documents(summary),
        "peak_mb": memory.peak_mb(),
    }
