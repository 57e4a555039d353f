"""Thresholds of the quality rules, with their sources and defaults; validated from plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from gristmill.transforms.params import load, option

# ---- parameters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthParams:
    """Document length in characters, checked first so a huge document costs one `len()`.

    Not from a paper. `max_chars` (20,000,000) stops pathological records before anything is
    tokenized; whole real books are a few million characters at most (Moby-Dick: 1.2M).
    `min_chars` (1) only drops empty text: Gopher's word-count bound does the real work.
    """

    min_chars: int | None = 1
    max_chars: int | None = 20_000_000


@dataclass(frozen=True)
class GopherQualityParams:
    """Gopher quality filter: Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
    Insights from Training Gopher", appendix A (MassiveText quality filters).

    Paper's numbers, except `max_words`: the paper drops documents over 100,000 words, which
    drops most novels (8 of the 10 Gutenberg books we calibrated on; Moby-Dick has 212,765
    words). 2,000,000 is twice the longest English novels (Clarissa, under a million words) and
    still rejects a runaway concatenation. Words are tokens holding a letter or digit. Stop words
    count occurrences, case-insensitive, whole words; that rule runs only when the document's
    language (primary subtag) is in `stop_word_langs` ("" = not identified yet).
    """

    min_words: int | None = 50
    max_words: int | None = 2_000_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    max_symbol_word_ratio: float | None = 0.1  # '#' per word, and '...'/'…' per word
    max_bullet_lines_frac: float | None = 0.9  # lines starting with a bullet
    max_ellipsis_lines_frac: float | None = 0.3  # lines ending with '...' or '…'
    min_alpha_words_frac: float | None = 0.8  # words holding an alphabetic character
    stop_words: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")
    min_stop_words: int | None = 2
    stop_word_langs: tuple[str, ...] = ("", "en")


@dataclass(frozen=True)
class GopherRepetitionParams:
    """Gopher repetition filter: Rae et al. 2021, appendix A, table A1; all the paper's numbers.

    Fractions of lines/paragraphs that repeat an earlier one, and of their characters; characters
    in the most frequent 2/3/4-gram; characters of words covered by repeated 5..10-grams (as in
    datatrove's GopherRepetitionFilter, a repeat is an occurrence after the first; overlapping
    repeats are counted once, exactly, where datatrove's greedy skip approximates). Lines and
    paragraphs (split at blank lines) are compared verbatim, blank ones ignored.
    """

    dup_line_frac: float | None = 0.30
    dup_line_char_frac: float | None = 0.20
    dup_para_frac: float | None = 0.30
    dup_para_char_frac: float | None = 0.20
    top_2gram: float | None = 0.20
    top_3gram: float | None = 0.18
    top_4gram: float | None = 0.16
    dup_5gram: float | None = 0.15
    dup_6gram: float | None = 0.14
    dup_7gram: float | None = 0.13
    dup_8gram: float | None = 0.12
    dup_9gram: float | None = 0.11
    dup_10gram: float | None = 0.10

    def top_ngram_limits(self) -> tuple[tuple[int, float | None], ...]:
        return tuple((n, getattr(self, f"top_{n}gram")) for n in (2, 3, 4))

    def dup_ngram_limits(self) -> tuple[tuple[int, float | None], ...]:
        return tuple((n, getattr(self, f"dup_{n}gram")) for n in range(5, 11))


@dataclass(frozen=True)
class C4Params:
    """C4 cleaning: Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified
    Text-to-Text Transformer", section 2.2, with the numbers of its reference implementation
    (TFDS c4_utils): lines need >= 5 words, pages >= 3 sentences, words <= 1000 chars.

    Applies only to the source kinds in `kinds` (web pages): books and articles are hard-wrapped,
    so most of their lines do not end in a terminal mark and would be cut. `end_marks` adds the
    typographic closing quotes (” ’ ») and the apostrophe to the paper's . ! ? " because
    extracted web text uses them as end quotation marks. The bad-words list and the three-sentence
    cross-document dedup of C4 are not part of this stage.
    """

    kinds: tuple[str, ...] = ("web",)
    end_marks: tuple[str, ...] = (".", "!", "?", '"', "'", "”", "’", "»")
    min_words_per_line: int | None = 5
    min_sentences: int | None = 3
    max_word_length: int | None = 1000
    remove_citations: bool = True  # [1], [edit], [citation needed]
    drop_ellipsis_lines: bool = True  # lines ending in "..." are not sentence ends
    javascript: bool = True  # remove lines mentioning javascript
    policy_substrings: tuple[str, ...] = (
        "terms of use",
        "privacy policy",
        "cookie policy",
        "uses cookies",
        "use of cookies",
        "use cookies",
    )
    lorem_ipsum: bool = True  # drop pages with "lorem ipsum"
    curly_bracket: bool = True  # drop pages with "{" (code)


@dataclass(frozen=True)
class FineWebParams:
    """FineWeb's own quality rules: Penedo et al. 2024, "The FineWeb Datasets", section 3.3,
    with the thresholds of datatrove's FineWebQualityFilter, which made the released dataset.

    Lines are the non-blank lines of the text as it reaches the stage (before C4's line
    cleaning, which would leave only punctuated lines), compared verbatim. The paper's text gives
    0.1 for the duplicated-line characters; the filter that built FineWeb uses 0.01, kept here.
    `max_newline_word_ratio` is the filter's fourth rule (list-like pages), which the paper
    does not name. Like C4's, these rules are for web pages: hard-wrapped books fail them.
    """

    kinds: tuple[str, ...] = option(("web",), "source kinds the rules apply to")
    min_line_punct_frac: float | None = option(
        0.12, "drop when fewer non-blank lines end in sentence-final punctuation"
    )
    line_punct_exclude_zero: bool = option(
        False, "true: a page with no punctuated line at all passes the rule above"
    )
    max_short_line_frac: float | None = option(
        0.67, "drop when more non-blank lines are at most `short_line_chars` long"
    )
    short_line_chars: int = option(30, "a line this long or shorter is short", min=1)
    max_dup_line_char_frac: float | None = option(
        0.01, "drop when more of the characters (newlines aside) are in repeated lines"
    )
    max_newline_word_ratio: float | None = option(
        0.3, "drop when there are more newlines per word (list-like pages)"
    )


@dataclass(frozen=True)
class BadWordsParams:
    """C4's bad-words document filter (Raffel et al. 2020, section 2.2): a page holding any word
    or phrase of the "List of Dirty, Naughty, Obscene, and Otherwise Bad Words" (LDNOOBW,
    CC BY 4.0, shipped in transforms/quality/badwords/) for its language is dropped.

    Matched as the C4 reference code does: on the lowercased text, flanked by non-word
    characters (anywhere in Japanese, Thai and Chinese). Off by default (`kinds` empty): FineWeb
    left it out, and it removes legitimate pages (Dodge et al. 2021): the English Universal
    Declaration of Human Rights goes, for the word "sex" in its article 2. `kinds: [web]` is C4.
    """

    max_bad_words: int | None = option(0, "drop when more matches are found; null: rule off", min=0)
    kinds: tuple[str, ...] = option((), "source kinds the rule applies to (C4: [web])")
    default_lang: str = option("en", "the list for documents of no identified language")
    words_dir: str | None = option(
        None, "a folder of lists named by language code (one entry a line) to use instead"
    )


@dataclass(frozen=True)
class QualityParams:
    """The `quality` section: every threshold of the stage, in groups; null switches a
    threshold off."""

    enabled: bool = True
    length: LengthParams = field(default_factory=LengthParams)
    gopher_quality: GopherQualityParams = field(default_factory=GopherQualityParams)
    gopher_repetition: GopherRepetitionParams = field(default_factory=GopherRepetitionParams)
    c4: C4Params = field(default_factory=C4Params)
    fineweb: FineWebParams = field(default_factory=FineWebParams)
    bad_words: BadWordsParams = field(default_factory=BadWordsParams)

    def check(self) -> None:
        for f in fields(self):
            if is_dataclass(getattr(self, f.name)):
                _validate(getattr(self, f.name), f.name)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> QualityParams:
        """Params from a nested dict of overrides, e.g. {"c4": {"kinds": ["web", "mail"]}}."""
        return load(cls, d or {}, "quality")


def _validate(group: Any, where: str) -> None:
    for f in fields(group):
        value = getattr(group, f.name)
        fraction = any(k in f.name for k in ("frac", "ratio", "gram"))
        if type(value) in (int, float) and (value < 0 or (fraction and value > 1)):
            raise ValueError(f"{where}.{f.name}: {value} is out of range")
    for bound in ("chars", "words", "mean_word_length"):
        lo, hi = getattr(group, f"min_{bound}", None), getattr(group, f"max_{bound}", None)
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{where}: min_{bound} {lo} > max_{bound} {hi}")
