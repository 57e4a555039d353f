"""The stage protocol: what a stage is, what it may know of the job, and what it needs.

A stage is one `Stage` object, made in the stage's own module and listed once in the registry
(pipelines/registry.py). It names the stage (counters, drops, manifest), its config section,
the frozen parameters dataclass that holds the section's defaults and checks (transforms/
params.py), and the function that builds its Beam transform from those parameters. The job,
the config loader, the manifest, the run report and the live progress read only these objects.

`needs` says what a stage must see, which is what lets a job be cut into phases:
- DOCUMENT: one document at a time, so it runs inside any slice of the input;
- KEYS: every document's compact keys at once (the dedup stages);
- CORPUS: the clean corpus after every document stage (the training data: tokenizer, shards).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam

from gristmill.schemas.records import Document, Drop

IN, KEPT, DROPPED = "in", "kept", "dropped"


class Needs(enum.Enum):
    DOCUMENT = "document"
    KEYS = "keys"
    CORPUS = "corpus"


@dataclass(frozen=True)
class Cost:
    """The live ETA's prior for a stage: wall ms per MB reaching it and fixed seconds, for one
    worker and for several. Only ratios between stages matter (the run's speed scales them);
    fitted by bench/progress_fit.py."""

    ms_per_mb: float = 80.0
    fixed_s: float = 0.0
    ms_per_mb_parallel: float | None = None
    fixed_s_parallel: float | None = None

    def for_workers(self, workers: int) -> tuple[float, float]:
        if workers <= 1 or self.ms_per_mb_parallel is None:
            return self.ms_per_mb, self.fixed_s
        return self.ms_per_mb_parallel, self.fixed_s_parallel or 0.0


@dataclass(frozen=True)
class StageContext:
    """What a stage may know of the job beyond its own parameters."""

    stage: str
    output: str  # the release root, on any Beam filesystem
    seed: int
    kinds: Mapping[str, str]  # source name -> source kind
    sections: Mapping[str, Any] = field(default_factory=dict)  # section -> parameters, all of them
    # a local run's partition: sharded tables go here as sorted runs (sorted_runs.ShardedTable)
    spill: str | None = None


# A KEYS stage's records read again, a fresh read per label (a local run's phase 2). The
# in-process runner holds in memory every collection that a step waiting for a side input
# consumes; a step that waits (applying verdicts, a report's snippets) then takes its own read,
# which streams past once the side input is ready, never the whole collection held.
Rereads = Callable[[str], Any]


def _enabled_field(params: Any) -> bool:
    return bool(getattr(params, "enabled", False))


def _as_recorded(params: Any) -> dict[str, Any]:
    from gristmill.transforms.params import as_dict

    return as_dict(params)


@dataclass(frozen=True)
class Stage:
    """One stage of the flow (or one step of the training data made from its output).

    `build(params, ctx)` returns a transform from documents to (kept, drops) or (kept, drops,
    extras) for DOCUMENT and KEYS stages; for CORPUS steps `build(params, ctx, docs, made)`
    returns a dict of PCollections ("files", "report" and what later steps use, which the job
    passes on in `made`).
    """

    name: str
    section: str
    params: type
    build: Callable[..., Any]
    needs: Needs = Needs.DOCUMENT
    enabled: Callable[[Any], bool] = _enabled_field
    cost: Cost = field(default_factory=Cost)
    # what the manifest records of the section (a secret replaced by its fingerprint)
    recorded: Callable[[Any], dict[str, Any]] = _as_recorded
    # checks against the other sections' parameters, before any work: {section: params}
    check_job: Callable[[Any, Mapping[str, Any]], None] | None = None
    # report shapes its rows take in the run report ("clusters", "languages", ...)
    report: tuple[str, ...] = ()
    # the documents table's folder for a document (e.g. en/), when the stage asks for one
    output_partition: Callable[[Any], Callable[[Document], str] | None] | None = None
    # one line for `gristmill run --help` and the README's stage list
    summary: str = ""
    # KEYS stages, in two parts (transforms/dedup/keyed.py): `keys(params, ctx)` documents ->
    # one compact record each; `on_keys(params, ctx)` records -> (kept records, drops, extras)
    keys: Callable[..., Any] | None = None
    on_keys: Callable[..., Any] | None = None
    # the sharded tables the stage writes (`tables(params, ctx)` -> sorted_runs.ShardSpecs):
    # in a local run's partitions they are spilled as sorted runs and merged after
    tables: Callable[..., list] | None = None
    # one report row's values from two partitions as one (`merge_report(params, key, a, b)`);
    # without it numbers add up and mappings merge key by key
    merge_report: Callable[[Any, str, Any, Any], Any] | None = None


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
            drop = Drop(doc.id, doc.source, self.stage, reason, detail, doc.url_or_path)
            yield beam.pvalue.TaggedOutput(DROPPED, drop)


class FilterStage(beam.PTransform):
    """A stage made of one DocFilter: (kept, drops)."""

    def __init__(self, dofn: DocFilter):
        super().__init__()
        self.dofn = dofn

    def expand(self, docs):
        out = docs | "Check" >> beam.ParDo(self.dofn).with_outputs(DROPPED, main=KEPT)
        return out[KEPT], out[DROPPED]
