"""One pass of text analysis shared by the quality rules, in numpy.

Tokens are found and hashed to 64-bit ints from the code points, n-gram hashes roll over those,
and repeats are found by sorting (hash, position) pairs packed in one uint64, so every run of
equal n-grams comes out in text order. A collision (odds ~N²/2^(64-log2 N) per document) merges
two n-grams and moves no fraction measurably.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from typing import NamedTuple

import numpy as np

_BULLETS = np.array([ord(c) for c in "•●▪◦‣∙·*-–"])
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_SPACE, _ALPHA, _ALNUM = 1, 2, 4
_READS = {1: 2, 2: 3, 4: 6}  # 8-byte reads per token by code point size: 16, 12, 12 code points
_BYTE_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)


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
        first, counts = equal_runs(*group_positions(self.hashes, np.arange(self.n_tokens)))
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


def group_positions(keys: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions sorted by (key, position), and whether each has the key of the one before.

    The position replaces the low bits of the key so one plain sort of uint64 does it.
    """
    bits = max(1, int(positions.max()).bit_length())
    low = np.uint64((1 << bits) - 1)
    packed = np.sort((keys & ~low) | positions.astype(np.uint64))
    high = packed >> np.uint64(bits)
    return (packed & low).astype(np.int64), high[1:] == high[:-1]


def equal_runs(positions: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first position, size) of each run of equal keys from `_group`."""
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    return positions[starts], np.diff(np.append(starts, len(positions)))


def ngram_hashes(hashes: np.ndarray, n: int, positions: np.ndarray) -> np.ndarray:
    keys = hashes[positions]
    for j in range(1, n):
        keys = keys * _MUL + hashes[positions + j]
    return keys
