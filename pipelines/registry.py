"""The stage registry: every stage of the flow, and the training steps after it, in order.

A new stage is one module that makes a `Stage` (transforms/stage.py) and one line here. The
config loader, the job graph, the manifest, the run report and the live progress read this
list and nothing else; no other file in pipelines/ names a stage.
"""

from __future__ import annotations

from gristmill.transforms import langid, normalize
from gristmill.transforms.decontam import stage as decontam
from gristmill.transforms.dedup import exact, near, paragraphs, parent
from gristmill.transforms.pii import stage as pii
from gristmill.transforms.quality import stage as quality
from gristmill.transforms.stage import Needs, Stage
from gristmill.transforms.training import graph as training

STAGES: list[Stage] = [
    normalize.STAGE,
    langid.STAGE,
    quality.STAGE,
    decontam.STAGE,  # off by default: needs the user's evaluation sets
    parent.STAGE,  # dedup_parent: refresh runs only (refresh.parent set)
    exact.STAGE,
    near.STAGE,
    paragraphs.STAGE,  # dedup_paragraphs: web and mail by default
    pii.STAGE,
    training.TOKENIZER,
    training.SHARDS,
]


def stages() -> list[Stage]:
    """Every registered stage in flow order; the training steps (needs CORPUS) come last."""
    flow = [s for s in STAGES if s.needs is not Needs.CORPUS]
    return flow + [s for s in STAGES if s.needs is Needs.CORPUS]


def sections() -> dict[str, type]:
    """Config section -> its parameters class, in flow order. Stages that share a section
    (dedup_exact and dedup_near read `dedup`) share its class."""
    out: dict[str, type] = {}
    for stage in stages():
        known = out.setdefault(stage.section, stage.params)
        if known is not stage.params:
            raise TypeError(f"section {stage.section!r} has two parameter classes")
    return out


def document_stages() -> list[Stage]:
    """The stages documents flow through (DOCUMENT and KEYS), in order."""
    return [s for s in stages() if s.needs is not Needs.CORPUS]


def corpus_steps() -> list[Stage]:
    """The steps over the clean corpus (tokenizer, shards), in order."""
    return [s for s in stages() if s.needs is Needs.CORPUS]


def with_report(shape: str) -> list[Stage]:
    """The stages whose report rows take this shape (e.g. "privacy": the privacy report)."""
    return [s for s in stages() if shape in s.report]
