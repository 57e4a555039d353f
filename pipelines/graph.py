"""The corpus job's graph: sources -> the registry's stages -> tables, training data, summary.

Nothing here names a stage: the stages, their order, their parameters and what they make come
from the registry (pipelines/registry.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import apache_beam as beam

from gristmill.pipelines import registry
from gristmill.pipelines.config import ConfigError, JobConfig
from gristmill.pipelines.release.manifest import pii_section
from gristmill.pipelines.report.run import AFTER, BEFORE, LengthHistogram
from gristmill.schemas import tables
from gristmill.schemas.records import InputStat
from gristmill.transforms.accounting import Accounted, CountDocs, CountDrops
from gristmill.transforms.sinks import WritePartitionedParquet, WriteShardedParquet
from gristmill.transforms.sorted_runs import ShardSpec
from gristmill.transforms.sources import reader_for
from gristmill.transforms.sources.read import READ_STAGE, MatchedFile, ReadFiles, match_inputs
from gristmill.transforms.stage import IN, KEPT, Stage, StageContext


def enabled_stages(cfg: JobConfig) -> list[Stage]:
    """The registry's document stages this job runs, in flow order."""
    return [s for s in registry.document_stages() if s.enabled(cfg.params_of(s.section))]


def enabled_steps(cfg: JobConfig) -> list[Stage]:
    """The registry's corpus steps (training data) this job runs, in order."""
    return [s for s in registry.corpus_steps() if s.enabled(cfg.params_of(s.section))]


def check_across(cfg: JobConfig) -> None:
    """Each stage's checks against the other sections (e.g. shards need a tokenizer), once the
    config is settled (a refresh points the tokenizer at its parent's first)."""
    for stage in registry.stages():
        if stage.check_job is None:
            continue
        try:
            stage.check_job(cfg.params_of(stage.section), cfg.params)
        except ValueError as err:
            raise ConfigError(f"{stage.section}.{err}") from None


@dataclass(frozen=True)
class JobPlan:
    """What the driver settles before the pipeline starts: the inputs and the shard counts."""

    files: dict[str, list[MatchedFile]]
    input_bytes: int
    document_shards: int
    drop_shards: int
    stages: list[str]  # "read", then the enabled document stages
    steps: list[str]  # the enabled corpus steps


def plan(cfg: JobConfig, skip: Callable[[dict], dict] | None = None) -> JobPlan:
    """`skip`: drops input files before the plan is made (a refresh's already-read inputs)."""
    check_across(cfg)
    files = {s.name: match_inputs(s.paths) for s in cfg.sources}
    if skip is not None:
        files = skip(files)
    total = sum(f.size for group in files.values() for f in group)
    shards = cfg.section("shards")
    doc_shards = shards["documents"] or max(1, math.ceil(total / shards["target_bytes"]))
    stages = [READ_STAGE] + [s.name for s in enabled_stages(cfg)]
    steps = [s.name for s in enabled_steps(cfg)]
    return JobPlan(files, total, doc_shards, max(1, math.ceil(doc_shards / 16)), stages, steps)


def _input_tally(stat: InputStat):
    return (READ_STAGE, stat.source, IN, ""), (stat.records, stat.bytes)


def _sum_pairs(pairs):
    docs = nbytes = 0
    for d, b in pairs:
        docs += d
        nbytes += b
    return docs, nbytes


def doc_id(doc) -> str:
    return doc.id


def doc_order(doc) -> tuple:
    """Documents in a shard: by id, then by every field, so that copies sharing an id (a
    source may repeat one) come out in one order however they arrived."""
    meta = tables.meta_json(doc.meta)
    return (doc.id, doc.source, doc.url_or_path, doc.text, doc.lang, doc.lang_score, meta)


@dataclass
class Collected:
    """What the graph gathers on the way for the sinks and the summary."""

    drops: list[beam.PCollection]
    tallies: list[beam.PCollection]
    files: list[beam.PCollection]
    reports: list[beam.PCollection]

    def extras(self, extras: dict[str, beam.PCollection]) -> None:
        if "files" in extras:
            self.files.append(extras["files"])
        if "report" in extras:
            self.reports.append(extras["report"])


def _read(p: beam.Pipeline, cfg: JobConfig, files: dict[str, list[MatchedFile]]):
    """Every source's files read: (documents, read drops, dead letters, input stats)."""
    limits = cfg.params_of("read")
    pii = pii_section(cfg)  # dead letters name their file scrubbed as url_or_path is
    docs, drops, dead, inputs = [], [], [], []
    for source in cfg.sources:
        out = (
            p
            | f"Files/{source.name}" >> beam.Create(files.get(source.name, []))
            | f"Spread/{source.name}" >> beam.Reshuffle()
            | f"Read/{source.name}"
            >> beam.ParDo(
                ReadFiles(source.name, reader_for(source.kind), source.options, limits, pii=pii)
            ).with_outputs("drops", "dead", "inputs", main="docs")
        )
        docs.append(out.docs)
        drops.append(out.drops)
        dead.append(out.dead)
        inputs.append(out.inputs)
    return (
        docs | "ReadDocs" >> beam.Flatten(),
        drops | "ReadDrops" >> beam.Flatten(),
        dead | "AllDeadLetters" >> beam.Flatten(),
        inputs | "InputStats" >> beam.Flatten(),
    )


def stage_context(cfg: JobConfig, name: str) -> StageContext:
    kinds = {s.name: s.kind for s in cfg.sources}
    return StageContext(name, cfg.output, cfg.raw["seed"], kinds, cfg.params)


def read_and_count(p: beam.Pipeline, cfg: JobConfig, files: dict, got: Collected):
    """The sources read and the read stage counted: (documents, dead letters, input stats)."""
    docs, read_drops, dead, input_stats = _read(p, cfg, files)
    got.drops.append(read_drops)
    got.tallies.extend(
        [
            input_stats | "CountRead/In" >> beam.Map(_input_tally),
            docs | "CountRead/Kept" >> beam.ParDo(CountDocs(READ_STAGE, KEPT)),
            read_drops | "CountRead/Dropped" >> beam.ParDo(CountDrops(READ_STAGE)),
        ]
    )
    # document lengths as read and as kept, for the run report's before/after histograms
    got.reports.append(docs | "CountRead/Lengths" >> LengthHistogram(BEFORE))
    return docs, dead, input_stats


def run_stages(docs, cfg: JobConfig, got: Collected, stages: list[Stage], spill: str | None = None):
    """The given stages in order, each wrapped in its accounting; the documents kept. `spill`:
    where their sharded tables go as sorted runs (a local run's partition)."""
    for stage in stages:
        ctx = dataclasses.replace(stage_context(cfg, stage.name), spill=spill)
        transform = stage.build(cfg.params_of(stage.section), ctx)
        result = docs | stage.name.capitalize() >> Accounted(stage.name, transform)
        docs = result.kept
        got.drops.append(result.drops)
        got.tallies.extend(result.tallies)
        got.extras(result.extras)
    return docs


class _Step(beam.PTransform):
    """One corpus step, labelled by its name (the live progress reads the label)."""

    def __init__(self, step: Stage, params, ctx: StageContext, made: dict):
        super().__init__()
        self.step, self.params, self.ctx, self.made = step, params, ctx, made

    def expand(self, docs):
        return self.step.build(self.params, self.ctx, docs, self.made)


def _steps(docs, cfg: JobConfig, got: Collected) -> dict[str, beam.PCollection]:
    """The corpus steps in order, each given what the earlier ones made."""
    made: dict[str, beam.PCollection] = {}
    for step in enabled_steps(cfg):
        ctx = stage_context(cfg, step.name)
        out = docs | step.name.capitalize() >> _Step(step, cfg.params_of(step.section), ctx, made)
        made.update(out)
        got.extras(out)
    return made


def document_shards(cfg: JobConfig, job: JobPlan) -> ShardSpec:
    """The documents table: its shards, their order, and its folder per partition if a stage
    asks for one."""
    pick = None
    for stage in enabled_stages(cfg):
        pick = stage.output_partition and stage.output_partition(cfg.params_of(stage.section))
        if pick:
            break
    return ShardSpec(
        "documents/part",
        job.document_shards,
        tables.documents_table,
        tables.document_from_row,
        doc_id,
        doc_order,
        pick or None,
    )


def _document_sink(cfg: JobConfig, job: JobPlan) -> beam.PTransform:
    spec = document_shards(cfg, job)
    args = (cfg.output, spec.relprefix, spec.num_shards, spec.to_table, doc_id, doc_order)
    if spec.partition:
        return WritePartitionedParquet(*args, partition=spec.partition)
    return WriteShardedParquet(*args)


def drop_order(d) -> tuple:
    return (d.id, d.stage)


def drop_key(d) -> str:
    return d.id


def dead_order(d) -> tuple:
    return (d.source, d.file, d.offset, d.error, d.detail)


def dead_key(d) -> str:
    return d.file


class ScrubDropPaths(beam.DoFn):
    """Drops with `url_or_path` scrubbed by the pii engine (transforms/pii/outside.py): one
    engine call per bundle for its distinct paths, as the pii stage scans in batches."""

    def __init__(self, section: dict):
        self.section = section

    def start_bundle(self):
        self._buffer: list = []

    def process(self, drop, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        self._buffer.append((drop, window, timestamp))
        if len(self._buffer) >= self.section["batch_docs"]:
            yield from self._flush()

    def finish_bundle(self):
        yield from self._flush()

    def _flush(self):
        from apache_beam.utils.windowed_value import WindowedValue

        from gristmill.transforms.pii.outside import scrub_strings

        batch, self._buffer = self._buffer, []
        paths = sorted({d.url_or_path for d, _, _ in batch if d.url_or_path})
        shown = dict(zip(paths, scrub_strings(self.section, paths), strict=True)) if paths else {}
        for drop, window, ts in batch:
            if drop.url_or_path:
                drop = dataclasses.replace(drop, url_or_path=shown[drop.url_or_path])
            yield WindowedValue(drop, ts, [window])


def sum_tallies(tallies: list[beam.PCollection]) -> beam.PCollection:
    return tallies | "AllTallies" >> beam.Flatten() | "SumTallies" >> beam.CombinePerKey(_sum_pairs)


def finish_graph(
    p, docs, cfg: JobConfig, job: JobPlan, got: Collected, dead, inputs, doc_sink=None
) -> dict:
    """After the document stages: the training steps, the release's tables and the summary's
    PCollections. `doc_sink`: what writes the documents (default: the sharded Parquet sink);
    False: they are written already, and their lengths counted."""
    if doc_sink is not False:
        got.reports.append(docs | "Lengths/Documents" >> LengthHistogram(AFTER))
    made = _steps(docs, cfg, got)
    root = cfg.output
    if doc_sink is False:
        doc_files = p | "DocumentsWritten" >> beam.Create([])
    else:
        doc_files = docs | "WriteDocuments" >> (doc_sink or _document_sink(cfg, job))
    drops = got.drops | "AllDrops" >> beam.Flatten()
    section = pii_section(cfg)
    if section is not None:  # drops name their document's place scrubbed as documents do
        drops = drops | "ScrubDropPaths" >> beam.ParDo(ScrubDropPaths(section))
    drop_files = drops | "WriteDrops" >> WriteShardedParquet(
        root, "drops/part", job.drop_shards, tables.drops_table, drop_key, drop_order
    )
    dead_files = dead | "WriteDeadLetters" >> WriteShardedParquet(
        root, "dead_letters/part", 1, tables.dead_letters_table, dead_key, dead_order
    )
    files = (doc_files, drop_files, dead_files, *got.files) | "AllFiles" >> beam.Flatten()
    return {
        "totals": sum_tallies(got.tallies),
        "files": files,
        "inputs": inputs,
        "report": got.reports | "AllReports" >> beam.Flatten(),
        "docs": docs,
        "tokenizer": made.get("tokenizer"),
    }


def build(p: beam.Pipeline, cfg: JobConfig, job: JobPlan) -> dict[str, beam.PCollection]:
    """Adds the whole job to `p` as one pipeline (the distributed runners); returns the
    PCollections the release summary needs."""
    got = Collected([], [], [], [])
    docs, dead, inputs = read_and_count(p, cfg, job.files, got)
    docs = run_stages(docs, cfg, got, enabled_stages(cfg))
    return finish_graph(p, docs, cfg, job, got, dead, inputs)
