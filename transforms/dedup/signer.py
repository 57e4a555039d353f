"""MinHash signatures and bottom-k sketches of a batch of texts, vectorised (see minhash_shingles
for how a text becomes shingle hashes).

- a document with no token at all has no signature (flag 0) and is kept without comparison by
  the stage: literal copies of it are exact dedup's business;
- permutations: datasketch 2.0's "affine32" scheme, bit for bit (fmix32 pre-mix, then
  a_k * h + b_k mod 2^32 with a_k odd, drawn from `RandomState(seed)` as datasketch does), so a
  signature equals datasketch's `MinHash(num_perm, seed).update_batch(...)` over the same
  shingle hashes (tested); the min over shingles runs in chunks of (num_perm x 4096);
- a bottom-k sketch (the `verify_k` smallest distinct shingle hashes) for verification: it
  estimates Jaccard with less noise than the 128 minima (exactly, when both documents have at
  most k distinct shingles), so pairs near the threshold are judged right: on bench/dedup.py's
  set, 92.5% of the pairs that passed verification by the MinHash estimate had a true Jaccard of
  at least 0.8, against 98.9% of the pairs this stage asserts (and no true pair of 0.85 or more
  lost to verification).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from gristmill.transforms.dedup import shingles as sh
from gristmill.transforms.dedup.params import NearParams

U32_MAX = np.uint32(0xFFFFFFFF)
CHUNK = 4096  # shingles per permutation chunk


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of datasketch's affine32 scheme for this seed (legacy RandomState: a frozen stream)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


class Signed(NamedTuple):
    """What `Signer.sign` returns for n texts."""

    sig: np.ndarray  # uint32 [n, num_perm]: MinHash signatures
    flags: np.ndarray  # int8 [n]: 0 no token (no signature), 1 word n-grams,
    # 2 fewer tokens than n (one whole-sequence shingle), 3 character n-grams
    sketch_values: np.ndarray  # uint32: bottom-k sketches, text after text, ascending in each
    sketch_offsets: np.ndarray  # int64 [n + 1]: text i's sketch is values[off[i]:off[i + 1]]

    def sketch(self, i: int) -> bytes:
        return self.sketch_values[self.sketch_offsets[i] : self.sketch_offsets[i + 1]].tobytes()


def bottom_k(values: np.ndarray, doc: np.ndarray, n_docs: int, k: int):
    """(the k smallest distinct values of each doc, ascending, concatenated; offsets [n_docs + 1])."""
    if k <= 0 or len(values) == 0:
        return np.empty(0, np.uint32), np.zeros(n_docs + 1, np.int64)
    key = np.sort((doc.astype(np.uint64) << np.uint64(32)) | values.astype(np.uint64))
    if len(key) > 1:  # distinct only (np.sort + mask: np.unique is many times slower here)
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    key_doc = (key >> np.uint64(32)).astype(np.int64)
    rank = np.arange(len(key)) - np.searchsorted(key_doc, key_doc)
    keep = rank < k
    return key[keep].astype(np.uint32), np.searchsorted(key_doc[keep], np.arange(n_docs + 1))


def sketch_jaccard(a: bytes, b: bytes, k: int) -> float:
    """Jaccard estimated from two bottom-k sketches: the share of the k smallest values of the
    union found in both; exact when both sets have at most k distinct shingle hashes."""
    merged = np.sort(np.concatenate((np.frombuffer(a, np.uint32), np.frombuffer(b, np.uint32))))
    if len(merged) == 0:
        return 1.0
    twice = merged[1:] == merged[:-1]  # each sketch is distinct: a repeat is in both
    union = merged[np.concatenate(([True], ~twice))][:k]
    return float(np.count_nonzero(twice & (merged[1:] <= union[-1]))) / len(union)


def jaccard(sig_a: bytes, sig_b: bytes) -> float:
    """Estimated Jaccard: the share of permutations whose minima agree."""
    a = np.frombuffer(sig_a, dtype=np.uint32)
    b = np.frombuffer(sig_b, dtype=np.uint32)
    return float(np.count_nonzero(a == b)) / len(a)


class Signer:
    """MinHash signatures of a batch of texts, vectorised; one per worker (tables built once)."""

    def __init__(self, params: NearParams, seed: int):
        self.p = params
        self.a, self.b = permutations(params.num_perm, seed)
        self.langs = frozenset(params.char_ngram_langs)
        self.lower, self.unspaced = sh.char_table()

    def char_mode_by_lang(self, lang: str) -> bool:
        return lang.split("-")[0].split("_")[0].lower() in self.langs

    def sign(self, texts: Sequence[str], langs: Sequence[str]) -> Signed:
        """Signatures, flags and bottom-k sketches of a batch of texts (see `Signed`). Long texts
        are cut into overlapping segments, signed `batch_chars` at a time (so one huge document
        costs no more memory than a batch) and merged."""
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            for seg in sh.segments(text):
                pieces.append(seg)
                owner.append(i)
        parts, start, size = [], 0, 0
        for end, piece in enumerate(pieces, 1):
            size += len(piece) + 1
            if size >= self.p.batch_chars or end == len(pieces):
                parts.append(
                    self._sign_pieces(pieces[start:end], [langs[i] for i in owner[start:end]])
                )
                start, size = end, 0
        if not parts:
            return self._sign_pieces([], [])
        got = _concat(parts)
        if len(pieces) == len(texts):
            return got
        own = np.asarray(owner)
        sig = np.full((len(texts), self.p.num_perm), U32_MAX, dtype=np.uint32)
        flags = np.zeros(len(texts), dtype=np.int8)
        np.minimum.at(sig, own, got.sig)
        np.maximum.at(flags, own, got.flags)
        per_value = np.repeat(own, np.diff(got.sketch_offsets))
        values, offsets = bottom_k(got.sketch_values, per_value, len(texts), self.p.verify_k)
        return Signed(sig, flags, values, offsets)

    def _code_points(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(lowercased code point or 0 per character of the texts joined by newlines, text start
        offsets, unspaced-script flags per character or None when there is none)."""
        joined = "\n".join(texts)
        starts = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter((len(t) + 1 for t in texts), np.int64, len(texts)), out=starts[1:])
        if joined.isascii():
            return self.lower[np.frombuffer(joined.encode("ascii"), np.uint8)], starts, None
        cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        cp = np.minimum(cp, sh.TABLE_SIZE - 1)
        unspaced = self.unspaced[cp]
        return self.lower[cp], starts, unspaced if unspaced.any() else None

    def _sign_pieces(self, texts: list[str], langs: list[str]):
        n_docs = len(texts)
        p = self.p
        sig = np.full((n_docs, p.num_perm), U32_MAX, dtype=np.uint32)
        flags = np.zeros(n_docs, dtype=np.int8)
        low, doc_starts, unspaced = self._code_points(texts)
        word = low != 0
        char_mode = np.fromiter((self.char_mode_by_lang(g) for g in langs), bool, count=n_docs)
        if unspaced is not None and p.char_ngram_script_share > 0:
            share = np.add.reduceat(np.append(unspaced, False), doc_starts[:-1])
            words = np.add.reduceat(np.append(word, False), doc_starts[:-1])
            char_mode |= share >= p.char_ngram_script_share * np.maximum(words, 1)
        first = word.copy()
        first[1:] &= ~word[:-1]
        last = word.copy()
        last[:-1] &= ~word[1:]
        if char_mode.any():
            per_char = np.repeat(char_mode, np.diff(doc_starts))[: len(word)] & word
            first |= per_char
            last |= per_char
        ts = np.flatnonzero(first)
        if len(ts) == 0:
            return Signed(sig, flags, np.empty(0, np.uint32), np.zeros(n_docs + 1, np.int64))
        te = np.flatnonzero(last) + 1
        pw, inv = sh.token_powers(len(low) + 1)
        prefix = np.zeros(len(low) + 1, dtype=np.uint64)
        np.cumsum(low * pw[: len(low)], out=prefix[1:])
        tok_hash = sh.fmix64((prefix[te] - prefix[ts]) * inv[ts])
        tok_doc = (np.searchsorted(doc_starts, ts, side="right") - 1).astype(np.int32)
        counts = np.bincount(tok_doc, minlength=n_docs)
        n_of_doc = np.where(char_mode, p.char_ngram, p.ngram)
        sh_parts, doc_parts = [], []
        for n in np.unique(n_of_doc[counts > 0]):
            h, d = sh.ngram_hashes(tok_hash, tok_doc, int(n))
            keep = n_of_doc[d] == n
            sh_parts.append(h[keep])
            doc_parts.append(d[keep])
        short = np.flatnonzero((counts > 0) & (counts < n_of_doc))
        if len(short):
            sh_parts.append(_whole_doc_shingles(tok_hash, tok_doc, counts, short))
            doc_parts.append(short.astype(np.int32))
        shingles = np.concatenate(sh_parts)
        sh_doc = np.concatenate(doc_parts)
        if len(sh_parts) > 1:  # several n, or short documents: back into document order
            order = np.argsort(sh_doc, kind="stable")
            shingles, sh_doc = shingles[order], sh_doc[order]
        h32 = sh.fmix32((sh.fmix64(shingles) >> np.uint64(32)).astype(np.uint32))
        self._min_hash(h32, sh_doc, sig)
        flags[counts > 0] = 1
        flags[short] = 2
        flags[(counts >= n_of_doc) & char_mode & (counts > 0)] = 3
        return Signed(sig, flags, *bottom_k(h32, sh_doc, n_docs, p.verify_k))

    def _min_hash(self, h: np.ndarray, doc: np.ndarray, sig: np.ndarray) -> None:
        """sig[d] = min over the doc's shingles of a*h+b (uint32 wraparound), chunk by chunk."""
        a = self.a[:, None]
        b = self.b[:, None]
        buf = np.empty((len(self.a), CHUNK), dtype=np.uint32)
        for lo in range(0, len(h), CHUNK):
            hi = min(lo + CHUNK, len(h))
            x = buf[:, : hi - lo]
            np.multiply(a, h[lo:hi], out=x)
            np.add(x, b, out=x)
            d = doc[lo:hi]
            cut = np.flatnonzero(np.diff(d)) + 1
            bounds = np.concatenate(([0], cut))
            part = np.minimum.reduceat(x, bounds, axis=1).T
            rows = d[bounds]
            np.minimum(sig[rows], part, out=part)
            sig[rows] = part


def _concat(parts: list[Signed]) -> Signed:
    if len(parts) == 1:
        return parts[0]
    shift = np.cumsum([0] + [len(p.sketch_values) for p in parts[:-1]])
    offsets = [parts[0].sketch_offsets[:1]] + [
        p.sketch_offsets[1:] + s for p, s in zip(parts, shift, strict=True)
    ]
    return Signed(
        np.concatenate([p.sig for p in parts]),
        np.concatenate([p.flags for p in parts]),
        np.concatenate([p.sketch_values for p in parts]),
        np.concatenate(offsets),
    )


def _whole_doc_shingles(tok_hash, tok_doc, counts, short) -> np.ndarray:
    """A document shorter than n tokens is one shingle: all of its tokens."""
    first_tok = np.searchsorted(tok_doc, short)
    return np.array(
        [sh.horner(tok_hash[f : f + counts[d]]) for d, f in zip(short, first_tok, strict=True)],
        dtype=np.uint64,
    )
