"""Text to shingle hashes for near dedup, in numpy, with no Python call per token or shingle.

- text: lowercased; a character is a word character when its Unicode category is a letter, a
  number or a mark, anything else (punctuation, symbols, whitespace) separates tokens;
- tokens: maximal runs of word characters; in documents of unspaced scripts (doc.lang in
  `char_ngram_langs`, or a share of Han/kana/Thai/Lao/Khmer/Myanmar/Tibetan word characters of at
  least `char_ngram_script_share`) every word character is a token;
- a token's hash is a polynomial over its code points mod 2^64, mixed by the MurmurHash3 64-bit
  finalizer; a shingle (n consecutive tokens: `ngram` words or `char_ngram` characters) hashes by
  Horner's rule over its token hashes, mixed again, top 32 bits kept (tests/transforms/dedup/test_near.py
  holds the same function in plain Python);
- a document with fewer than n tokens (but at least one) has one shingle, its whole token
  sequence.
Documents longer than `SEGMENT_CHARS` are signed in overlapping `segments` and merged, so that one
huge document costs no more memory than a batch.
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np

M64 = (1 << 64) - 1
TOKEN_BASE = 0x100000001B3  # odd: polynomial base over code points
SHINGLE_BASE = 0x9E3779B97F4A7C15  # odd: Horner base over token hashes
SEGMENT_CHARS = 1 << 18
SEGMENT_OVERLAP = 4096
TABLE_SIZE = 0x40000  # code points above are separators (unassigned, tags, private use)
UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),
    (0x20000, 0x3FFFF),  # CJK extensions B..
)


@functools.cache
def char_table() -> tuple[np.ndarray, np.ndarray]:
    """(lowercase code point or 0 for a separator, unspaced-script flag) per code point below
    TABLE_SIZE; built once per process (~0.3 s). Case mapping is one-to-one: the first character
    of `str.lower()` (so U+0130 becomes "i")."""
    lower = np.zeros(TABLE_SIZE, dtype=np.uint32)
    for c in range(TABLE_SIZE):
        ch = chr(c)
        if unicodedata.category(ch)[0] in "LNM":
            low = ch.lower()
            lower[c] = ord(low[0]) if low else c
    unspaced = np.zeros(TABLE_SIZE, dtype=bool)
    for lo, hi in UNSPACED_RANGES:
        unspaced[lo : hi + 1] = lower[lo : hi + 1] != 0
    return lower, unspaced


_POWERS: list[np.ndarray] = [np.ones(1, np.uint64), np.ones(1, np.uint64)]


def token_powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(TOKEN_BASE^i, TOKEN_BASE^-i) mod 2^64 for i < n; cached, grown by doubling."""
    if len(_POWERS[0]) < n:
        size = max(n, 2 * len(_POWERS[0]))
        for k, base in enumerate((TOKEN_BASE, pow(TOKEN_BASE, -1, 1 << 64))):
            arr = np.ones(size, dtype=np.uint64)
            arr[1:] = np.cumprod(np.full(size - 1, base, dtype=np.uint64))
            _POWERS[k] = arr
    return _POWERS[0], _POWERS[1]


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: every input bit reaches every output bit."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def fmix32(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's affine32 pre-mix)."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def horner(hashes: np.ndarray) -> int:
    """The shingle hash of a whole (short) token sequence, before mixing."""
    acc = 0
    for i, th in enumerate(hashes.tolist()):
        acc = th if i == 0 else (acc * SHINGLE_BASE + th) & M64
    return acc


def ngram_hashes(tok_hash: np.ndarray, tok_doc: np.ndarray, n: int):
    """Horner over every window of n tokens that stays inside one document."""
    m = len(tok_hash) - n + 1
    if m <= 0:
        return np.empty(0, np.uint64), np.empty(0, np.int32)
    acc = tok_hash[:m].copy()
    base = np.uint64(SHINGLE_BASE)
    for j in range(1, n):
        acc *= base
        acc += tok_hash[j : j + m]
    inside = tok_doc[:m] == tok_doc[n - 1 :]
    return acc[inside], tok_doc[:m][inside]


def segments(text: str) -> list[str]:
    """A text cut at whitespace into pieces of about SEGMENT_CHARS, each starting SEGMENT_OVERLAP
    characters before the previous one ended (so no shingle is lost at a cut)."""
    if len(text) <= SEGMENT_CHARS:
        return [text]
    out = []
    start = 0
    while True:
        end = start + SEGMENT_CHARS
        if end >= len(text):
            out.append(text[start:])
            return out
        half = start + SEGMENT_CHARS // 2
        cut = max(text.rfind(" ", half, end), text.rfind("\n", half, end))
        if cut <= start + SEGMENT_OVERLAP:
            cut = end
        out.append(text[start:cut])
        back = cut - SEGMENT_OVERLAP
        nxt = max(text.rfind(" ", start, back), text.rfind("\n", start, back))
        start = nxt if nxt > start else back
