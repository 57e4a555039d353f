"""Tokenizer: a subword vocabulary trained on a deterministic sample of the clean documents.

The sample is the documents whose seeded id hash falls below `sample_rate`, cut to the lowest
hashes that fit in `sample_bytes`, so it depends only on the data. One worker trains on it (the
sample is bounded, a tokenizer trainer needs it whole), writes `tokenizer.json` through Beam's
FileSystems and hands the JSON on as a singleton: encoders on any runner rebuild the tokenizer
from that side input, with no disk shared with the driver. Beside it go `tokenizer_config.json`
and `special_tokens_map.json`, so the release is a Hugging Face tokenizer directory.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

from gristmill.schemas.records import FileInfo
from gristmill.transforms.params import as_dict, option
from gristmill.transforms.sinks import write_bytes
from gristmill.transforms.training.sample import SampleItem

NAME = "tokenizer"
MiB = 1 << 20
ROLES = ("pad", "unk", "cls", "sep", "mask")
MODELS = ("wordpiece", "bpe", "unigram")
FILENAME = "tokenizer.json"
CONFIG_FILENAME = "tokenizer_config.json"
SPECIAL_TOKENS_FILENAME = "special_tokens_map.json"
HF_FILENAMES = (FILENAME, CONFIG_FILENAME, SPECIAL_TOKENS_FILENAME)  # the release's tokenizer


@dataclass(frozen=True)
class SpecialTokens:
    """Role -> token; trained vocabularies give them ids 0..4 in this order."""

    pad: str = option("[PAD]", "padding")
    unk: str = option("[UNK]", "unknown")
    cls: str = option("[CLS]", "sequence start")
    sep: str = option("[SEP]", "separator and sequence end")
    mask: str = option("[MASK]", "masked position")

    def check(self) -> None:
        tokens = [getattr(self, r) for r in ROLES]
        for role, token in zip(ROLES, tokens, strict=True):
            if not token.strip():
                raise ValueError(f"{role}: must not be empty")
        if len(set(tokens)) != len(ROLES):
            raise ValueError(f"must be {len(ROLES)} different tokens, got {tokens}")


@dataclass(frozen=True)
class TokenizerParams:
    """The `tokenizer` section."""

    enabled: bool = option(False, "train a tokenizer on the clean documents")
    path: str | None = option(None, "an existing tokenizer.json to use instead of training one")
    model: str = option(
        "wordpiece",
        "wordpiece (BERT) | bpe (byte-level) | unigram (not reproducible)",
        choices=MODELS,
    )
    vocab_size: int = option(30522, "tokens in the vocabulary", min=32)
    min_frequency: int = option(2, "a merge or piece needs this many occurrences", min=0)
    limit_alphabet: int = option(
        1000, "wordpiece/unigram: rarer characters become [UNK]; 0 = no limit", min=0
    )
    lowercase: bool = option(True, "lowercase and strip accents before tokenizing")
    model_max_length: int = option(
        512, "the longest sequence a model takes; mlm.max_seq_length <= this", min=8
    )
    sample_rate: float = option(
        1.0, "fraction of documents (by seeded id hash) eligible for training", above=0, max=1
    )
    sample_bytes: int = option(
        256 * MiB, "cap: the lowest-hash eligible documents up to this much text", min=1
    )
    special_tokens: SpecialTokens = option(factory=SpecialTokens)

    def check(self) -> None:
        if self.path == "":
            raise ValueError("path: expected the path of a tokenizer.json, got ''")
        smallest = 261 if self.model == "bpe" else 32  # byte-level BPE starts from 256 bytes
        if self.vocab_size < smallest:
            raise ValueError(
                f"vocab_size: must be at least {smallest} for {self.model}, got {self.vocab_size}"
            )


def special_tokens(section: dict) -> dict[str, str]:
    """Role -> token, in vocabulary order (pad, unk, cls, sep, mask get ids 0..4 when trained)."""
    return {role: section["special_tokens"][role] for role in ROLES}


# --- construction and training --------------------------------------------------------------


def new_tokenizer(section: dict) -> tuple[Tokenizer, trainers.Trainer]:
    """An untrained tokenizer and its trainer, as the section describes."""
    specials = list(special_tokens(section).values())
    unk = section["special_tokens"]["unk"]
    lower = section["lowercase"]
    common = {"vocab_size": section["vocab_size"], "special_tokens": specials}
    limit = section["limit_alphabet"] or None
    model = section["model"]
    if model == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk, max_input_chars_per_word=100))
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lower
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(
            **common,
            min_frequency=section["min_frequency"],
            limit_alphabet=limit,
            continuing_subword_prefix="##",
            show_progress=False,
        )
    elif model == "bpe":
        tok = Tokenizer(models.BPE(unk_token=None))
        steps = [normalizers.NFC()] + ([normalizers.Lowercase()] if lower else [])
        tok.normalizer = normalizers.Sequence(steps)
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            **common,
            min_frequency=section["min_frequency"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.Unigram())
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lower else [])
        tok.normalizer = normalizers.Sequence(steps)
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(**common, unk_token=unk, show_progress=False)
    return tok, trainer


def finish_tokenizer(tok: Tokenizer, roles: dict[str, str]) -> None:
    """[CLS] $A [SEP] around single sequences, so transformers adds them like BERT's does."""
    cls, sep = roles["cls"], roles["sep"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))],
    )


def alphabet(texts: list[str], normalizer: normalizers.Normalizer, limit: int) -> list[str]:
    """The `limit` most frequent non-space characters after normalization, ties by code point.

    Characters are counted raw (a bincount of code points) and each distinct one normalized
    alone: normalizing all the text first is ten times slower, and near enough is enough here,
    since the list only has to be the same from run to run."""
    raw = np.zeros(0x110000, dtype=np.int64)
    for start in range(0, len(texts), 256):
        points = np.frombuffer("".join(texts[start : start + 256]).encode("utf-32-le"), np.uint32)
        raw += np.bincount(points, minlength=0x110000)
    counts: Counter[str] = Counter()
    for point in np.flatnonzero(raw):
        for c in normalizer.normalize_str(chr(point)):
            if not c.isspace():
                counts[c] += int(raw[point])
    chars = sorted(counts, key=lambda c: (-counts[c], c))
    return sorted(chars[:limit] if limit else chars)


def _drop_added(tok: Tokenizer, keep: set[str]) -> Tokenizer:
    """The tokenizer with only `keep` among its added tokens (the rest stay in the vocabulary)."""
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in keep]
    return Tokenizer.from_str(json.dumps(spec, ensure_ascii=False))


def train_tokenizer(texts: list[str], section: dict) -> Tokenizer:
    """Trains on `texts` in the order given; the same texts give the same tokenizer.json.

    tokenizers' WordPiece trainer gives continuing-subword pieces (`##e`) their ids in hash-map
    order, and merge ties are broken by id, so two runs differ. Here the alphabet is settled
    beforehand (most frequent characters, ties by code point) and every `##c` piece is handed
    to the trainer up front, after the special tokens, so every id is fixed before training;
    they are then taken off the added-token list, staying ordinary vocabulary. Byte-level BPE
    is deterministic as it is. Unigram is not (its EM sums floats in hash-map order).
    """
    roles = special_tokens(section)
    tok, trainer = new_tokenizer(section)
    if section["model"] == "wordpiece":
        chars = alphabet(texts, tok.normalizer, section["limit_alphabet"])
        pieces = [f"##{c}" for c in chars]
        trainer.special_tokens = [*roles.values(), *pieces]
        trainer.initial_alphabet = chars
        trainer.limit_alphabet = len(chars) or None
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    if section["model"] == "wordpiece":
        tok = _drop_added(tok, set(roles.values()))
    finish_tokenizer(tok, roles)
    return tok


@dataclass(frozen=True)
class TokenizerInfo:
    """What the rest of the job needs to know of a tokenizer, checked once."""

    sha256: str
    vocab_size: int
    ids: dict[str, int]  # role -> id
    special_ids: tuple[int, ...]  # never masked, never drawn as a random replacement
    roles: dict[str, str]  # role -> token
    max_length: int | None  # the tokenizer's own limit (its truncation setting), if it has one

    def as_json(self, path: str = FILENAME) -> dict[str, Any]:
        return {"path": path, "sha256": self.sha256, "vocab_size": self.vocab_size}


def inspect_tokenizer(data: str, roles: dict[str, str], where: str = "tokenizer") -> TokenizerInfo:
    """Loads a tokenizer.json and checks it has every special token the examples need."""
    try:
        tok = Tokenizer.from_str(data)
    except Exception as err:  # the tokenizers library raises plain Exception subclasses
        raise ValueError(f"{where}: not a tokenizers JSON file ({err})") from None
    ids: dict[str, int] = {}
    missing = []
    for role, token in roles.items():
        found = tok.token_to_id(token)
        if found is None:
            missing.append(f"{role} {token!r}")
        else:
            ids[role] = found
    if missing:
        raise ValueError(
            f"{where}: the tokenizer has no {', '.join(missing)}; masked-LM examples need "
            f"{', '.join(ROLES)} tokens (name its own with tokenizer.special_tokens.ROLE)"
        )
    special = set(ids.values())
    special.update(i for i, t in tok.get_added_tokens_decoder().items() if t.special)
    truncation = tok.truncation
    return TokenizerInfo(
        sha256=hashlib.sha256(data.encode("utf-8")).hexdigest(),
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        ids=ids,
        special_ids=tuple(sorted(special)),
        roles=dict(roles),
        max_length=truncation["max_length"] if truncation else None,
    )


def read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return fh.read().decode("utf-8")


def load_given(section: dict) -> tuple[str, TokenizerInfo]:
    """The tokenizer named by `tokenizer.path`, checked before the job runs."""
    path = section["path"]
    try:
        data = read_text(path)
    except Exception as err:
        raise ValueError(f"path: cannot read {path} ({type(err).__name__})") from None
    return data, inspect_tokenizer(data, special_tokens(section), where=f"path: {path}")


# --- the Hugging Face tokenizer directory -----------------------------------------------------


def _json_bytes(obj: dict[str, Any]) -> bytes:
    """Sorted keys, fixed indent, no timestamps: the same section gives the same bytes."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def hf_files(section: dict, max_length: int | None = None) -> dict[str, bytes]:
    """tokenizer_config.json and special_tokens_map.json as `PreTrainedTokenizerFast` reads them.

    Written by hand because transformers is an optional extra the job must not need.
    `max_length` is the longest sequence a model of this release takes (`model_length`);
    without it, the section's `model_max_length`."""
    tokens = {f"{role}_token": token for role, token in special_tokens(section).items()}
    config = {
        **tokens,
        "clean_up_tokenization_spaces": False,
        "do_lower_case": bool(section["lowercase"]),
        "model_max_length": int(max_length or section["model_max_length"]),
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    return {CONFIG_FILENAME: _json_bytes(config), SPECIAL_TOKENS_FILENAME: _json_bytes(tokens)}


def write_hf_files(
    root: str, section: dict, max_length: int | None = None
) -> Iterator[beam.pvalue.TaggedOutput]:
    """Writes the two files beside tokenizer.json; yields their FileInfo for the manifest."""
    for name, raw in hf_files(section, max_length).items():
        write_bytes(posixpath.join(root, name), raw)
        sha = hashlib.sha256(raw).hexdigest()
        yield beam.pvalue.TaggedOutput("files", FileInfo(name, 0, len(raw), sha))


def model_length(shard_length: int | None, own_limit: int | None) -> int | None:
    """tokenizer_config.json's model_max_length: the shards' sequence length when the release
    has shards (what a model trained on them takes; planning checked it fits), else a given
    tokenizer's own limit (its truncation), else None (the section's `model_max_length`)."""
    return shard_length or own_limit


class TrainTokenizer(beam.DoFn):
    """Trains on the whole (bounded) sample, writes tokenizer.json, emits its JSON text.
    `shard_length` is mlm.max_seq_length when the job writes shards."""

    def __init__(self, section: dict, root: str, shard_length: int | None = None):
        self.section = section
        self.root = root
        self.shard_length = shard_length

    def process(self, sample: list[SampleItem]):
        texts = [text for _, _, text, _ in sample]
        tok = train_tokenizer(texts, self.section)
        data = tok.to_str(pretty=True)
        info = inspect_tokenizer(data, special_tokens(self.section))
        size = info.vocab_size
        Metrics.counter(NAME, "sample.documents").inc(len(sample))
        if size < self.section["vocab_size"]:
            # A corpus too small for the vocabulary asked for: the trainer stops early.
            Metrics.counter(NAME, "vocab.short").inc()
        raw = data.encode("utf-8")
        write_bytes(posixpath.join(self.root, FILENAME), raw)
        yield beam.pvalue.TaggedOutput("files", FileInfo(FILENAME, size, len(raw), info.sha256))
        yield from write_hf_files(self.root, self.section, model_length(self.shard_length, None))
        report = {
            "trained": True,
            "model": self.section["model"],
            "vocab_size": size,
            "requested_vocab_size": self.section["vocab_size"],
            "sample_documents": len(sample),
            "sample_bytes": sum(it[3] for it in sample),
            "sha256": info.sha256,
            # tokenizers' Unigram trainer sums floats in hash-map order: train it once, then
            # reuse it through tokenizer.path for byte-identical releases.
            "reproducible": self.section["model"] != "unigram",
        }
        yield beam.pvalue.TaggedOutput("report", (NAME, "tokenizer", report))
        yield data


class CopyGiven(beam.DoFn):
    """A given tokenizer goes into the release as is, so the release is self-contained.

    Read on a worker (any Beam filesystem) rather than embedded in the graph; it must still be
    the file that was checked before the job started. `section` names the special tokens and
    limits for tokenizer_config.json; without it the section's defaults are assumed.
    `shard_length` is mlm.max_seq_length when the job writes shards."""

    def __init__(
        self,
        root: str,
        sha256: str,
        section: dict | None = None,
        shard_length: int | None = None,
    ):
        self.root = root
        self.sha256 = sha256
        self.section = section if section is not None else as_dict(TokenizerParams())
        self.shard_length = shard_length

    def process(self, path: str):
        data = read_text(path)
        raw = data.encode("utf-8")
        sha = hashlib.sha256(raw).hexdigest()
        if sha != self.sha256:
            raise RuntimeError(f"tokenizer.path: {path} changed after the job was planned")
        tok = Tokenizer.from_str(data)
        size = tok.get_vocab_size(with_added_tokens=True)
        write_bytes(posixpath.join(self.root, FILENAME), raw)
        yield beam.pvalue.TaggedOutput("files", FileInfo(FILENAME, size, len(raw), sha))
        limit = tok.truncation["max_length"] if tok.truncation else None
        yield from write_hf_files(self.root, self.section, model_length(self.shard_length, limit))
        report = {"trained": False, "vocab_size": size, "sha256": sha}
        yield beam.pvalue.TaggedOutput("report", (NAME, "tokenizer", report))
        yield data
