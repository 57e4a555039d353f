"""The corpus job: sources -> stages -> clean documents, drops and dead letters.

A new stage is one module in transforms/ and one entry in STAGES.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import apache_beam as beam

from gristmill.pipelines.config import JobConfig
from gristmill.pipelines.report import AFTER, BEFORE, LengthHistogram
from gristmill.pipelines.tokenizer import TrainingPlan, add_training_data, plan_training
from gristmill.runners import is_local
from gristmill.schemas import tables
from gristmill.schemas.records import InputStat
from gristmill.transforms import dedup_exact
from gristmill.transforms.accounting import IN, KEPT, Accounted, CountDocs, CountDrops, StageContext
from gristmill.transforms.sinks import WritePartitionedParquet, WriteShardedParquet
from gristmill.transforms.sources import reader_for
from gristmill.transforms.sources.read import READ_STAGE, MatchedFile, ReadFiles, match_inputs

# Flow order: (stage name, config section, module). The module follows the stage protocol of
# transforms/accounting.py. A new stage is one module in transforms/ and one line here.
STAGES: list[tuple[str, str, str]] = [
    ("normalize", "normalize", "gristmill.transforms.normalize"),
    ("langid", "langid", "gristmill.transforms.langid"),
    ("quality", "quality", "gristmill.transforms.quality"),
    ("dedup_parent", "refresh", "gristmill.transforms.parent_dedup"),  # refresh runs only
    ("dedup_exact", "dedup", "gristmill.transforms.dedup_exact"),
    ("dedup_near", "dedup", "gristmill.transforms.minhash"),
    ("pii", "pii", "gristmill.transforms.pii"),
]


# Configured like stages but not document stages: the training data made from the clean documents.
TRAINING_SECTIONS: list[tuple[str, str]] = [
    ("tokenizer", "gristmill.transforms.tokenize"),
    ("mlm", "gristmill.transforms.mlm"),
]


def stage_module(path: str) -> ModuleType:
    return importlib.import_module(path)


def stage_enabled(cfg: JobConfig, section: str, module: ModuleType) -> bool:
    values = cfg.section(section)
    check = getattr(module, "enabled", None)
    return bool(check(values) if check else values.get("enabled", False))


def enabled_stages(cfg: JobConfig) -> list[tuple[str, str, ModuleType]]:
    out = []
    for name, section, path in STAGES:
        module = stage_module(path)
        if stage_enabled(cfg, section, module):
            out.append((name, section, module))
    return out


@dataclass(frozen=True)
class JobPlan:
    """What the driver settles before the pipeline starts: the inputs and the shard counts."""

    files: dict[str, list[MatchedFile]]
    input_bytes: int
    document_shards: int
    drop_shards: int
    stages: list[str]
    training: TrainingPlan | None = None


def plan(cfg: JobConfig, skip: Callable[[dict], dict] | None = None) -> JobPlan:
    """`skip`: drops input files before the plan is made (a refresh's already-read inputs)."""
    files = {s.name: match_inputs(s.paths) for s in cfg.sources}
    if skip is not None:
        files = skip(files)
    total = sum(f.size for group in files.values() for f in group)
    shards = cfg.section("shards")
    doc_shards = shards["documents"] or max(1, math.ceil(total / shards["target_bytes"]))
    stages = [READ_STAGE] + [name for name, _, _ in enabled_stages(cfg)]
    training = plan_training(cfg.section("tokenizer"), cfg.section("mlm"))
    return JobPlan(files, total, doc_shards, max(1, math.ceil(doc_shards / 16)), stages, training)


def _input_tally(stat: InputStat):
    return (READ_STAGE, stat.source, IN, ""), (stat.records, stat.bytes)


def _sum_pairs(pairs):
    docs = nbytes = 0
    for d, b in pairs:
        docs += d
        nbytes += b
    return docs, nbytes


def _doc_id(doc) -> str:
    return doc.id


def _lang_folder(doc) -> str:
    return f"lang={doc.lang or 'und'}"


def build(p: beam.Pipeline, cfg: JobConfig, job: JobPlan) -> dict[str, beam.PCollection]:
    """Adds the whole job to `p`; returns the PCollections the release summary needs."""
    limits = cfg.section("read")
    docs_parts, drops, dead, inputs = [], [], [], []
    for source in cfg.sources:
        out = (
            p
            | f"Files/{source.name}" >> beam.Create(job.files[source.name])
            | f"Spread/{source.name}" >> beam.Reshuffle()
            | f"Read/{source.name}"
            >> beam.ParDo(
                ReadFiles(source.name, reader_for(source.kind), source.options, limits)
            ).with_outputs("drops", "dead", "inputs", main="docs")
        )
        docs_parts.append(out.docs)
        drops.append(out.drops)
        dead.append(out.dead)
        inputs.append(out.inputs)

    docs = docs_parts | "ReadDocs" >> beam.Flatten()
    read_drops = drops | "ReadDrops" >> beam.Flatten()
    input_stats = inputs | "InputStats" >> beam.Flatten()
    tallies = [
        input_stats | "CountRead/In" >> beam.Map(_input_tally),
        docs | "CountRead/Kept" >> beam.ParDo(CountDocs(READ_STAGE, KEPT)),
        read_drops | "CountRead/Dropped" >> beam.ParDo(CountDrops(READ_STAGE)),
    ]
    all_drops = [read_drops]
    stage_files: list[beam.PCollection] = []
    # document lengths as read and as kept, for the run report's before/after histograms
    reports: list[beam.PCollection] = [docs | "CountRead/Lengths" >> LengthHistogram(BEFORE)]
    kinds = {s.name: s.kind for s in cfg.sources}
    # the live ETA (local runs only) samples the exact-duplicate rate while the input is read
    local = is_local(cfg.section("runner"))
    sample = dedup_exact.sample_per_char(job.input_bytes) if local else 0.0
    for name, section, module in enabled_stages(cfg):
        ctx = StageContext(name, cfg.output, cfg.raw["seed"], kinds, sample)
        transform = module.build(cfg.section(section), ctx)
        result = docs | name.capitalize() >> Accounted(name, transform)
        docs = result.kept
        all_drops.append(result.drops)
        tallies.extend(result.tallies)
        stage_files.extend(v for k, v in result.extras.items() if k == "files")
        reports.extend(v for k, v in result.extras.items() if k == "report")
    reports.append(docs | "Lengths/Documents" >> LengthHistogram(AFTER))

    training = add_training_data(
        p,
        docs,
        cfg.section("tokenizer"),
        cfg.section("mlm"),
        StageContext(stage="mlm", output=cfg.output, seed=cfg.raw["seed"], kinds=kinds),
        job.training,
    )
    stage_files.extend(v for k, v in training.items() if k == "files")
    reports.extend(v for k, v in training.items() if k == "report")

    root = cfg.output
    doc_args = (
        root,
        "documents/part",
        job.document_shards,
        tables.documents_table,
        _doc_id,
        _doc_id,
    )
    if cfg.enabled("langid") and cfg.section("langid").get("partition_output"):
        doc_sink = WritePartitionedParquet(*doc_args, partition=_lang_folder)
    else:
        doc_sink = WriteShardedParquet(*doc_args)
    doc_files = docs | "WriteDocuments" >> doc_sink
    drop_files = (
        all_drops
        | "AllDrops" >> beam.Flatten()
        | "WriteDrops"
        >> WriteShardedParquet(
            root,
            "drops/part",
            job.drop_shards,
            tables.drops_table,
            lambda d: d.id,
            lambda d: (d.id, d.stage),
        )
    )
    dead_files = (
        dead
        | "AllDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters"
        >> WriteShardedParquet(
            root,
            "dead_letters/part",
            1,
            tables.dead_letters_table,
            lambda d: d.file,
            lambda d: (d.source, d.file, d.offset, d.error, d.detail),
        )
    )
    totals = (
        tallies | "AllTallies" >> beam.Flatten() | "SumTallies" >> beam.CombinePerKey(_sum_pairs)
    )
    files = (doc_files, drop_files, dead_files, *stage_files) | "AllFiles" >> beam.Flatten()
    report = (
        reports | "AllReports" >> beam.Flatten() if reports else p | "NoReports" >> beam.Create([])
    )
    return {
        "totals": totals,
        "files": files,
        "inputs": input_stats,
        "report": report,
        "docs": docs,
        "tokenizer": training.get("tokenizer"),
    }
