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

import difflib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cached_property, lru_cache
from itertools import islice
from typing import Any, NamedTuple

import numpy as np

Verdict = tuple[str, str] | None

_BULLETS = np.array([ord(c) for c in "•●▪◦‣∙·*-–"])
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_CITATION = re.compile(r"\s*(?:\[\d*\]|\[edit\]|\[citation needed\])", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’»)\]]*(?=\s|$)")

_MUL = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_SPACE, _ALPHA, _ALNUM = 1, 2, 4
_READS = {1: 2, 2: 3, 4: 6}  # 8-byte reads per token by code point size: 16, 12, 12 code points
_BYTE_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)


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
class QualityParams:
    """Every threshold of the quality stage, in four groups; `from_dict` reads config overrides."""

    length: LengthParams = field(default_factory=LengthParams)
    gopher_quality: GopherQualityParams = field(default_factory=GopherQualityParams)
    gopher_repetition: GopherRepetitionParams = field(default_factory=GopherRepetitionParams)
    c4: C4Params = field(default_factory=C4Params)

    def __post_init__(self) -> None:
        for f in fields(self):
            _validate(getattr(self, f.name), f"quality.{f.name}")

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
    defaults, known = cls(), [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in overrides.items():
        where = f"{path}.{key}"
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"known: {', '.join(known)}"
            raise ValueError(f"{where}: unknown key ({hint})")
        default = getattr(defaults, key)
        if is_dataclass(default):
            kwargs[key] = _build(type(default), value, where)
        else:
            kwargs[key] = _coerce(value, default, where)
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    """`value` in the type of `default`; numbers may be None (rule off), tuples come as lists."""
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


# ---- text analysis -----------------------------------------------------------------------------

# flags of each code point, filled in as code points are met (255: not looked up yet)
_FLAGS = np.full(0x110000, 255, np.uint8)


def _char_flags(points: np.ndarray) -> np.ndarray:
    """_SPACE | _ALPHA | _ALNUM of each code point, as str.isspace/isalpha/isalnum say."""
    flags = _FLAGS[points]
    unknown = flags == 255
    if unknown.any():
        for point in np.unique(points[unknown]).tolist():
            char = chr(point)
            _FLAGS[point] = (
                _SPACE * char.isspace() | _ALPHA * char.isalpha() | _ALNUM * char.isalnum()
            )
        flags = _FLAGS[points]
    return flags


def _over(value: float, limit: float) -> str:
    return f"{value:.4f} > {limit:g}"


def _above(reason: str, value: float, limit: float | None) -> Verdict:
    return (reason, _over(value, limit)) if limit is not None and value > limit else None


def _below(reason: str, value: float, limit: float | None) -> Verdict:
    return (reason, f"{value:.4f} < {limit:g}") if limit is not None and value < limit else None


class TokenStats(NamedTuple):
    words: int  # tokens holding a letter or digit
    word_chars: int  # their characters
    alpha: int  # tokens holding a letter
    chars: int  # characters of all tokens


class TextStats:
    """Lazily computed views of one text, shared by the rules (CR LF is read as LF).

    Tokens are the runs of non-whitespace code points, exactly the items of `text.split()`,
    found in numpy: no per-token Python object is made.
    """

    def __init__(self, text: str):
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.text = text

    @cached_property
    def points(self) -> np.ndarray:
        """Code points: 1 byte each for ASCII text, 2 within the BMP, else 4 (little-endian)."""
        text = self.text
        if text.isascii():
            return np.frombuffer(text.encode("ascii"), np.uint8)
        units = np.frombuffer(text.encode("utf-16-le", "surrogatepass"), "<u2")
        if not ((units >= 0xD800) & (units < 0xE000)).any():
            return units
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4")

    @cached_property
    def flags(self) -> np.ndarray:
        return _char_flags(self.points)

    @cached_property
    def starts(self) -> np.ndarray:
        return self._edges[0]

    @cached_property
    def lengths(self) -> np.ndarray:
        return self._edges[1] - self._edges[0]

    @cached_property
    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        inside = ((self.flags & _SPACE) == 0).view(np.int8)
        edges = np.diff(inside, prepend=np.int8(0), append=np.int8(0))
        return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)

    @property
    def n_tokens(self) -> int:
        return len(self.starts)

    def token(self, i: int) -> str:
        start = int(self.starts[i])
        return self.text[start : start + int(self.lengths[i])]

    @cached_property
    def prefix(self) -> np.ndarray:
        """prefix[i]: characters of the tokens before token i."""
        return np.concatenate(([0], np.cumsum(self.lengths)))

    @cached_property
    def hashes(self) -> np.ndarray:
        """A 64-bit hash of each token: its length and first 12-16 code points, read 8 bytes at a
        time; a longer token adds `hash()` of its text."""
        starts, lengths, points = self.starts, self.lengths, self.points
        size = points.itemsize
        per = 8 // size
        hashed = _READS[size] * per
        padded = np.concatenate((points, np.zeros(hashed + per, points.dtype))).view(np.uint8)
        reads = np.ndarray((len(points) + hashed,), "<u8", padded, strides=(size,))
        keys = lengths.astype(np.uint64) * _MUL
        for j in range(0, min(hashed, int(lengths.max(initial=0))), per):
            chunk = reads[starts + j].astype(np.uint64)
            chunk &= _BYTE_MASKS[np.clip(lengths - j, 0, per) * size]
            keys *= _MUL
            keys += chunk
        long = np.flatnonzero(lengths > hashed)
        if len(long):
            text = self.text
            spans = zip(starts[long].tolist(), (starts + lengths)[long].tolist(), strict=True)
            extra = np.fromiter((hash(text[a:b]) for a, b in spans), np.int64, len(long))
            keys[long] ^= extra.view(np.uint64)
        keys ^= keys >> np.uint64(31)
        keys *= _MIX
        return keys ^ (keys >> np.uint64(29))

    @cached_property
    def token_stats(self) -> TokenStats:
        if not self.n_tokens:
            return TokenStats(0, 0, 0, 0)
        classes = np.bitwise_or.reduceat(self.flags, self.starts)  # a token + the space after it
        alnum = (classes & _ALNUM) != 0
        alpha = int(np.count_nonzero(classes & _ALPHA))
        word_chars = int(self.lengths[alnum].sum())
        return TokenStats(int(alnum.sum()), word_chars, alpha, int(self.prefix[-1]))

    @cached_property
    def top_token_mass(self) -> int:
        """The largest length x count of a distinct token."""
        first, counts = _runs(*_group(self.hashes, np.arange(self.n_tokens)))
        return int((counts * self.lengths[first]).max())

    @cached_property
    def line_counts(self) -> Counter[str]:
        """Occurrences of each line that holds more than whitespace."""
        counts = Counter(self.text.split("\n"))
        for blank in [line for line in counts if not line or line.isspace()]:
            del counts[blank]
        return counts

    @cached_property
    def line_marks(self) -> tuple[int, int, int]:
        """(lines, lines starting with a bullet, lines ending with an ellipsis); blank lines aside.

        From the tokens: a line's first token starts it, its last token ends it.
        """
        if not self.n_tokens:
            return 0, 0, 0
        breaks = np.flatnonzero(self.points == 10)
        line_of = np.searchsorted(breaks, self.starts)  # line number of each token
        first = np.flatnonzero(np.diff(line_of, prepend=-1))
        last = np.append(first[1:] - 1, self.n_tokens - 1)
        points = self.points
        heads = points[self.starts[first]]
        ends = (self.starts + self.lengths)[last]
        tail = points[ends - 1]
        dots = (tail == 46) & (self.lengths[last] >= 3)
        dots &= (points[np.maximum(ends - 2, 0)] == 46) & (points[np.maximum(ends - 3, 0)] == 46)
        ellipses = int(np.count_nonzero(dots | (tail == 0x2026)))
        return len(first), int(np.count_nonzero(np.isin(heads, _BULLETS))), ellipses


def _group(keys: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions sorted by (key, position), and whether each has the key of the one before.

    The position replaces the low bits of the key so one plain sort of uint64 does it.
    """
    bits = max(1, int(positions.max()).bit_length())
    low = np.uint64((1 << bits) - 1)
    packed = np.sort((keys & ~low) | positions.astype(np.uint64))
    high = packed >> np.uint64(bits)
    return (packed & low).astype(np.int64), high[1:] == high[:-1]


def _runs(positions: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first position, size) of each run of equal keys from `_group`."""
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    return positions[starts], np.diff(np.append(starts, len(positions)))


def _ngram_hashes(hashes: np.ndarray, n: int, positions: np.ndarray) -> np.ndarray:
    keys = hashes[positions]
    for j in range(1, n):
        keys = keys * _MUL + hashes[positions + j]
    return keys


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
    first, counts = _runs(*_group(_ngram_hashes(s.hashes, n, positions), positions))
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
        if frac > limit:
            gram = " ".join(map(s.token, range(first, first + n)))
            return f"top_{n}gram", f"{gram[:40]!r} {_over(frac, limit)}"
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
        keys = _ngram_hashes(s.hashes, n, candidates)
        positions, same = _group(keys, candidates)
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
