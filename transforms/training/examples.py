"""Masked-LM examples: documents encoded in batches, packed into fixed-length sequences, masked.

Every random draw is a counter-based hash of (seed, document id, copy, position in the
document), never the state of a generator. So a token's mask depends only on its document,
not on how documents were batched, grouped or packed, nor on the worker that did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
import xxhash
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue
from tokenizers import Tokenizer, normalizers

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import SourceCounters
from gristmill.transforms.params import option
from gristmill.transforms.stage import IN
from gristmill.transforms.training.tokenizer import TokenizerInfo

NAME = "mlm"
MiB = 1 << 20
PACKINGS = ("concat", "document")
MASKINGS = ("static", "dynamic")
IGNORE = -100  # the label of a position that is not predicted (PyTorch's ignore_index)
CHUNK_CHARS = 10_000  # long documents are encoded in pieces this long, cut at whitespace
BATCH_CHARS = 1 << 20  # text per encode_batch call


@dataclass(frozen=True)
class MlmParams:
    """The `mlm` section."""

    enabled: bool = option(False, "write masked-LM shards (needs a tokenizer)")
    max_seq_length: int = option(128, "tokens per example", min=8, max=65536)
    packing: str = option(
        "concat",
        "concat: fill across documents, [SEP] between | document: one per sequence",
        choices=PACKINGS,
    )
    masking: str = option(
        "static",
        "static: masks in the shards | dynamic: unmasked, mask at train time",
        choices=MASKINGS,
    )
    mlm_probability: float = option(0.15, "share of tokens selected for prediction", above=0, max=1)
    mask_replace_prob: float = option(0.8, "of the selected tokens: [MASK]", min=0, max=1)
    random_replace_prob: float = option(
        0.1, "of the selected: a random token; the rest stay as they are", min=0, max=1
    )
    whole_word_mask: bool = option(False, "mask every piece of a word together")
    dupe_factor: int = option(1, "copies of every sequence, each masked differently", min=1)
    validation_fraction: float = option(
        0.01, "documents (by seeded id hash) that go to validation shards; 0: none", min=0, below=1
    )
    validation_min_share: float = option(
        0.005,
        "least share of the tokens in validation: more documents join it, in the same hash "
        "order, until it holds this much (and at least one); train always keeps one",
        min=0,
        max=0.5,
    )
    shard_bytes: int = option(256 * MiB, "target size of one Arrow shard", min=1)

    def check(self) -> None:
        total = self.mask_replace_prob + self.random_replace_prob
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"random_replace_prob: mask_replace_prob + random_replace_prob must be at most 1, got {total}"
            )
        if self.masking == "dynamic" and self.dupe_factor != 1:
            raise ValueError(
                "dupe_factor: must be 1 with masking: dynamic (copies would be identical)"
            )


@dataclass(frozen=True)
class MaskSpec:
    """Everything the packer and masker need, settled once the tokenizer is known."""

    seq_len: int
    packing: str
    static: bool
    probability: float
    mask_prob: float
    random_prob: float
    whole_word: bool
    copies: int
    seed: int
    vocab_size: int
    pad: int
    cls: int
    sep: int
    mask: int
    special_ids: tuple[int, ...]

    @classmethod
    def of(cls, section: dict, seed: int, info: TokenizerInfo) -> MaskSpec:
        return cls(
            seq_len=section["max_seq_length"],
            packing=section["packing"],
            static=section["masking"] == "static",
            probability=float(section["mlm_probability"]),
            mask_prob=float(section["mask_replace_prob"]),
            random_prob=float(section["random_replace_prob"]),
            whole_word=bool(section["whole_word_mask"]),
            copies=section["dupe_factor"],
            seed=seed,
            vocab_size=info.vocab_size,
            pad=info.ids["pad"],
            cls=info.ids["cls"],
            sep=info.ids["sep"],
            mask=info.ids["mask"],
            special_ids=info.special_ids,
        )

    def metadata(self) -> dict[str, Any]:
        return {
            "max_seq_length": self.seq_len,
            "packing": self.packing,
            "masking": "static" if self.static else "dynamic",
            "mlm_probability": self.probability,
            "mask_replace_prob": self.mask_prob,
            "random_replace_prob": self.random_prob,
            "whole_word_mask": self.whole_word,
            "dupe_factor": self.copies,
            "seed": self.seed,
        }


class EncodedDoc(NamedTuple):
    id: str
    ids: np.ndarray  # int32 token ids, no special tokens
    word_starts: np.ndarray | None  # bool per token: first piece of a word (whole-word masking)
    unk: int
    source: str = ""  # for the counts per source and language
    lang: str = ""


def chunk_text(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Pieces of at most `size` characters, cut before whitespace so the tokens stay the same
    (encoders are much slower on one huge string than on many short ones)."""
    if len(text) <= size:
        return [text]
    out = []
    start, end = 0, len(text)
    while end - start > size:
        low, high = start + size // 2, start + size
        cut = max(text.rfind(" ", low, high), text.rfind("\n", low, high))
        cut = cut if cut > start else high
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return out


def encoder(tokenizer_json: str) -> Tokenizer:
    """A tokenizer for document text: no truncation or padding, and special-token strings in
    the text ("[SEP]") are read as text, never as the special tokens themselves."""
    tok = Tokenizer.from_str(tokenizer_json)
    tok.no_truncation()
    tok.no_padding()
    tok.encode_special_tokens = True
    return tok


class DocEncoder:
    """Document text -> token ids, exactly as `encoder(json)` gives them, only faster.

    BERT's normalizer (clean text, CJK spacing, accents, lowercase) works character by
    character, so a table of what it makes of each character, applied with str.translate,
    gives the same string at a fraction of the cost (a quarter of encoding time goes to it
    otherwise). The table is filled from the tokenizer's own normalizer, one character at a
    time as they are met. Other normalizers (NFC/NFKC compose across characters), and
    tokenizers with non-special added tokens (matched before normalization), take the normal
    path."""

    def __init__(self, tokenizer_json: str):
        self.tok = encoder(tokenizer_json)
        self.table: dict[int, str] | None = None
        plain = all(t.special for t in self.tok.get_added_tokens_decoder().values())
        if isinstance(self.tok.normalizer, normalizers.BertNormalizer) and plain:
            self.normalizer = self.tok.normalizer
            self.tok.normalizer = None
            self.table = {i: self.normalizer.normalize_str(chr(i)) for i in range(128)}

    def normalize(self, text: str) -> str:
        table = self.table
        if table is None:
            return text
        if not text.isascii():
            for char in set(text):
                code = ord(char)
                if code not in table:
                    table[code] = self.normalizer.normalize_str(char)
        return text.translate(table)

    def encode(self, pieces: list[str], word_ids: bool = False) -> list:
        """Encodings of `pieces`; `word_ids` needs the slower call that also tracks words."""
        texts = [self.normalize(p) for p in pieces]
        call = self.tok.encode_batch if word_ids else self.tok.encode_batch_fast
        return call(texts, add_special_tokens=False)


class EncodeDocs(beam.DoFn):
    """Documents -> EncodedDoc, encoded `BATCH_CHARS` of text per encode_batch call (the split
    is drawn later, once the token totals are known: split.py).

    The tokenizer is built from the side input once per DoFn instance (instances are reused
    across bundles), never pickled into the graph."""

    def __init__(self, whole_word: bool, unk_token: str):
        self.whole_word = whole_word
        self.unk_token = unk_token

    def setup(self):
        self._json: str | None = None
        self._tok: DocEncoder | None = None
        self._unk: int | None = None
        self._counters = SourceCounters(NAME)

    def start_bundle(self):
        self._pending: list[Document] = []
        self._chars = 0

    def process(self, doc: Document, tokenizer_json: str):
        if tokenizer_json is not self._json:
            if self._json is None or tokenizer_json != self._json:
                self._tok = DocEncoder(tokenizer_json)
                self._unk = self._tok.tok.token_to_id(self.unk_token)
            self._json = tokenizer_json
        self._pending.append(doc)
        self._chars += len(doc.text)
        if self._chars >= BATCH_CHARS:
            yield from self._flush()

    def finish_bundle(self):
        for item in self._flush():
            yield WindowedValue(item, MIN_TIMESTAMP, [GlobalWindow()])

    def _flush(self):
        docs, self._pending, self._chars = self._pending, [], 0
        if not docs:
            return
        ids: list[list[np.ndarray]] = [[] for _ in docs]
        starts: list[list[np.ndarray]] = [[] for _ in docs]
        window: list[str] = []
        owners: list[int] = []
        chars = 0

        def encode_window():
            # Encodings are heavy (strings, offsets): keep only one window of them at a time,
            # so one huge document costs its ids, not gigabytes of Encoding objects.
            for owner, e in zip(owners, self._tok.encode(window, self.whole_word), strict=True):
                ids[owner].append(np.asarray(e.ids, dtype=np.int32))
                if self.whole_word:
                    starts[owner].append(_word_starts(e))
            window.clear()
            owners.clear()

        for i, doc in enumerate(docs):
            for piece in chunk_text(doc.text):
                window.append(piece)
                owners.append(i)
                chars += len(piece)
                if chars >= BATCH_CHARS:
                    encode_window()
                    chars = 0
        encode_window()
        for i, doc in enumerate(docs):
            doc_ids = np.concatenate(ids[i])
            doc_starts = np.concatenate(starts[i]) if self.whole_word else None
            unk = int(np.count_nonzero(doc_ids == self._unk)) if self._unk is not None else 0
            self._counters.inc(doc.source, IN)  # the live progress: documents through the step
            if not len(doc_ids):
                self._counters.inc(
                    doc.source, "empty"
                )  # shorter than one token: nothing to learn from
            self._counters.inc(doc.source, "tokens", len(doc_ids))
            if unk:
                self._counters.inc(doc.source, "unk_tokens", unk)
            yield EncodedDoc(doc.id, doc_ids, doc_starts, unk, doc.source, doc.lang)


def _word_starts(encoding) -> np.ndarray:
    """True where a token starts a word (its word id differs from the previous token's)."""
    words = np.asarray([-1 if w is None else w for w in encoding.word_ids], dtype=np.int64)
    starts = np.ones(len(words), dtype=bool)
    starts[1:] = words[1:] != words[:-1]
    return starts


# --- random draws --------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
# Streams of draws for one position: selection, how to replace, which random token; per word.
_SELECT, _HOW, _WHICH, _WORD = (np.uint64(i) for i in range(4))


def doc_key(seed: int, copy: int, doc_id: str) -> int:
    return xxhash.xxh64_intdigest(f"mlm\x00{seed}\x00{copy}\x00{doc_id}".encode())


def uniform(keys: np.ndarray, counters: np.ndarray, stream: np.uint64) -> np.ndarray:
    """splitmix64(key + counter * golden): uniform floats in [0, 1), one per (key, counter)."""
    with np.errstate(over="ignore"):
        x = keys + (counters * np.uint64(4) + stream) * _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass
class DocTokens:
    """The documents of one group, concatenated in id order, with what masking needs per token."""

    ids: np.ndarray  # int32
    lengths: np.ndarray  # int64 per document
    doc_ids: list[str]
    positions: np.ndarray  # uint64 position of each token inside its document
    words: np.ndarray | None  # uint64 word index of each token inside its document

    @classmethod
    def of(cls, docs: list[EncodedDoc], whole_word: bool) -> DocTokens:
        docs = sorted(docs, key=lambda d: d.id)
        lengths = np.array([len(d.ids) for d in docs], dtype=np.int64)
        total = int(lengths.sum())
        ids = np.concatenate([d.ids for d in docs]) if total else np.zeros(0, np.int32)
        first = np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions = (np.arange(total, dtype=np.int64) - first).astype(np.uint64)
        words = None
        if whole_word and total:
            starts = np.concatenate([d.word_starts for d in docs])
            index = np.cumsum(starts) - 1
            words = (index - index[first]).astype(np.uint64)
        return cls(ids, lengths, [d.id for d in docs], positions, words)


def mask_tokens(tokens: DocTokens, spec: MaskSpec, copy: int) -> tuple[np.ndarray, np.ndarray]:
    """(input ids, labels) for one copy: BERT's rule — of the selected tokens `mask_prob` become
    [MASK], `random_prob` a random non-special token, the rest stay; labels hold the original
    id where selected, else -100. Special tokens (and [UNK]) are never selected."""
    ids = tokens.ids
    keys = np.repeat(
        np.array([doc_key(spec.seed, copy, d) for d in tokens.doc_ids], dtype=np.uint64),
        tokens.lengths,
    )
    if tokens.words is not None:
        chosen = uniform(keys, tokens.words, _WORD) < spec.probability
    else:
        chosen = uniform(keys, tokens.positions, _SELECT) < spec.probability
    special = np.zeros(spec.vocab_size, dtype=bool)
    special[list(spec.special_ids)] = True
    chosen &= ~special[ids]
    where = np.flatnonzero(chosen)
    how = uniform(keys[where], tokens.positions[where], _HOW)
    inputs = ids.copy()
    inputs[where[how < spec.mask_prob]] = spec.mask
    swap = where[(how >= spec.mask_prob) & (how < spec.mask_prob + spec.random_prob)]
    if len(swap):
        plain = np.flatnonzero(~special)
        pick = uniform(keys[swap], tokens.positions[swap], _WHICH)
        inputs[swap] = plain[np.minimum((pick * len(plain)).astype(np.int64), len(plain) - 1)]
    labels = np.full(len(ids), IGNORE, dtype=np.int32)
    labels[where] = ids[where]
    return inputs, labels
