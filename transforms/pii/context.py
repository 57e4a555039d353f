"""Context words raise a pattern finding's score, as presidio's LemmaContextAwareEnhancer does.

presidio's enhancer needs spaCy lemmas of the whole text and finds each result's token by a
linear walk over all tokens, with a list lookup per step: most of the default engine's time on
texts with many pattern findings, and quadratic in the text length. This enhancer applies the
same rule — a recognizer context word that is a substring of one of the five non-stop-word words
before the finding (or of the finding's own first word) adds 0.35 to the score, raised to at
least 0.4 and capped at 1.0 — on the surface words of a few hundred characters before the
finding, so it needs no NLP pass and costs nothing when there are no findings. Surface words
contain their lemma as a substring for regular inflections ("numbers", "phones", "called"), so
the substring test finds what the lemma test finds; stop words are skipped in both, so the five
words are the same ones.
"""

from __future__ import annotations

import re

from presidio_analyzer import RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from spacy.lang.en.stop_words import STOP_WORDS

WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
LOOKBACK = (400, 4000)  # characters searched back for the context words, then further once


class PrefixContextEnhancer(ContextAwareEnhancer):
    def __init__(
        self,
        context_similarity_factor: float = 0.35,
        min_score_with_context_similarity: float = 0.4,
        context_prefix_count: int = 5,
    ):
        super().__init__(
            context_similarity_factor=context_similarity_factor,
            min_score_with_context_similarity=min_score_with_context_similarity,
            context_prefix_count=context_prefix_count,
            context_suffix_count=0,
        )

    def words_before(self, text: str, start: int, end: int) -> list[str]:
        """The finding's first word and the `context_prefix_count` keywords before it."""
        own = text[start:end].split(maxsplit=1)
        words = [own[0].lower()] if own else []
        for back in LOOKBACK:
            before = [
                w
                for w in WORD.findall(text[max(0, start - back) : start].lower())
                if w not in STOP_WORDS
            ]
            if len(before) >= self.context_prefix_count or back >= start:
                break
        return words + before[-self.context_prefix_count :]

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
        by_id = {r.id: r for r in recognizers}
        extra = [w.lower() for w in (context or [])]
        for result in raw_results:
            meta = result.recognition_metadata or {}
            recognizer = by_id.get(meta.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            if not recognizer or not recognizer.context:
                continue
            if meta.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
                continue
            words = self.words_before(text, result.start, result.end) + extra
            if any(c.lower() in w for c in recognizer.context for w in words):
                score = max(
                    result.score + self.context_similarity_factor,
                    self.min_score_with_context_similarity,
                )
                result.score = min(score, ContextAwareEnhancer.MAX_SCORE)
        return raw_results
