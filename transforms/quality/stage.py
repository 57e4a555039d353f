"""The quality stage: the Gopher, C4 and FineWeb heuristics and C4's bad-words rule as one
DocFilter.

Settings are `QualityParams` (re-exported here); the job config builds them with
`QualityParams.from_dict`. `evaluate` is the whole rule set on one text, without Beam.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from apache_beam.metrics import Metrics

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import SourceCounters
from gristmill.transforms.quality import badwords, fineweb, rules
from gristmill.transforms.quality.params import BadWordsParams, FineWebParams
from gristmill.transforms.quality.rules import (
    C4Params,
    GopherQualityParams,
    GopherRepetitionParams,
    LengthParams,
    QualityParams,
)
from gristmill.transforms.stage import Cost, DocFilter, FilterStage, Stage, StageContext

__all__ = [
    "BadWordsParams",
    "C4Params",
    "FineWebParams",
    "GopherQualityParams",
    "GopherRepetitionParams",
    "LengthParams",
    "Outcome",
    "QualityFilter",
    "QualityParams",
    "evaluate",
]


class Outcome(NamedTuple):
    text: str  # the text to keep: rewritten when the C4 line rules applied
    verdict: rules.Verdict  # the first failing rule, or None
    lines_removed: int  # lines the C4 line rules removed


def evaluate(text: str, kind: str, lang: str, p: QualityParams) -> Outcome:
    """Every rule that fits the document, cheapest first; the first failure is the verdict.

    Length; for `p.fineweb.kinds` the FineWeb rules, on the lines as they came (FineWeb ran
    C4's filter without its punctuation line rule); for `p.c4.kinds` the C4 line cleaning,
    whose output the bad-words rule (`p.bad_words.kinds`) and the Gopher rules see; then the
    Gopher quality rules (the stop-word rule only for English or unknown `lang`), then the
    Gopher repetition rules, the n-gram ones last.
    """
    verdict = rules.length(text, p.length)
    if verdict:
        return Outcome(text, verdict, 0)
    if kind in p.fineweb.kinds:
        verdict = fineweb.fineweb(text, p.fineweb)
        if verdict:
            return Outcome(text, verdict, 0)
    removed = 0
    if kind in p.c4.kinds:
        text, removed, verdict = rules.c4_lines(text, p.c4)
        if verdict:
            return Outcome(text, verdict, removed)
    if kind in p.bad_words.kinds:
        verdict = badwords.bad_words(text, lang, p.bad_words)[0]
        if verdict:
            return Outcome(text, verdict, removed)
    s = rules.TextStats(text)
    q, r = p.gopher_quality, p.gopher_repetition
    verdict = (
        rules.word_count(s, q)
        or rules.mean_word_length(s, q)
        or rules.symbol_ratio(s, q)
        or rules.stop_words(s, q, lang)
        or rules.alpha_words(s, q)
        or rules.bullet_lines(s, q)
        or rules.ellipsis_lines(s, q)
        or rules.dup_lines(s, r)
        or rules.dup_paragraphs(s, r)
        or rules.top_ngrams(s, r)
        or rules.dup_ngrams(s, r)
    )
    return Outcome(text, verdict, removed)


class QualityFilter(DocFilter):
    """Drops documents that fail a quality rule; the first failing rule (cheapest first) is the
    reason. Web-like sources (kinds in `params.c4.kinds`) have their text rewritten by the C4 line
    rules; the lines removed are counted (`quality/<source>.c4_lines_removed`) and noted in
    `meta["c4_lines_removed"]`. Documents of a kind the bad-words rule covers but of a
    language with no list are counted (`quality/<source>.bad_words_no_list`).
    """

    stage = "quality"

    def __init__(self, params: QualityParams, kinds: Mapping[str, str]):
        super().__init__()
        self.params = params
        self.kinds = dict(kinds)
        self._removed: dict[str, Any] = {}
        self._counters = SourceCounters(self.stage)

    def check(self, doc: Document) -> tuple[str, str] | None:
        kind = self.kinds.get(doc.source)
        if kind is None:
            raise ValueError(
                f"quality: source {doc.source!r} has no kind (known: {sorted(self.kinds)})"
            )
        text, verdict, removed = evaluate(doc.text, kind, doc.lang, self.params)
        if kind in self.params.bad_words.kinds and not _has_list(doc.lang, self.params.bad_words):
            self._counters.inc(doc.source, "bad_words_no_list")
        if verdict is not None:
            return verdict
        if text is not doc.text:  # C4 also strips kept lines and their citation markers
            doc.text = text
        if removed:
            doc.meta = {**doc.meta, "c4_lines_removed": removed}
            counter = self._removed.get(doc.source)
            if counter is None:
                counter = self._removed[doc.source] = Metrics.counter(
                    self.stage, f"{doc.source}.c4_lines_removed"
                )
            counter.inc(removed)
        return None


def _has_list(lang: str, p: BadWordsParams) -> bool:
    if p.max_bad_words is None:
        return True  # the rule is off: nothing to count
    code = badwords.primary(lang) or badwords.primary(p.default_lang)
    return badwords.word_list(code, p.words_dir) is not None


def build(params: QualityParams, ctx: StageContext) -> FilterStage:
    return FilterStage(QualityFilter(params, ctx.kinds))


STAGE = Stage(
    name=QualityFilter.stage,
    section="quality",
    params=QualityParams,
    build=build,
    cost=Cost(96, 0.0, 84, 0.0),
    summary="Gopher quality and repetition rules; C4 line and FineWeb rules for web text; "
    "C4 bad words (off by default)",
)
