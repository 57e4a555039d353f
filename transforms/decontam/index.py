"""The n-gram index of the evaluation sets, and the lookup of a document in it, without Beam.

Normalisation is GPT-3's (Brown et al. 2020, appendix C): lowercase, punctuation (Unicode
category P) removed, split at whitespace. Each word is hashed to 64 bits (xxh3, the same in
every process), an n-gram's hash rolls over its words' hashes, and the index is the sorted
unique n-gram hashes with, for each, a bit mask of the sets that hold it. A lookup is a
`searchsorted`; a false hit needs a 64-bit collision (odds ~ n-grams x index size / 2^64).

`cached_index` builds it once and keeps it in a file named by the digest of everything it
depends on (the sets' names, formats, fields, files and their sha256, n, the normalisation's
version), in the machine's temp folder: the driver builds it before any work, and every worker
of the machine loads that file in its `DoFn.setup`. A worker elsewhere (another machine, no
shared temp folder) builds it from the evaluation files the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import xxhash

from gristmill.transforms.decontam.params import EvalSet
from gristmill.transforms.sources.read import file_sha256, match_inputs
from gristmill.transforms.sources.streams import InputFile

log = logging.getLogger(__name__)

_MUL = np.uint64(0x9E3779B97F4A7C15)
_NONSPACE = re.compile(r"\S+")
_MAX_EVAL_BYTES = 1 << 34  # a decompressed evaluation file past 16 GiB is refused
VERSION = 1  # of the normalisation and hashing: part of the cache key


@lru_cache(maxsize=1)
def _strip_table() -> dict[int, None]:
    """Every punctuation code point (Unicode category P*) mapped to deletion."""
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp))[0] == "P"}


def normalize(text: str) -> list[str]:
    """GPT-3's words: lowercased, punctuation removed, split at whitespace."""
    return text.lower().translate(_strip_table()).split()


def words_with_spans(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The same words as `normalize`, each with its (start, end) in `text`."""
    table, words, spans = _strip_table(), [], []
    for m in _NONSPACE.finditer(text):
        word = m.group().lower().translate(table)
        if word:  # neither lowering nor removing characters makes a space
            words.append(word)
            spans.append((m.start(), m.end()))
    return words, spans


def ngram_hashes(words: Sequence[str], n: int) -> np.ndarray:
    """The hash of each n-gram of `words`, in text order (empty when fewer than n words)."""
    if len(words) < n:
        return np.empty(0, np.uint64)
    digest = xxhash.xxh3_64_intdigest
    h = np.fromiter(
        (digest(w.encode("utf-8", "surrogatepass")) for w in words), np.uint64, len(words)
    )
    m = len(words) - n + 1
    keys = h[:m].copy()
    for j in range(1, n):
        keys *= _MUL
        keys += h[j : j + m]
    return keys


class Index(NamedTuple):
    keys: np.ndarray  # sorted unique n-gram hashes (uint64)
    masks: np.ndarray  # for each, the sets holding it, one bit per set (uint64)
    names: tuple[str, ...]  # set names, bit order
    n: int

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Each hash's set mask, 0 where the index does not hold it."""
        if not len(self.keys) or not len(hashes):
            return np.zeros(len(hashes), np.uint64)
        at = np.minimum(np.searchsorted(self.keys, hashes), len(self.keys) - 1)
        return np.where(self.keys[at] == hashes, self.masks[at], np.uint64(0))

    def set_names(self, mask: int) -> list[str]:
        return [name for bit, name in enumerate(self.names) if mask >> bit & 1]


def build_index(passages_by_set: Sequence[tuple[str, Iterator[str]]], n: int) -> Index:
    """The index of every n-gram of every passage, each set one bit."""
    keys, masks, short = [], [], 0
    for bit, (_, passages) in enumerate(passages_by_set):
        for passage in passages:
            h = ngram_hashes(normalize(passage), n)
            short += not len(h)
            keys.append(h)
            masks.append(np.full(len(h), np.uint64(1) << np.uint64(bit)))
    names = tuple(name for name, _ in passages_by_set)
    if short:
        log.warning(
            "decontam: %d evaluation passages have fewer than %d words; not indexed", short, n
        )
    if not keys:
        return Index(np.empty(0, np.uint64), np.empty(0, np.uint64), names, n)
    all_keys, all_masks = np.concatenate(keys), np.concatenate(masks)
    order = np.argsort(all_keys, kind="stable")
    all_keys, all_masks = all_keys[order], all_masks[order]
    if not len(all_keys):
        return Index(all_keys, all_masks, names, n)
    starts = np.flatnonzero(np.concatenate(([True], all_keys[1:] != all_keys[:-1])))
    return Index(all_keys[starts], np.bitwise_or.reduceat(all_masks, starts), names, n)


# ---- reading the evaluation sets ---------------------------------------------------------------


def _field(record: object, dotted: str) -> list[str]:
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return []
        value = value[part]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _file_passages(path: str, s: EvalSet) -> Iterator[str]:
    f = InputFile(path, _MAX_EVAL_BYTES)
    try:
        data = f.stream.read().decode("utf-8", errors="replace")
    finally:
        f.finish()
    fmt = s.format
    if fmt == "auto":
        fmt = "jsonl" if data.lstrip().startswith("{") else "text"
    if fmt == "text":
        yield data
        return
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        if fmt == "lines":
            yield line
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            raise ValueError(f"decontam: {path}:{number}: not a JSON line ({err})") from None
        for name in s.fields:
            yield from _field(record, name)


def passages(s: EvalSet) -> Iterator[str]:
    """Every passage of one evaluation set, file by file in path order."""
    for matched in match_inputs(s.paths):
        yield from _file_passages(matched.path, s)


def load_index(sets: Sequence[EvalSet], n: int) -> Index:
    """The index of the configured sets, read from their files."""
    return build_index([(s.name, passages(s)) for s in sets], n)


def index_key(sets: Sequence[EvalSet], n: int) -> str:
    """The digest of everything the index depends on, the files' contents included."""
    described = [
        {
            "name": s.name,
            "format": s.format,
            "fields": list(s.fields),
            "files": [[m.path, *file_sha256(m.path)] for m in match_inputs(s.paths)],
        }
        for s in sets
    ]
    blob = json.dumps([VERSION, n, described], sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:32]


def cached_index(sets: Sequence[EvalSet], n: int, folder: str | None = None) -> Index:
    """The index from the cache file of its key, built and written (atomically) when missing."""
    folder = folder or os.path.join(tempfile.gettempdir(), "gristmill-decontam")
    path = os.path.join(folder, f"index-{index_key(sets, n)}.npz")
    names = tuple(s.name for s in sets)
    try:
        with np.load(path) as stored:
            return Index(stored["keys"], stored["masks"], names, n)
    except (OSError, KeyError, ValueError):
        pass
    index = load_index(sets, n)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz")
    with os.fdopen(fd, "wb") as fh:
        np.savez(fh, keys=index.keys, masks=index.masks)
    os.replace(tmp, path)
    return index
