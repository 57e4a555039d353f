"""The `paragraphs` section: which units are counted, how often is too often, and when a document
is left with too little to keep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gristmill.transforms.dedup.paragraphs_text import UNITS
from gristmill.transforms.params import option
from gristmill.transforms.stage import StageContext

SCOPES = ("corpus", "source")


@dataclass(frozen=True)
class ParagraphsParams:
    """Units (paragraphs or lines) found in at least `min_documents` documents are removed from
    every document but one: the survivor, by the dedup section's rule (lowest id, or
    `source_priority` then lowest id). A document left with less than `min_kept_share` of its
    text bytes, or fewer than `min_kept_bytes`, is dropped (`mostly_repeated`), unless it is the
    survivor of some repeated unit: the first occurrence always stays."""

    enabled: bool = option(True, "run the stage")
    unit: str = option("paragraph", "paragraph (text between blank lines) | line", choices=UNITS)
    min_documents: int = option(
        3, "a unit in at least this many documents leaves all of them but its survivor", min=2
    )
    min_chars: int = option(
        20, "units shorter than this once normalized are never counted or removed", min=1
    )
    kinds: tuple[str, ...] = option(
        ("web", "mail"),
        "source kinds whose documents are counted and edited (books and articles repeat "
        "legitimately: refrains, formulae, stage directions)",
    )
    scope: str = option(
        "corpus", "corpus: counted over every source | source: within each source", choices=SCOPES
    )
    min_kept_share: float = option(
        0.2, "a document left with less than this share of its text bytes is dropped", min=0, max=1
    )
    min_kept_bytes: int = option(1, "...or with fewer text bytes than this", min=0)
    report_top: int = option(10, "most repeated units listed in the run report", min=1)


class Rank:
    """The survivor rule of the dedup section: (priority, id), the smaller survives. Picklable;
    without a dedup section (tests), lowest id."""

    def __init__(self, ctx: StageContext):
        dedup: Any = ctx.sections.get("dedup")
        get = dedup.get if isinstance(dedup, dict) else lambda k, d: getattr(dedup, k, d)
        self.by_priority = get("survivor", "lowest_id") == "source_priority"
        self.priority = tuple(get("source_priority", ()))

    def __call__(self, source: str, doc_id: str) -> tuple[int, str]:
        if self.by_priority:
            prio = self.priority
            return (prio.index(source) if source in prio else len(prio), doc_id)
        return (0, doc_id)


def scanned(params: ParagraphsParams, ctx: StageContext) -> frozenset[str]:
    """The sources whose documents are counted and edited (their kind is listed)."""
    return frozenset(source for source, kind in ctx.kinds.items() if kind in params.kinds)
