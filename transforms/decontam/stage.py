"""The decontamination stage: documents sharing an n-gram with an evaluation set leave the flow
(mode `drop`) or lose the overlapping spans (mode `cut`); the drop detail names the sets.

The index is built once per run, before any work, by `check_job` in the driver (which so also
stops the run with one line when a path matches no file or a file is not JSON lines), and
loaded in `DoFn.setup` once per worker from its cache file (index.cached_index): the graph
holds only the parameters (paths), never the index. `decide` is the whole decision on one
text, without Beam.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import SourceCounters
from gristmill.transforms.decontam.index import (
    Index,
    cached_index,
    ngram_hashes,
    normalize,
    words_with_spans,
)
from gristmill.transforms.decontam.params import DecontamParams, EvalSet
from gristmill.transforms.sources.read import NoMatch, match_inputs
from gristmill.transforms.stage import Cost, DocFilter, FilterStage, Stage, StageContext

__all__ = ["DecontamFilter", "DecontamParams", "Decision", "EvalSet", "STAGE", "decide"]

NAME = "decontam"


class Decision(NamedTuple):
    text: str  # the text to keep (cut mode may have shortened it)
    verdict: tuple[str, str] | None  # (reason, detail) when the document leaves
    matched: dict[str, int]  # set name -> n-grams of the document found in it
    cut_chars: int  # characters cut (cut mode, kept documents)


def _matched(index: Index, masks: np.ndarray) -> dict[str, int]:
    hits = masks[masks != 0]
    return {
        name: int(np.count_nonzero(hits & np.uint64(1 << bit)))
        for bit, name in enumerate(index.names)
        if np.any(hits & np.uint64(1 << bit))
    }


def _detail(matched: dict[str, int], n: int) -> str:
    return ", ".join(f"{name}: {k} {n}-grams" for name, k in matched.items())


def decide(text: str, index: Index, p: DecontamParams) -> Decision:
    """Look the document's n-grams up; drop it, cut the overlaps or keep it as it is."""
    masks = index.lookup(ngram_hashes(normalize(text), index.n))
    if not masks.any():
        return Decision(text, None, {}, 0)
    matched = _matched(index, masks)
    detail = _detail(matched, index.n)
    if p.mode == "drop":
        return Decision(text, ("contaminated", detail), matched, 0)
    words, spans = words_with_spans(text)
    masks = index.lookup(ngram_hashes(words, index.n))
    if len(words) - index.n + 1 != len(masks) or not masks.any():  # never: both read alike
        return Decision(text, ("contaminated", detail), matched, 0)
    pieces = cut(text, spans, np.flatnonzero(masks), index.n, p)
    if len(pieces) > p.max_pieces:
        return Decision(
            text, ("contaminated_pieces", f"{detail}; {len(pieces)} pieces"), matched, 0
        )
    if not pieces:
        return Decision(text, ("contaminated_all", f"{detail}; nothing left"), matched, 0)
    kept = "\n\n".join(pieces)
    return Decision(kept, None, matched, len(text) - sum(map(len, pieces)))


def cut(
    text: str, spans: list[tuple[int, int]], starts: np.ndarray, n: int, p: DecontamParams
) -> list[str]:
    """The pieces of `text` left once every matched n-gram (words `starts[i]`..+n-1) and
    `cut_margin_chars` on each side are removed; pieces under `min_piece_chars` go too."""
    removed: list[list[int]] = []
    for i in starts.tolist():
        a = max(0, spans[i][0] - p.cut_margin_chars)
        b = min(len(text), spans[i + n - 1][1] + p.cut_margin_chars)
        if removed and a <= removed[-1][1]:
            removed[-1][1] = max(removed[-1][1], b)
        else:
            removed.append([a, b])
    pieces, at = [], 0
    for a, b in removed:
        pieces.append(text[at:a])
        at = b
    pieces.append(text[at:])
    stripped = (piece.strip() for piece in pieces)
    return [piece for piece in stripped if piece and len(piece) >= p.min_piece_chars]


class DecontamFilter(DocFilter):
    """Looks each document up in the evaluation sets' n-gram index (loaded in `setup`).

    Counters per source: `matched.<set>` (documents with an n-gram of the set), `cut` and
    `cut_chars` (documents kept shorter, and the characters they lost); drops are counted by
    reason by the stage's accounting. A kept, cut document notes `decontam_cut_chars` in meta.
    """

    stage = NAME

    def __init__(self, params: DecontamParams):
        super().__init__()
        self.params = params
        self.index: Index | None = None
        self._counters = SourceCounters(self.stage)

    def setup(self) -> None:
        self.index = cached_index(self.params.sets, self.params.ngram)

    def check(self, doc: Document) -> tuple[str, str] | None:
        if self.index is None:  # called outside a pipeline (tests): load now
            self.setup()
        text, verdict, matched, cut_chars = decide(doc.text, self.index, self.params)
        for name in matched:
            self._counters.inc(doc.source, f"matched.{name}")
        if verdict is None and cut_chars:
            doc.text = text
            doc.meta = {**doc.meta, "decontam_cut_chars": cut_chars}
            self._counters.inc(doc.source, "cut")
            self._counters.inc(doc.source, "cut_chars", cut_chars)
        return verdict


def check_job(params: DecontamParams, sections: Mapping[str, Any]) -> None:
    """Before any work: every set's paths match files (a message naming the first that
    does not), and the index is built from them, once for the run."""
    if not params.enabled:
        return
    for i, s in enumerate(params.sets):
        for j, path in enumerate(s.paths):
            try:
                match_inputs([path])
            except NoMatch:
                raise ValueError(f"sets[{i}].paths[{j}]: {path!r} matches no file") from None
    try:
        cached_index(params.sets, params.ngram)
    except ValueError as err:  # a file that is not JSON lines
        raise ValueError(f"sets: {str(err).removeprefix('decontam: ')}") from None


def build(params: DecontamParams, ctx: StageContext) -> FilterStage:
    return FilterStage(DecontamFilter(params))


STAGE = Stage(
    name=NAME,
    section="decontam",
    params=DecontamParams,
    build=build,
    cost=Cost(115, 0.5, 120, 0.5),  # bench/filters.py: ~113 ms per MB looked up, one core
    check_job=check_job,
    summary="off by default: drops documents sharing 13-grams with listed evaluation sets (or cuts them out)",
)
