"""Where listed values occur in a release's masked-LM shards, by their token ids.

The shards hold token ids, not text, so a value is looked for as the token-id sequences the
release's tokenizer makes of it in running text: the value as given, in a few case forms (only
for a tokenizer that keeps case) and, for a phone-like value, with its digit groups joined the
usual ways ("212 555 0143", "(212) 555-0143", "212.555.0143", ...); each alone and after a
space (byte-level BPE and Metaspace tokenizers mark a word's start). The document encoder of the
job (`transforms.mlm.DocEncoder`) makes them, so they are the ids the shards would hold. It finds
the value where it is a whole word or words in the text, not inside a longer word.

A shard row is `[CLS] tokens [SEP] ... [PAD]`; its original tokens are `input_ids` with `labels`
put back where a position was masked (labels are -100 elsewhere). A document runs on into the
next row when a row is full (its closing [SEP] in the last column), so rows are joined there and
broken at every other [SEP] and at padding; a value cut by a row end is still found (and, at
worst, a value spanning the end of one document and the start of the next is reported, which
for an erasure check errs on the safe side). Shards are read one record batch at a time from a
memory map (or a stream, for remote paths), never whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.schemas.mlm import shard_metadata
from gristmill.schemas.mlm_shards import batch_arrays
from gristmill.transforms.training.examples import IGNORE, DocEncoder

BREAK = -1  # in a reconstructed stream: no value runs across this position
PREFIXES = ("", " ")


class ShardSearchError(Exception):
    """The shards cannot be searched (no matching tokenizer), phrased for the person auditing."""


def _read(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return fh.read()


def value_texts(value: str, keeps_case: bool) -> list[str]:
    """The ways a value may be written in text that tokenize differently."""
    base = unicodedata.normalize("NFC", value.strip())
    forms = [base]
    if keeps_case:
        forms += [base.lower(), base.upper(), base[:1].upper() + base[1:]]
    groups = re.findall(r"\d+", base)
    digits = sum(map(len, groups))
    if digits >= 6 and digits >= 0.6 * len(base.replace(" ", "")):
        plus = "+" if base.startswith("+") else ""
        forms += [plus + sep.join(groups) for sep in ("", " ", "-", ".", "/")]
        if len(groups) == 3:
            forms.append(f"({groups[0]}) {groups[1]}-{groups[2]}")
    return list(dict.fromkeys(forms))


def keeps_case(encoder: DocEncoder) -> bool:
    """Whether the tokenizer tells "A" from "a" (then case forms of a value are searched)."""
    return len({tuple(e.ids) for e in encoder.encode(["Zq Audit", "zq audit"])}) > 1


def value_patterns(encoder: DocEncoder, value: str, cased: bool) -> list[np.ndarray]:
    """The distinct non-empty token-id sequences of `value_texts`, alone and after a space.
    A sequence of unknown tokens only is left out: the shards cannot hold such a value (its
    characters are all [UNK] there), and it would match every unknown word of the corpus."""
    texts = [p + t for t in value_texts(value, cased) for p in PREFIXES]
    seqs = {tuple(e.ids) for e in encoder.encode(texts)}
    unk = _unk_id(encoder)
    return [np.asarray(s, dtype=np.int64) for s in sorted(seqs) if s and any(t != unk for t in s)]


def _unk_id(encoder: DocEncoder) -> int | None:
    token = getattr(encoder.tok.model, "unk_token", None)
    return encoder.tok.token_to_id(str(token)) if token else None


def original_stream(arrays: dict[str, np.ndarray], ids: dict[str, int]) -> np.ndarray:
    """One record batch's rows as one stream of original token ids, with BREAK between
    documents and where rows end short; full rows run on into the next."""
    tokens = arrays["input_ids"].astype(np.int64)
    labels = arrays.get("labels")
    if labels is not None:
        masked = labels != IGNORE
        tokens[masked] = labels[masked]
    rows, width = tokens.shape
    column = np.broadcast_to(np.arange(width), (rows, width))
    joined = ((column == 0) & (tokens == ids["cls"])) | (
        (column == width - 1) & (tokens == ids["sep"])
    )
    breaks = (tokens == ids["sep"]) | (tokens == ids["pad"]) | (tokens == ids["cls"])
    breaks |= arrays["attention_mask"] == 0
    stream = np.where(breaks & ~joined, BREAK, tokens)
    return stream[~joined]


def find_all(stream: np.ndarray, patterns: list[np.ndarray]) -> list[np.ndarray]:
    """Start positions of each pattern in `stream`. Each is anchored on its highest id (rarer,
    as a rule, in trained vocabularies); all anchors are located in one pass over the stream,
    so many values cost little more than one."""
    anchors = [int(np.argmax(p)) for p in patterns]
    tokens = np.unique([p[k] for p, k in zip(patterns, anchors, strict=True)])
    where = np.flatnonzero(np.isin(stream, tokens))
    order = np.argsort(stream[where], kind="stable")
    keys, where = stream[where][order], where[order]
    n = len(stream)
    out = []
    for pattern, k in zip(patterns, anchors, strict=True):
        lo, hi = (
            np.searchsorted(keys, pattern[k], "left"),
            np.searchsorted(keys, pattern[k], "right"),
        )
        starts = where[lo:hi] - k
        starts = starts[(starts >= 0) & (starts <= n - len(pattern))]
        for j in range(len(pattern)):
            if j != k and len(starts):
                starts = starts[stream[starts + j] == pattern[j]]
        out.append(np.sort(starts))
    return out


@dataclass
class ShardHits:
    files: set[str]
    matches: int = 0


class ShardSearch:
    """The shards of one release, searched for many values in one pass over each shard."""

    def __init__(self, root: str, tokenizer: str | None = None):
        self.root = root
        self.paths = _shards(root)
        self.tokenizer_path = tokenizer or _release_tokenizer(root)
        self.encoder: DocEncoder | None = None
        if self.paths:
            self._load_tokenizer()

    def _load_tokenizer(self) -> None:
        if not FileSystems.exists(self.tokenizer_path):
            raise ShardSearchError(
                f"{self.tokenizer_path}: not found; the shards cannot be searched without the "
                "tokenizer they were made with (give it with --tokenizer)"
            )
        raw = _read(self.tokenizer_path)
        sha = hashlib.sha256(raw).hexdigest()
        for path in self.paths:
            with _open_stream(path) as reader:
                meta = shard_metadata(reader.schema)
            if meta.get("tokenizer_sha256") != sha:
                raise ShardSearchError(
                    f"{_rel(self.root, path)} was made with tokenizer sha256 "
                    f"{str(meta.get('tokenizer_sha256'))[:12]}…, not {self.tokenizer_path} "
                    f"({sha[:12]}…); give the right one with --tokenizer"
                )
        self.encoder = DocEncoder(raw.decode("utf-8"))

    def search(self, values: list[str]) -> list[ShardHits]:
        hits = [ShardHits(set()) for _ in values]
        if not self.paths:
            return hits
        cased = keeps_case(self.encoder)
        patterns = [
            (i, p) for i, v in enumerate(values) for p in value_patterns(self.encoder, v, cased)
        ]
        if not patterns:
            return hits
        longest = max((len(p) for _, p in patterns), default=1)
        for path in self.paths:
            rel = _rel(self.root, path)
            for stream, fresh in _streams(path, longest):
                found = find_all(stream, [p for _, p in patterns])
                for (i, pattern), starts in zip(patterns, found, strict=True):
                    new = int(np.count_nonzero(starts + len(pattern) > fresh))
                    if new:
                        hits[i].files.add(rel)
                        hits[i].matches += new
        return hits


def _streams(path: str, longest: int) -> Iterator[tuple[np.ndarray, int]]:
    """(stream, where its new tokens start) per record batch; each stream begins with the
    last tokens of the one before, so a value cut by a batch boundary is found once."""
    carry = np.zeros(0, dtype=np.int64)
    with _open_stream(path) as reader:
        meta = shard_metadata(reader.schema)
        ids = {role: pair[1] for role, pair in meta["special_tokens"].items()}
        for batch in reader:
            if not batch.num_rows:
                continue
            stream = np.concatenate([carry, original_stream(batch_arrays(batch), ids)])
            yield stream, len(carry)
            carry = stream[len(stream) - min(len(stream), longest - 1) :]


def _release_tokenizer(root: str) -> str:
    """The tokenizer the manifest names (tokenizer.json unless it says otherwise)."""
    rel = "tokenizer.json"
    try:
        manifest = json.loads(_read(posixpath.join(root, "manifest.json")))
        rel = (manifest.get("tokenizer") or {}).get("path") or rel
    except (OSError, ValueError, AttributeError):
        pass
    return rel if "://" in rel or rel.startswith("/") else posixpath.join(root, rel)


def _open_stream(path: str):
    if os.path.exists(path):
        return pa.ipc.open_stream(pa.memory_map(path, "r"))
    fh = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return pa.ipc.open_stream(pa.PythonFile(fh, mode="r"))


def _shards(root: str) -> list[str]:
    try:
        found = FileSystems.match([posixpath.join(root, "shards", "*.arrow")])[0].metadata_list
    except Exception:
        return []
    return sorted(m.path for m in found)


def _rel(root: str, path: str) -> str:
    return path[len(root) :].lstrip("/") if path.startswith(root) else path
