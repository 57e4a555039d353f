"""The end of a local run: one small pipeline once every partition's documents are written.

The phases staged, per partition and per KEYS stage, their drops, dead letters and a summary
of counts, inputs and report rows; here those become the release's drops and dead-letter
tables, its counts and report rows (merged across partitions: numbers add up, a stage's own
rows by its `merge_report`), and the training steps run over the written documents. The
release is the one a single pipeline (graph.build) would write.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any

import apache_beam as beam

from gristmill.pipelines import graph
from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.phases.front import DEAD, DROPS
from gristmill.pipelines.phases.staged import ReadStaged, release_files, staged_files
from gristmill.pipelines.release.manifest import SUMMARY, read_json
from gristmill.schemas import tables
from gristmill.schemas.records import FileInfo, InputStat


def _merge(a: Any, b: Any) -> Any:
    """Two partitions' report values of one key: numbers add up, mappings merge key by key."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {
            k: _merge(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}
        }
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return a + b
    return a


def staged_summary(folders: list[str], merge=None) -> dict[str, Any]:
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
            if at not in rows:
                rows[at] = value
            else:
                rows[at] = merge(stage, key, rows[at], value) if merge else _merge(rows[at], value)
        inputs.extend(summary["inputs"])
    return {
        "tallies": sorted((k, tuple(v)) for k, v in totals.items()),
        "report": [
            (s, k, dict(sorted(v.items())) if isinstance(v, dict) else v)
            for (s, k), v in sorted(rows.items())
        ],
        "inputs": _per_file(inputs),
        "files": sorted(files, key=lambda f: f.path),
    }


def _per_file(inputs: list[dict]) -> list[InputStat]:
    """One row per input file: the pieces of a split file (plan.py) summed; its bytes and
    checksum are the first piece's, the one that read the file to its end."""
    by_file: dict[tuple[str, str], dict] = {}
    for i in inputs:
        have = by_file.get((i["source"], i["path"]))
        if have is None:
            by_file[(i["source"], i["path"])] = {**i, "skipped": dict(i["skipped"])}
            continue
        for field in ("bytes", "records", "dead_letters"):
            have[field] += i[field]
        have["sha256"] = have["sha256"] or i["sha256"]
        for kind, n in i["skipped"].items():
            have["skipped"][kind] = have["skipped"].get(kind, 0) + n
    return [
        InputStat(**{**i, "skipped": tuple(sorted(i["skipped"].items()))})
        for _, i in sorted(by_file.items())
    ]


def report_merger(cfg: JobConfig) -> Callable[[str, str, Any, Any], Any]:
    """(stage, key, a, b) -> two partitions' report values as one: the stage's own merge
    (Stage.merge_report) where it has one, else numbers add up and mappings merge."""
    by_name = {s.name: s for s in graph.enabled_stages(cfg)}

    def merge(stage: str, key: str, a: Any, b: Any) -> Any:
        own = by_name.get(stage)
        if own is not None and own.merge_report is not None:
            return own.merge_report(cfg.params_of(own.section), key, a, b)
        return _merge(a, b)

    return merge


def build_final(
    p: beam.Pipeline,
    cfg: JobConfig,
    job: graph.JobPlan,
    staged: tuple[list[str], list[str]],
    prior: dict[str, Any],
    documents: list[str],
) -> dict:
    """The release's PCollections, as graph.build returns them, once every partition's
    documents are written (`documents`: their files, read again only by the training steps):
    the phases' drops and dead letters (`staged`: every folder that staged some) into the
    release's tables, their counts, inputs and report rows (`prior`, staged_summary), and the
    training steps. `staged`: the folders that staged drops, and those that staged dead letters."""
    dropped, dead_in = staged
    drops = (
        p
        | "Staged/drops" >> beam.Create(staged_files(dropped, DROPS))
        | "ReadDrops" >> beam.ParDo(ReadStaged(tables.drop_from_row))
    )
    dead = (
        p
        | "Staged/dead" >> beam.Create(staged_files(dead_in, DEAD))
        | "ReadDeadLetters" >> beam.ParDo(ReadStaged(tables.dead_letter_from_row))
    )
    got = graph.Collected(
        [drops],
        [p | "PriorTallies" >> beam.Create(prior["tallies"])],
        [p | "PriorFiles" >> beam.Create(prior["files"])],
        [p | "PriorReports" >> beam.Create(prior["report"])],
    )
    steps = graph.enabled_steps(cfg)
    docs = p | "Staged/documents" >> beam.Create(documents if steps else [])
    docs = docs | "ReadDocuments" >> beam.ParDo(ReadStaged(tables.document_from_row, True))
    inputs = p | "Inputs" >> beam.Create(prior["inputs"])
    return graph.finish_graph(p, docs, cfg, job, got, dead, inputs, doc_sink=False)
