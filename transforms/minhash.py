"""Near-duplicate detection (stage "dedup_near"): MinHash signatures, LSH bands, candidate pairs,
verification, connected components, one survivor per cluster.

Signatures are computed a batch of documents at a time, entirely in numpy, with no Python call
per token or shingle:
- text: lowercased; a character is a word character when its Unicode category is a letter, a
  number or a mark, anything else (punctuation, symbols, whitespace) separates tokens;
- tokens: maximal runs of word characters; in documents of unspaced scripts (doc.lang in
  `char_ngram_langs`, or a share of Han/kana/Thai/Lao/Khmer/Myanmar/Tibetan word characters of at
  least `char_ngram_script_share`) every word character is a token;
- a token's hash is a polynomial over its code points mod 2^64, mixed by the MurmurHash3 64-bit
  finalizer; a shingle (n consecutive tokens: `ngram` words or `char_ngram` characters) hashes by
  Horner's rule over its token hashes, mixed again, top 32 bits kept (tests/test_minhash.py
  holds the same function in plain Python);
- a document with fewer than n tokens (but at least one) has one shingle, its whole token
  sequence; a document with no token at all has no signature and is kept without comparison
  (counted `<source>.no_tokens`: literal copies of it are exact dedup's business);
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
Documents longer than `SEGMENT_CHARS` are signed in overlapping segments and merged.

The Beam side: each document emits one (band, bucket) key per band; a bucket's members become
candidate edges (components.BucketEdges: all pairs, or a star past `max_bucket_size`); edges meet
their endpoints' sketches in two joins keyed by id; verified edges go through
components.ConnectedComponents; each non-root node is dropped with `survivor=<root id>
jaccard=<estimated Jaccard to the survivor, from the sketches>`.
"""

from __future__ import annotations

import functools
import struct
import unicodedata
from collections.abc import Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from gristmill.transforms import dedup_params
from gristmill.transforms.accounting import StageContext
from gristmill.transforms.components import (
    AttachEndpoints,
    BucketEdges,
    ConnectedComponents,
    ValuesOfEndpoints,
)
from gristmill.transforms.dedup_params import DedupParams, NearParams
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.survivors import (
    ApplyVerdicts,
    ClusterReport,
    bands_table,
    detail,
    index_meta,
    signatures_table,
)

STAGE = "dedup_near"
SECTION = dedup_params.SECTION
DEFAULTS = dedup_params.DEFAULTS
validate = dedup_params.validate
REASON = "near_duplicate"
FLAG_NAMES = ("no_tokens", "word_ngrams", "short_doc", "char_ngrams")

M64 = (1 << 64) - 1
U32_MAX = np.uint32(0xFFFFFFFF)
TOKEN_BASE = 0x100000001B3  # odd: polynomial base over code points
SHINGLE_BASE = 0x9E3779B97F4A7C15  # odd: Horner base over token hashes
BAND_BASE = 0xC2B2AE3D27D4EB4F
SEGMENT_CHARS = 1 << 18
SEGMENT_OVERLAP = 4096
CHUNK = 4096  # shingles per permutation chunk
TABLE_SIZE = 0x40000  # code points above are separators (unassigned, tags, private use)
WORD, UNSPACED = 1, 2
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


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(TOKEN_BASE^i, TOKEN_BASE^-i) mod 2^64 for i < n; cached, grown by doubling."""
    if len(_POWERS[0]) < n:
        size = max(n, 2 * len(_POWERS[0]))
        for k, base in enumerate((TOKEN_BASE, pow(TOKEN_BASE, -1, 1 << 64))):
            arr = np.ones(size, dtype=np.uint64)
            arr[1:] = np.cumprod(np.full(size - 1, base, dtype=np.uint64))
            _POWERS[k] = arr
    return _POWERS[0], _POWERS[1]


def _fmix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))


def _fmix32(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of datasketch's affine32 scheme for this seed (legacy RandomState: a frozen stream)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


# ---- the batched signer ------------------------------------------------------------------------


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


class Signer:
    """MinHash signatures of a batch of texts, vectorised; one per worker (tables built once)."""

    def __init__(self, params: NearParams, seed: int):
        self.p = params
        self.a, self.b = permutations(params.num_perm, seed)
        self.langs = frozenset(params.char_ngram_langs)
        self.lower, self.unspaced = char_table()

    def char_mode_by_lang(self, lang: str) -> bool:
        return lang.split("-")[0].split("_")[0].lower() in self.langs

    def sign(self, texts: Sequence[str], langs: Sequence[str]) -> Signed:
        """Signatures, flags and bottom-k sketches of a batch of texts (see `Signed`). Long texts
        are cut into overlapping segments, signed `batch_chars` at a time (so one huge document
        costs no more memory than a batch) and merged."""
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            for seg in segments(text):
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
        cp = np.minimum(cp, TABLE_SIZE - 1)
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
        pw, inv = _powers(len(low) + 1)
        prefix = np.zeros(len(low) + 1, dtype=np.uint64)
        np.cumsum(low * pw[: len(low)], out=prefix[1:])
        tok_hash = _fmix64((prefix[te] - prefix[ts]) * inv[ts])
        tok_doc = (np.searchsorted(doc_starts, ts, side="right") - 1).astype(np.int32)
        counts = np.bincount(tok_doc, minlength=n_docs)
        n_of_doc = np.where(char_mode, p.char_ngram, p.ngram)
        sh_parts, doc_parts = [], []
        for n in np.unique(n_of_doc[counts > 0]):
            h, d = _ngram_hashes(tok_hash, tok_doc, int(n))
            keep = n_of_doc[d] == n
            sh_parts.append(h[keep])
            doc_parts.append(d[keep])
        short = np.flatnonzero((counts > 0) & (counts < n_of_doc))
        if len(short):
            first_tok = np.searchsorted(tok_doc, short)
            sh_parts.append(
                np.array(
                    [
                        _horner(tok_hash[f : f + counts[d]])
                        for d, f in zip(short, first_tok, strict=True)
                    ],
                    dtype=np.uint64,
                )
            )
            doc_parts.append(short.astype(np.int32))
        sh = np.concatenate(sh_parts)
        sh_doc = np.concatenate(doc_parts)
        if len(sh_parts) > 1:  # several n, or short documents: back into document order
            order = np.argsort(sh_doc, kind="stable")
            sh, sh_doc = sh[order], sh_doc[order]
        h32 = _fmix32((_fmix64(sh) >> np.uint64(32)).astype(np.uint32))
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


def _horner(hashes: np.ndarray) -> int:
    acc = 0
    for i, th in enumerate(hashes.tolist()):
        acc = th if i == 0 else (acc * SHINGLE_BASE + th) & M64
    return acc


def _ngram_hashes(tok_hash: np.ndarray, tok_doc: np.ndarray, n: int):
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


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 [n, bands]: a hash of each band's rows (salted by band number)."""
    s = sig[:, : bands * rows].reshape(len(sig), bands, rows).astype(np.uint64)
    acc = s[:, :, 0].copy()
    base = np.uint64(BAND_BASE)
    for k in range(1, rows):
        acc *= base
        acc += s[:, :, k]
    acc ^= np.arange(1, bands + 1, dtype=np.uint64) * np.uint64(SHINGLE_BASE)
    return _fmix64(acc)


def jaccard(sig_a: bytes, sig_b: bytes) -> float:
    """Estimated Jaccard: the share of permutations whose minima agree."""
    a = np.frombuffer(sig_a, dtype=np.uint32)
    b = np.frombuffer(sig_b, dtype=np.uint32)
    return float(np.count_nonzero(a == b)) / len(a)


# ---- the stage ---------------------------------------------------------------------------------


def band_key(band: int, bucket: int) -> bytes:
    return struct.pack(">HQ", band, bucket)


class _Sign(beam.DoFn):
    """Documents -> (id, signature bytes); tagged "bands": (band key, node) and "sketches":
    (id, bottom-k sketch bytes). Buffers `batch_chars` of text per numpy batch; counts
    <source>.<flag> (FLAG_NAMES) per document."""

    def __init__(self, params: DedupParams):
        self.params = params

    def setup(self):
        self.signer = Signer(self.params.near, self.params.seed)
        self.counters: dict[str, Any] = {}

    def start_bundle(self):
        self.buf: list[tuple] = []
        self.chars = 0

    def process(self, doc):
        self.buf.append((self.params.node(doc.source, doc.id), doc.source, doc.text, doc.lang))
        self.chars += len(doc.text) + 1
        if self.chars >= self.params.near.batch_chars:
            yield from self._flush()

    def finish_bundle(self):
        for out in self._flush():
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(
                    out.tag, WindowedValue(out.value, MIN_TIMESTAMP, [GlobalWindow()])
                )
            else:
                yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])

    def _count(self, source: str, what: str) -> None:
        key = f"{source}.{what}"
        if key not in self.counters:
            self.counters[key] = Metrics.counter(STAGE, key)
        self.counters[key].inc()

    def _flush(self):
        buf, self.buf, self.chars = self.buf, [], 0
        if not buf:
            return
        near = self.params.near
        got = self.signer.sign([b[2] for b in buf], [b[3] for b in buf])
        keys = band_keys(got.sig, near.bands, near.rows).tolist()
        for i, ((node, source, _, _), flag, row) in enumerate(
            zip(buf, got.flags, keys, strict=True)
        ):
            self._count(source, FLAG_NAMES[flag])
            if flag == 0:
                continue
            yield node[1], got.sig[i].tobytes()
            if near.verify_k:
                yield beam.pvalue.TaggedOutput("sketches", (node[1], got.sketch(i)))
            for band, bucket in enumerate(row):
                yield beam.pvalue.TaggedOutput("bands", (band_key(band, bucket), node))


def _band_rows(bands: int, rows: int):
    def expand(kept):
        doc_id, sig = kept
        keys = band_keys(np.frombuffer(sig, dtype=np.uint32)[None, :], bands, rows)[0]
        return [(band, int(bucket), doc_id) for band, bucket in enumerate(keys.tolist())]

    return expand


def _scorer(verify_k: int):
    """Estimated Jaccard of an edge from its endpoints' sketches (or MinHash signatures)."""

    def score(edge):
        a, b, x, y = edge
        return a, b, sketch_jaccard(x, y, verify_k) if verify_k else jaccard(x, y)

    return score


class _Verified(beam.DoFn):
    def __init__(self, threshold: float):
        self.threshold = threshold

    def setup(self):
        self.kept = Metrics.counter(STAGE, "_all.pairs_verified")
        self.rejected = Metrics.counter(STAGE, "_all.pairs_rejected")

    def process(self, scored):
        a, b, j = scored
        if j >= self.threshold:
            self.kept.inc()
            yield a, b
        else:
            self.rejected.inc()


def _verdict(scored):
    root, node, j = scored
    return node[1], (root[1], detail(survivor=root[1], jaccard=f"{j:.4f}"))


class NearDedup(beam.PTransform):
    """Documents -> (kept, drops, extras); see the module docstring and components.py."""

    def __init__(self, params: DedupParams, ctx: StageContext):
        super().__init__()
        self.params = params
        self.ctx = ctx

    def expand(self, docs):
        params, near = self.params, self.params.near
        signed = docs | "Sign" >> beam.ParDo(_Sign(params)).with_outputs(
            "bands", "sketches", main="sigs"
        )
        sigs = signed.sigs
        scored_by = signed.sketches if near.verify_k else sigs
        score = _scorer(near.verify_k)
        candidates = (
            signed.bands
            | "Buckets" >> beam.GroupByKey()
            | "Candidates" >> beam.ParDo(BucketEdges(STAGE, near.max_bucket_size))
            | "Unique" >> beam.Distinct()
        )
        edges = candidates
        counts = [candidates | "CountCandidates" >> beam.Map(lambda _: ("candidate_pairs", 1))]
        # only candidates' sketches travel on: every node of a verified edge or cluster is one
        scored_by = (candidates, scored_by) | "CandidateSketches" >> ValuesOfEndpoints(
            lambda n: n[1]
        )
        if near.verify:
            edges = (
                (candidates, scored_by)
                | "Attach" >> AttachEndpoints(STAGE, lambda n: n[1])
                | "Score" >> beam.Map(score)
                | "Verify" >> beam.ParDo(_Verified(params.threshold))
            )
            counts.append(edges | "CountVerified" >> beam.Map(lambda _: ("verified_pairs", 1)))
        cc = edges | "Components" >> ConnectedComponents(STAGE, near.max_rounds)
        counts.append(cc.unsettled | "CountUnsettled" >> beam.Map(lambda _: ("unsettled_nodes", 1)))
        verdicts = (
            (cc.labels | "RootFirst" >> beam.Map(lambda nr: (nr[1], nr[0])), scored_by)
            | "AttachRoot" >> AttachEndpoints(STAGE, lambda n: n[1])
            | "ScoreRoot" >> beam.Map(score)
            | "Verdicts" >> beam.Map(_verdict)
        )
        joined = (docs, verdicts, sigs) if params.index else (docs, verdicts)
        out = joined | "Apply" >> ApplyVerdicts(STAGE, REASON)
        static = {
            "params": {
                "threshold": params.threshold,
                "num_perm": near.num_perm,
                "bands": near.bands,
                "rows": near.rows,
                "ngram": near.ngram,
                "verify_k": near.verify_k if near.verify else None,
                "rounds": near.max_rounds,
            },
            "candidate_pairs": 0,
            "verified_pairs": 0,
            "unsettled_nodes": 0,
        }
        count_rows = counts | "AllCounts" >> beam.Flatten()
        report = (out.pairs, out.kept, count_rows) | "Report" >> ClusterReport(
            STAGE, params.report_top, static
        )
        extras = {"report": report}
        if params.index:
            meta = index_meta(params)
            n = params.index_shards
            sig_files = out.extra | "IndexSignatures" >> WriteShardedParquet(
                self.ctx.output,
                "index/signatures",
                n,
                signatures_table(meta),
                lambda row: row[0],
                lambda row: row[0],
            )
            band_files = (
                out.extra
                | "BandRows" >> beam.FlatMap(_band_rows(near.bands, near.rows))
                | "IndexBands"
                >> WriteShardedParquet(
                    self.ctx.output,
                    "index/bands",
                    n,
                    bands_table(meta),
                    lambda row: f"{row[0]}:{row[1]}",
                    lambda row: row,
                )
            )
            extras["files"] = (sig_files, band_files) | "IndexFiles" >> beam.Flatten()
        return out.kept, out.drops, extras


def enabled(section: dict[str, Any]) -> bool:
    return dedup_params.near_enabled(section)


def build(section: dict[str, Any], ctx: StageContext) -> beam.PTransform:
    return NearDedup(DedupParams.from_section(section, ctx.seed), ctx)
