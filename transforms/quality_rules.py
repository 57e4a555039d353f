"""Heuristic quality rules from Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020), without Beam.

A rule returns None when the text passes and `(reason, detail)` when it fails: `reason` is a short
id (`dup_line_frac`), `detail` the measured value against its threshold (`0.4127 > 0.3`). Every
threshold lives in `QualityParams`; a threshold set to None switches its rule off.

Words are whitespace-separated tokens (`str.split`, punctuation stays attached) and "characters"
of words are the characters of those tokens, whitespace excluded. Text is analysed once
(`TextStats`): split into words, lines and word counts lazily, and shared by every rule.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cached_property, lru_cache
from itertools import accumulate, compress, islice
from typing import Any, NamedTuple

__all__ = [
    "C4Params",
    "GopherQualityParams",
    "GopherRepetitionParams",
    "LengthParams",
    "QualityParams",
    "Outcome",
    "TextStats",
    "evaluate",
]

Verdict = tuple[str, str] | None

_BULLET_LINE = re.compile(r"^[ \t]*[•●▪◦‣∙·*\-–]", re.MULTILINE)
_ELLIPSIS_LINE = re.compile(r"(?:\.\.\.|…)[ \t]*$", re.MULTILINE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_HAS_ALPHA = re.compile(r"[^\W\d_]")
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’»)\]]*(?=\s|$)")

# ---- parameters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthParams:
    """Document length in characters, checked first so a huge document costs one `len()`.

    Not from a paper. `max_chars` (20,000,000) stops pathological records before any rule
    splits them into words; the longest real books (the King James Bible, ~4.3M chars; the
    longest Gutenberg novels, ~5.5M) stay well under it. `min_chars` (1) only drops empty text:
    Gopher's word-count bound does the real work.
    """

    min_chars: int | None = 1
    max_chars: int | None = 20_000_000


@dataclass(frozen=True)
class GopherQualityParams:
    """Gopher quality filter: Rae et al. 2021, "Scaling Language Models: Methods, Analysis &
    Insights from Training Gopher", appendix A (MassiveText quality filters).

    Paper's numbers, except `max_words`: the paper drops documents over 100,000 words, which
    would drop every novel (Pride and Prejudice has ~122k words, Moby-Dick ~213k, 8 of our 10
    Gutenberg test books exceed 100k). 2,000,000 keeps the longest real books (Clarissa ~970k,
    the King James Bible ~790k) and still rejects a document that is a runaway concatenation.
    Stop words count occurrences, case-insensitive, as whole words; the rule runs only when the
    document's language (primary subtag) is in `stop_word_langs` ("" = not identified).
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
class QualityParams:
    """Every threshold of the quality stage, in four groups; `from_dict` reads config overrides."""

    length: LengthParams = field(default_factory=LengthParams)
    gopher_quality: GopherQualityParams = field(default_factory=GopherQualityParams)
    gopher_repetition: GopherRepetitionParams = field(default_factory=GopherRepetitionParams)
    c4: C4Params = field(default_factory=C4Params)

    def __post_init__(self) -> None:
        for group in (self.length, self.gopher_quality, self.gopher_repetition, self.c4):
            _validate(group)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> QualityParams:
        """Params from a nested dict of overrides, e.g. {"c4": {"kinds": ["web", "mail"]}}.

        Unknown keys and values of the wrong type raise ValueError naming the key; None switches
        a threshold off.
        """
        return _build(cls, d or {}, "quality")


def _build(cls: type, overrides: Any, path: str) -> Any:
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{path}: expected a mapping, got {type(overrides).__name__}")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    kwargs = {}
    for key, value in overrides.items():
        where = f"{path}.{key}"
        if key not in known:
            raise ValueError(f"unknown setting {where!r} (known: {', '.join(sorted(known))})")
        default = getattr(defaults, key)
        kwargs[key] = (
            _build(type(default), value, where)
            if is_dataclass(default)
            else _coerce(value, default, where)
        )
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, tuple):
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif value is None:
        return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(default, float):
            return float(value)
        if isinstance(value, int) or value.is_integer():
            return int(value)
    raise ValueError(f"{where}: {value!r} does not fit (default {default!r})")


def _validate(group: Any) -> None:
    for f in fields(group):
        value = getattr(group, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        bounded = any(k in f.name for k in ("frac", "ratio", "gram"))
        if value < 0 or (bounded and value > 1):
            raise ValueError(f"{type(group).__name__}.{f.name} = {value} is out of range")
    for lo, hi in (("min_chars", "max_chars"), ("min_words", "max_words")):
        a, b = getattr(group, lo, None), getattr(group, hi, None)
        if a is not None and b is not None and a > b:
            raise ValueError(f"{type(group).__name__}: {lo} {a} > {hi} {b}")
    lo, hi = "min_mean_word_length", "max_mean_word_length"
    a, b = getattr(group, lo, None), getattr(group, hi, None)
    if a is not None and b is not None and a > b:
        raise ValueError(f"{type(group).__name__}: {lo} {a} > {hi} {b}")


def _over(value: float, limit: float) -> str:
    return f"{value:.4f} > {limit:g}"


def _under(value: float, limit: float) -> str:
    return f"{value:.4f} < {limit:g}"


class TextStats:
    """Lazily computed views of one text, shared by the rules (CR LF is read as LF)."""

    def __init__(self, text: str):
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.text = text

    @cached_property
    def words(self) -> list[str]:
        return self.text.split()

    @cached_property
    def word_lengths(self) -> list[int]:
        return list(map(len, self.words))

    @cached_property
    def word_chars(self) -> int:
        return sum(self.word_lengths)

    @cached_property
    def word_counts(self) -> Counter[str]:
        return Counter(self.words)

    @cached_property
    def line_counts(self) -> Counter[str]:
        """Occurrences of each line that holds more than whitespace."""
        counts = Counter(self.text.split("\n"))
        for blank in [line for line in counts if not line or line.isspace()]:
            del counts[blank]
        return counts

    @cached_property
    def n_lines(self) -> int:
        return sum(self.line_counts.values())


# ---- length ------------------------------------------------------------------------------------


def length(text: str, p: LengthParams) -> Verdict:
    n = len(text)
    if p.max_chars is not None and n > p.max_chars:
        return "too_long", f"{n} chars > {p.max_chars}"
    if p.min_chars is not None and n < p.min_chars:
        return "too_short", f"{n} chars < {p.min_chars}"
    return None


# ---- Gopher quality ----------------------------------------------------------------------------


def word_count(s: TextStats, p: GopherQualityParams) -> Verdict:
    n = len(s.words)
    if p.min_words is not None and n < p.min_words:
        return "too_few_words", f"{n} < {p.min_words}"
    if p.max_words is not None and n > p.max_words:
        return "too_many_words", f"{n} > {p.max_words}"
    return None


def mean_word_length(s: TextStats, p: GopherQualityParams) -> Verdict:
    if not s.words:
        return None
    mean = s.word_chars / len(s.words)
    if p.min_mean_word_length is not None and mean < p.min_mean_word_length:
        return "mean_word_length", _under(mean, p.min_mean_word_length)
    if p.max_mean_word_length is not None and mean > p.max_mean_word_length:
        return "mean_word_length", _over(mean, p.max_mean_word_length)
    return None


def symbol_ratio(s: TextStats, p: GopherQualityParams) -> Verdict:
    if p.max_symbol_word_ratio is None or not s.words:
        return None
    n = len(s.words)
    hashes = s.text.count("#") / n
    if hashes > p.max_symbol_word_ratio:
        return "symbol_ratio", f"'#' {_over(hashes, p.max_symbol_word_ratio)}"
    ellipses = (s.text.count("...") + s.text.count("…")) / n
    if ellipses > p.max_symbol_word_ratio:
        return "symbol_ratio", f"ellipsis {_over(ellipses, p.max_symbol_word_ratio)}"
    return None


@lru_cache(maxsize=16)
def _stop_word_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(map(re.escape, words))
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def stop_words(s: TextStats, p: GopherQualityParams, lang: str = "") -> Verdict:
    """At least `min_stop_words` occurrences of the stop words; English (or unknown) text only."""
    if p.min_stop_words is None or not p.stop_words:
        return None
    if lang.replace("_", "-").split("-")[0].lower() not in p.stop_word_langs:
        return None
    found = sum(
        1 for _ in islice(_stop_word_regex(p.stop_words).finditer(s.text), p.min_stop_words)
    )
    if found < p.min_stop_words:
        return "stop_words", f"{found} < {p.min_stop_words}"
    return None


def bullet_lines(s: TextStats, p: GopherQualityParams) -> Verdict:
    if p.max_bullet_lines_frac is None or not s.n_lines:
        return None
    frac = len(_BULLET_LINE.findall(s.text)) / s.n_lines
    if frac > p.max_bullet_lines_frac:
        return "bullet_lines", _over(frac, p.max_bullet_lines_frac)
    return None


def ellipsis_lines(s: TextStats, p: GopherQualityParams) -> Verdict:
    if p.max_ellipsis_lines_frac is None or not s.n_lines:
        return None
    frac = len(_ELLIPSIS_LINE.findall(s.text)) / s.n_lines
    if frac > p.max_ellipsis_lines_frac:
        return "ellipsis_lines", _over(frac, p.max_ellipsis_lines_frac)
    return None


def alpha_words(s: TextStats, p: GopherQualityParams) -> Verdict:
    if p.min_alpha_words_frac is None or not s.words:
        return None
    search = _HAS_ALPHA.search
    alpha = sum(n for word, n in s.word_counts.items() if search(word))
    frac = alpha / len(s.words)
    if frac < p.min_alpha_words_frac:
        return "alpha_words", _under(frac, p.min_alpha_words_frac)
    return None


# ---- Gopher repetition -------------------------------------------------------------------------


def _duplicates(counts: Counter[str]) -> tuple[int, int, int, int]:
    """(items, duplicate items, characters, characters in duplicates): repeats after the first."""
    items = dup_items = chars = dup_chars = 0
    for item, n in counts.items():
        items += n
        chars += len(item) * n
        if n > 1:
            dup_items += n - 1
            dup_chars += len(item) * (n - 1)
    return items, dup_items, chars, dup_chars


def _dup_rule(counts: Counter[str], name: str, max_frac, max_char_frac) -> Verdict:
    items, dup_items, chars, dup_chars = _duplicates(counts)
    if not items:
        return None
    if max_frac is not None and dup_items / items > max_frac:
        return f"dup_{name}_frac", _over(dup_items / items, max_frac)
    if max_char_frac is not None and dup_chars / chars > max_char_frac:
        return f"dup_{name}_char_frac", _over(dup_chars / chars, max_char_frac)
    return None


def dup_lines(s: TextStats, p: GopherRepetitionParams) -> Verdict:
    return _dup_rule(s.line_counts, "line", p.dup_line_frac, p.dup_line_char_frac)


def dup_paragraphs(s: TextStats, p: GopherRepetitionParams) -> Verdict:
    if p.dup_para_frac is None and p.dup_para_char_frac is None:
        return None
    paragraphs = Counter(_PARAGRAPH_BREAK.split(s.text.strip()))
    paragraphs.pop("", None)
    return _dup_rule(paragraphs, "para", p.dup_para_frac, p.dup_para_char_frac)


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n)), strict=False))


def top_ngrams(s: TextStats, p: GopherRepetitionParams) -> Verdict:
    """Characters in the occurrences of the most frequent n-gram, as a fraction of word characters.

    An n-gram never occurs more often than any of its words, so its characters times its count
    are at most n times the largest (length x count) of a single word: when that bound is under
    the threshold the n-grams are not counted at all (true of ordinary prose).
    """
    if not s.word_chars:
        return None
    top_word = max(len(w) * n for w, n in s.word_counts.items())
    for n, limit in p.top_ngram_limits():
        if limit is None or len(s.words) < n or n * top_word <= limit * s.word_chars:
            continue
        gram, count = max(Counter(_ngrams(s.words, n)).items(), key=lambda kv: kv[1])
        frac = sum(map(len, gram)) * count / s.word_chars
        if frac > limit:
            return f"top_{n}gram", f"{' '.join(gram)[:40]!r} {_over(frac, limit)}"
    return None


def dup_ngrams(s: TextStats, p: GopherRepetitionParams) -> Verdict:
    """Characters of words covered by a repeated n-gram (one seen earlier in the text), as a
    fraction of word characters. Each word counts once however many repeated n-grams cover it.

    Positions whose n-gram repeats are a subset of those whose (n-1)-gram repeats, so n-grams are
    hashed for every position once (n = 5) and afterwards only at the candidate positions left.
    Coverage shrinks as n grows: once it is under every remaining threshold the rule stops.
    """
    limits = [(n, lim) for n, lim in p.dup_ngram_limits() if lim is not None]
    if not limits or not s.word_chars:
        return None
    words, lens = s.words, s.word_lengths
    first = limits[0][0]
    grams = _ngrams(words, first)
    counts = Counter(grams)
    if len(counts) == len(grams):
        return None
    # positions whose n-gram occurs more than once (first occurrences included)
    cand = list(compress(range(len(grams)), map((1).__lt__, map(counts.__getitem__, grams))))
    cand_grams = [grams[i] for i in cand]
    prefix = [0, *accumulate(lens)]
    for k, (n, limit) in enumerate(limits):
        if n != first:
            cand = [i for i in cand if i + n <= len(words)]
            cand_grams = [tuple(words[i : i + n]) for i in cand]
            counts = Counter(cand_grams)
            keep = [counts[g] > 1 for g in cand_grams]
            cand = list(compress(cand, keep))
            cand_grams = list(compress(cand_grams, keep))
        covered = end = 0
        seen: set[tuple[str, ...]] = set()
        for i, g in zip(cand, cand_grams, strict=True):
            if g in seen:  # a repeat: cover words i .. i+n-1 not covered yet
                lo = max(i, end)
                covered += prefix[i + n] - prefix[lo]
                end = i + n
            else:
                seen.add(g)
        frac = covered / s.word_chars
        if frac > limit:
            return f"dup_{n}gram", _over(frac, limit)
        if all(frac <= lim for _, lim in limits[k + 1 :]):
            return None
    return None


# ---- C4 ----------------------------------------------------------------------------------------


def c4_lines(text: str, p: C4Params) -> tuple[str, int, Verdict]:
    """C4's line cleaning: (kept lines joined by LF, lines removed, page verdict or None).

    Follows the TFDS c4_utils implementation of the paper's rules: each line is stripped and
    loses Wikipedia citation markers; it is kept only if it ends in a terminal mark (and not
    in "..."), has at least `min_words_per_line` words, no word longer than `max_word_length`,
    and mentions neither "javascript" nor a policy phrase. "lorem ipsum" or "{" in a line that
    is otherwise kept drops the page; so does a page left with fewer than `min_sentences`
    sentences (counted by terminal-mark runs followed by a space or the end of the line).
    """
    kept: list[str] = []
    removed = sentences = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        words = line.split()
        if p.max_word_length is not None and max(map(len, words)) > p.max_word_length:
            removed += 1
            continue
        if p.remove_citations and "[" in line:
            line = _CITATION.sub("", line).strip()
            words = line.split()
        if (
            not line.endswith(p.end_marks)
            or (p.drop_ellipsis_lines and line.endswith("..."))
            or (p.min_words_per_line is not None and len(words) < p.min_words_per_line)
        ):
            removed += 1
            continue
        low = line.lower()
        if p.lorem_ipsum and "lorem ipsum" in low:
            return text, removed, ("c4_lorem_ipsum", f"line {len(kept) + removed + 1}")
        if (p.javascript and "javascript" in low) or any(s in low for s in p.policy_substrings):
            removed += 1
            continue
        if p.curly_bracket and "{" in line:
            return text, removed, ("c4_curly_bracket", f"line {len(kept) + removed + 1}")
        sentences += max(1, len(_SENTENCE_END.findall(line)))
        kept.append(line)
    if p.min_sentences is not None and sentences < p.min_sentences:
        detail = f"{sentences} < {p.min_sentences} after removing {removed} lines"
        return text, removed, ("c4_too_few_sentences", detail)
    return "\n".join(kept), removed, None


# ---- all rules, cheap first --------------------------------------------------------------------


class Outcome(NamedTuple):
    text: str  # the text to keep (rewritten when the C4 line rules applied)
    verdict: Verdict  # the first failing rule, or None
    lines_removed: int  # lines the C4 line rules removed


def evaluate(text: str, kind: str, lang: str, p: QualityParams) -> Outcome:
    """Apply every rule that fits the document, cheapest first; the first failure decides."""
    verdict = length(text, p.length)
    if verdict:
        return Outcome(text, verdict, 0)
    removed = 0
    if kind in p.c4.kinds:
        text, removed, verdict = c4_lines(text, p.c4)
        if verdict:
            return Outcome(text, verdict, removed)
    s = TextStats(text)
    q, r = p.gopher_quality, p.gopher_repetition
    verdict = (
        word_count(s, q)
        or mean_word_length(s, q)
        or symbol_ratio(s, q)
        or stop_words(s, q, lang)
        or bullet_lines(s, q)
        or ellipsis_lines(s, q)
        or alpha_words(s, q)
        or dup_lines(s, r)
        or dup_paragraphs(s, r)
        or top_ngrams(s, r)
        or dup_ngrams(s, r)
    )
    return Outcome(text, verdict, removed)
