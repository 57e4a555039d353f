"""Heuristic quality rules from Gopher (Rae et al. 2021) and C4 (Raffel et al. 2020), without Beam.

A rule returns None when the text passes and `(reason, detail)` when it fails: `reason` is a short
id (`dup_line_frac`), `detail` the measured value against its threshold (`0.4127 > 0.3`). Every
threshold is a field of `QualityParams`; None switches its rule off.

Tokens are whitespace-separated (`str.split`; punctuation stays attached). A *word* is a token
holding a letter or digit: a lone "-", "*" or "—" is punctuation, as with the word tokenizers of
the reference implementations. Repetition rules compare all tokens and measure characters as the
characters of tokens (whitespace excluded).

Speed: a text is analysed once (`TextStats`, lazily) and shared by the rules, in numpy: tokens
are found and hashed to 64-bit ints from the code points, n-gram hashes roll over those, and
repeats are found by sorting (hash, position) pairs packed in one uint64, so every run of equal
n-grams comes out in text order. A collision (odds ~N²/2^(64-log2 N) per document) merges two
n-grams and moves no fraction measurably. Top n-grams are bounded from token counts and usually
not counted; repeated 5..10-grams are searched only where the shorter n-gram repeats, and the
search stops once no remaining threshold can be reached.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from itertools import islice

import numpy as np

from gristmill.transforms.quality.params import (
    C4Params,
    GopherQualityParams,
    GopherRepetitionParams,
    LengthParams,
    QualityParams,
)
from gristmill.transforms.quality.text_stats import (
    TextStats,
    equal_runs,
    group_positions,
    ngram_hashes,
)

__all__ = ["QualityParams", "TextStats"]

Verdict = tuple[str, str] | None

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_CITATION = re.compile(r"\s*(?:\[\d*\]|\[edit\]|\[citation needed\])", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’»)\]]*(?=\s|$)")


def _over(value: float, limit: float) -> str:
    return f"{value:.4f} > {limit:g}"


def _above(reason: str, value: float, limit: float | None) -> Verdict:
    return (reason, _over(value, limit)) if limit is not None and value > limit else None


def _below(reason: str, value: float, limit: float | None) -> Verdict:
    return (reason, f"{value:.4f} < {limit:g}") if limit is not None and value < limit else None


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
    if p.min_words is not None and s.n_tokens < p.min_words:  # words <= tokens: no stats
        return "too_few_words", f"{s.n_tokens} < {p.min_words}"
    n = s.token_stats.words
    if p.min_words is not None and n < p.min_words:
        return "too_few_words", f"{n} < {p.min_words}"
    if p.max_words is not None and n > p.max_words:
        return "too_many_words", f"{n} > {p.max_words}"
    return None


def mean_word_length(s: TextStats, p: GopherQualityParams) -> Verdict:
    ts = s.token_stats
    if not ts.words:
        return None
    mean = ts.word_chars / ts.words
    return _below("mean_word_length", mean, p.min_mean_word_length) or _above(
        "mean_word_length", mean, p.max_mean_word_length
    )


def symbol_ratio(s: TextStats, p: GopherQualityParams) -> Verdict:
    """'#' per word and ellipses ('...' or '…') per word, each against the same ratio."""
    n, limit = s.token_stats.words, p.max_symbol_word_ratio
    if limit is None or not n:
        return None
    if s.text.count("#") / n > limit:
        return "symbol_ratio", f"'#' {_over(s.text.count('#') / n, limit)}"
    ellipses = (s.text.count("...") + s.text.count("…")) / n
    return ("symbol_ratio", f"ellipsis {_over(ellipses, limit)}") if ellipses > limit else None


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
    matches = _stop_word_regex(p.stop_words).finditer(s.text)
    found = sum(1 for _ in islice(matches, p.min_stop_words))
    if found < p.min_stop_words:
        return "stop_words", f"{found} < {p.min_stop_words}"
    return None


def alpha_words(s: TextStats, p: GopherQualityParams) -> Verdict:
    ts = s.token_stats
    return _below("alpha_words", ts.alpha / ts.words, p.min_alpha_words_frac) if ts.words else None


def bullet_lines(s: TextStats, p: GopherQualityParams) -> Verdict:
    lines, bullets, _ = s.line_marks
    return _above("bullet_lines", bullets / lines, p.max_bullet_lines_frac) if lines else None


def ellipsis_lines(s: TextStats, p: GopherQualityParams) -> Verdict:
    lines, _, ellipses = s.line_marks
    return _above("ellipsis_lines", ellipses / lines, p.max_ellipsis_lines_frac) if lines else None


# ---- Gopher repetition -------------------------------------------------------------------------


def _dup_rule(counts: Counter[str], name: str, max_frac, max_char_frac) -> Verdict:
    """Repeats of an earlier line/paragraph: as a fraction of all, and of all their characters."""
    items = dup_items = chars = dup_chars = 0
    for item, n in counts.items():
        items += n
        chars += len(item) * n
        if n > 1:
            dup_items += n - 1
            dup_chars += len(item) * (n - 1)
    if not items:
        return None
    return _above(f"dup_{name}_frac", dup_items / items, max_frac) or _above(
        f"dup_{name}_char_frac", dup_chars / chars, max_char_frac
    )


def dup_lines(s: TextStats, p: GopherRepetitionParams) -> Verdict:
    return _dup_rule(s.line_counts, "line", p.dup_line_frac, p.dup_line_char_frac)


def dup_paragraphs(s: TextStats, p: GopherRepetitionParams) -> Verdict:
    if p.dup_para_frac is None and p.dup_para_char_frac is None:
        return None
    paragraphs = Counter(_PARAGRAPH_BREAK.split(s.text.strip()))
    paragraphs.pop("", None)
    return _dup_rule(paragraphs, "para", p.dup_para_frac, p.dup_para_char_frac)


def _top_ngram(s: TextStats, n: int) -> tuple[int, int, int]:
    """(first position of the most frequent n-gram, its count, largest chars x count of any)."""
    positions = np.arange(s.n_tokens - n + 1)
    first, counts = equal_runs(*group_positions(ngram_hashes(s.hashes, n, positions), positions))
    chars = s.prefix[first + n] - s.prefix[first]
    top = counts.max()
    tied = np.flatnonzero(counts == top)  # most characters, then earliest: no hash order leaks
    pick = tied[np.lexsort((first[tied], -chars[tied]))[0]]
    return int(first[pick]), int(top), int((counts * chars).max())


def top_ngrams(s: TextStats, p: GopherRepetitionParams) -> Verdict:
    """Characters in the occurrences of the most frequent n-gram, over all token characters.

    An n-gram occurs no more often than any of its tokens or of its 2-grams, so its characters
    times its count are at most n x M1 (M1: the largest length x count of a token), and at most
    (n // 2) x M2 + (n % 2) x M1 (M2: the same for 2-grams). Below the threshold, no counting.
    """
    limits = [(n, lim) for n, lim in p.top_ngram_limits() if lim is not None and n <= s.n_tokens]
    if not limits:
        return None
    total, m1, m2 = s.token_stats.chars, s.top_token_mass, None
    for n, limit in limits:
        if n * m1 <= limit * total:
            continue
        if n > 2:
            m2 = _top_ngram(s, 2)[2] if m2 is None else m2
            if (n // 2) * m2 + (n % 2) * m1 <= limit * total:
                continue
        first, count, mass = _top_ngram(s, n)
        m2 = mass if n == 2 else m2
        frac = int(s.prefix[first + n] - s.prefix[first]) * count / total
        if frac > limit:  # the n-gram itself stays out of the detail: it may be personal data
            return f"top_{n}gram", _over(frac, limit)
    return None


def _covered_chars(repeats: np.ndarray, n: int, prefix: np.ndarray) -> int:
    """Characters of tokens covered by the n-grams starting at `repeats` (sorted), each once."""
    if not len(repeats):
        return 0
    ends = np.minimum(repeats + n, np.append(repeats[1:], np.iinfo(np.int64).max))
    return int((prefix[ends] - prefix[repeats]).sum())


def dup_ngrams(s: TextStats, p: GopherRepetitionParams) -> Verdict:
    """Characters of tokens covered by a repeated n-gram (one seen earlier in the text), over all
    token characters; a token covered by several repeats counts once.

    A position whose n-gram repeats also has a repeating (n-1)-gram, so each n searches only the
    positions left by the one before; coverage never grows with n, so once it is within every
    remaining threshold the rule passes.
    """
    limits = [(n, limit) for n, limit in p.dup_ngram_limits() if limit is not None]
    total, n_tokens = s.token_stats.chars, s.n_tokens
    if not limits or not total or n_tokens < limits[0][0]:
        return None
    candidates = np.arange(n_tokens - limits[0][0] + 1)
    for k, (n, limit) in enumerate(limits):
        candidates = candidates[candidates + n <= n_tokens]
        if len(candidates) < 2:
            return None
        keys = ngram_hashes(s.hashes, n, candidates)
        positions, same = group_positions(keys, candidates)
        repeats = np.sort(positions[1:][same])
        frac = _covered_chars(repeats, n, s.prefix) / total
        if frac > limit:
            return f"dup_{n}gram", _over(frac, limit)
        if all(frac <= later for _, later in limits[k + 1 :]):
            return None
        in_run = np.zeros(len(positions), dtype=bool)
        in_run[1:] = same
        in_run[:-1] |= same
        candidates = np.sort(positions[in_run])
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
