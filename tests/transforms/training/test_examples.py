"""Masked-LM examples: packing and masking rules, and statistics over shards made from the
committed sample corpus by the real Beam sub-graph (tokenizer trained in the same job)."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from helpers import REPO
from tokenizers import Tokenizer

from gristmill.schemas.mlm import COLUMNS, mlm_schema, numpy_dtypes, shard_metadata
from gristmill.schemas.mlm_shards import open_shard
from gristmill.schemas.records import Document
from gristmill.transforms.params import defaults
from gristmill.transforms.params import load as load_params
from gristmill.transforms.training import examples as mlm
from gristmill.transforms.training import tokenizer as tokenize
from gristmill.transforms.training.examples import (
    IGNORE,
    DocEncoder,
    DocTokens,
    EncodedDoc,
    MaskSpec,
    chunk_text,
    encoder,
    mask_tokens,
)
from gristmill.transforms.training.shards import example_columns, pack
from gristmill.transforms.training.split import split_of

ROOT = REPO
SAMPLE = ROOT / "sample"


from training_helpers import all_rows, run_training, sample_documents, sections  # noqa: E402

# --- unit rules ------------------------------------------------------------------------------


def _spec(**over) -> MaskSpec:
    base = dict(
        seq_len=16,
        packing="concat",
        static=True,
        probability=0.15,
        mask_prob=0.8,
        random_prob=0.1,
        whole_word=False,
        copies=1,
        seed=7,
        vocab_size=1000,
        pad=0,
        cls=2,
        sep=3,
        mask=4,
        special_ids=(0, 1, 2, 3, 4),
    )
    return MaskSpec(**(base | over))


def _doc(doc_id: str, n: int, rng: np.random.Generator) -> EncodedDoc:
    ids = rng.integers(5, 1000, n).astype(np.int32)
    starts = rng.random(n) < 0.6
    if n:
        starts[0] = True
    return EncodedDoc(doc_id, ids, starts, 0)


@pytest.mark.parametrize("mode", ["concat", "document"])
def test_packing_keeps_every_token_in_order(mode):
    lengths = np.array([0, 1, 13, 14, 15, 40, 2, 0, 7, 28], dtype=np.int64)
    L = 16
    packed = pack(lengths, L, mode)
    assert len(packed.dest) == lengths.sum()
    assert np.all(np.diff(packed.dest) > 0)  # tokens keep their order
    rows = np.full(packed.rows * L, -1)
    rows[::L] = -2  # CLS
    rows[packed.seps] = -3  # SEP
    owner = np.repeat(np.arange(len(lengths)), lengths)
    rows[packed.dest] = owner
    grid = rows.reshape(packed.rows, L)
    for row in grid:
        assert row[0] == -2
        used = row[row != -1]
        assert used[-1] == -3, "a row ends with [SEP]"
        assert np.all(row[len(used) :] == -1), "padding only after the closing [SEP]"
        body = used[1:-1]
        assert len(body) and body[0] >= 0 and body[-1] >= 0, (
            "no [SEP] right after [CLS] or before the end"
        )
        docs = [d for d in body if d >= 0]
        if mode == "document":
            assert len(set(docs)) == 1
        # inside a row, documents are separated by exactly one [SEP]
        assert not np.any((body[:-1] == -3) & (body[1:] == -3))
    if mode == "concat":  # rows are filled: at most one short row per document boundary
        full = lengths.sum() + np.count_nonzero(lengths)  # tokens + one [SEP] per document
        assert packed.rows <= -(-full // (L - 2)) + np.count_nonzero(lengths)


def test_masks_depend_on_the_document_not_its_neighbours():
    rng = np.random.default_rng(2)
    a, b, c = _doc("a", 500, rng), _doc("b", 300, rng), _doc("c", 50, rng)
    spec = _spec()
    alone, alone_labels = mask_tokens(DocTokens.of([a], False), spec, 0)
    mixed = DocTokens.of([c, a, b], False)  # sorted by id inside: a, b, c
    inputs, labels = mask_tokens(mixed, spec, 0)
    assert np.array_equal(inputs[:500], alone) and np.array_equal(labels[:500], alone_labels)
    other, _ = mask_tokens(DocTokens.of([a], False), spec, 1)
    assert not np.array_equal(other, alone), "copies are masked differently"
    reseeded, _ = mask_tokens(DocTokens.of([a], False), _spec(seed=8), 0)
    assert not np.array_equal(reseeded, alone)


def test_whole_word_masking_masks_words_together():
    rng = np.random.default_rng(3)
    docs = [_doc(f"d{i}", 400, rng) for i in range(20)]
    tokens = DocTokens.of(docs, True)
    _, labels = mask_tokens(tokens, _spec(whole_word=True), 0)
    starts = np.concatenate([d.word_starts for d in sorted(docs, key=lambda d: d.id)])
    word = np.cumsum(starts)
    picked = labels != IGNORE
    for w in np.unique(word[picked]):
        assert picked[word == w].all(), "a selected word is selected whole"
    assert 0.12 < picked.mean() < 0.18


def test_dynamic_masking_writes_unmasked_rows_without_labels():
    rng = np.random.default_rng(6)
    docs = [_doc(f"d{i}", int(n), rng) for i, n in enumerate(rng.integers(0, 60, 30))]
    tokens = DocTokens.of(docs, False)
    spec = _spec(static=False)
    schema = mlm_schema(spec.seq_len, spec.vocab_size, spec.metadata(), labels=False)
    packed = pack(tokens.lengths, spec.seq_len, spec.packing)
    columns = example_columns(tokens, packed, spec, numpy_dtypes(schema))
    assert "labels" not in columns and schema.names == list(COLUMNS[:-1])
    flat = columns["input_ids"]
    assert np.array_equal(flat[packed.dest], tokens.ids), "every token as it was"
    assert not np.isin(flat[packed.dest], spec.special_ids).any()
    assert columns["attention_mask"].sum() == len(tokens.ids) + packed.rows + len(packed.seps)


def test_special_and_unknown_tokens_are_never_masked():
    ids = np.array([1, 1, 1, 5, 6, 1] * 2000, dtype=np.int32)  # 1 = [UNK]
    tokens = DocTokens.of([EncodedDoc("x", ids, None, 8000)], False)
    inputs, labels = mask_tokens(tokens, _spec(probability=0.9), 0)
    assert np.all(labels[ids == 1] == IGNORE)
    assert np.all(inputs[ids == 1] == 1)
    swapped = (labels != IGNORE) & (inputs != 4) & (inputs != ids)
    assert swapped.any() and not np.isin(inputs[swapped], [0, 1, 2, 3, 4]).any()


def test_chunks_cut_at_whitespace_and_keep_the_tokens():
    text = " ".join(f"word{i % 97}, sentence." for i in range(4000))
    pieces = chunk_text(text, 1000)
    assert "".join(pieces) == text and max(map(len, pieces)) <= 1000
    assert all(p[0] == " " for p in pieces[1:])
    tok = tokenize.train_tokenizer(
        [text], copy.deepcopy(defaults(tokenize.TokenizerParams)) | {"vocab_size": 200}
    )
    enc = encoder(tok.to_str())
    whole = enc.encode(text, add_special_tokens=False).ids
    parts = [i for e in enc.encode_batch_fast(pieces, add_special_tokens=False) for i in e.ids]
    assert parts == whole
    assert tok.token_to_id("[SEP]") not in enc.encode("a [SEP] b", add_special_tokens=False).ids


MIXED = (
    "Ærøskøbing ÉCOLE naïve ﬁne ½ Ⅻ İstanbul ΣΟΦΟΣ σοφός 北京大学 こんにちは 한국어 Привет мир "
    "مرحبا שלום हिन्दी x\u0301y\u0327\u0301 zero\u200bwidth non\u00a0breaking \ufeffbom "
    "\x0b\x0c\x1f\x7f tab\tnew\nline\r\n “quoted” — dash … ＦＵＬＬ [SEP] [MASK]"
)


@pytest.mark.job
def test_fast_normalization_gives_the_tokenizers_own_ids():
    rng = np.random.default_rng(4)
    pool = sorted(set(MIXED + "abcdefghij ABCDEF .,;!?'-\n"))
    soup = ["".join(rng.choice(pool, 400)) for _ in range(200)]
    texts = [MIXED, *soup, *(d.text for d in sample_documents(articles=0)[:20])]
    for lowercase in (True, False):
        section = copy.deepcopy(defaults(tokenize.TokenizerParams)) | {
            "vocab_size": 1500,
            "lowercase": lowercase,
        }
        data = tokenize.train_tokenizer(texts, section).to_str()
        fast = DocEncoder(data)
        assert fast.table is not None, "BERT's normalizer takes the table path"
        plain = encoder(data).encode_batch(texts, add_special_tokens=False)
        assert [e.ids for e in fast.encode(texts)] == [e.ids for e in plain]
        words = [e.word_ids for e in fast.encode(texts, word_ids=True)]
        assert words == [e.word_ids for e in plain]
    bpe = copy.deepcopy(defaults(tokenize.TokenizerParams)) | {"model": "bpe", "vocab_size": 400}
    assert DocEncoder(tokenize.train_tokenizer(texts[:20], bpe).to_str()).table is None


def test_encoder_marks_word_starts_for_whole_word_masking():
    texts = ["unbelievable things happened to the quickest foxes", "short"]
    section = copy.deepcopy(defaults(tokenize.TokenizerParams)) | {"vocab_size": 60}
    data = tokenize.train_tokenizer(texts * 5, section).to_str()
    fn = mlm.EncodeDocs(True, "[UNK]")
    fn.setup()
    fn.start_bundle()
    docs = [Document(f"d{i}", "s", "p", t) for i, t in enumerate(texts)]
    out = [x for d in docs for x in fn.process(d, data)] + [w.value for w in fn.finish_bundle()]
    tok = Tokenizer.from_str(data)
    for doc in out:
        pieces = [tok.id_to_token(int(i)) for i in doc.ids]
        expected = [not p.startswith("##") for p in pieces]
        assert doc.word_starts.tolist() == expected
    assert sum(doc.word_starts.sum() for doc in out) == 8  # 7 words + "short"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("mlm_probability", 0.0, "mlm_probability"),
        ("mask_replace_prob", 0.95, "random_replace_prob"),
        ("packing", "greedy", "packing"),
        ("max_seq_length", 4, "max_seq_length"),
        ("validation_fraction", 1.0, "validation_fraction"),
    ],
)
def test_bad_mlm_settings_name_the_key(key, value, message):
    with pytest.raises(ValueError, match=f"^{message}"):
        load_params(mlm.MlmParams, copy.deepcopy(defaults(mlm.MlmParams)) | {key: value})
    with pytest.raises(ValueError, match="^dupe_factor"):
        load_params(
            mlm.MlmParams,
            copy.deepcopy(defaults(mlm.MlmParams)) | {"masking": "dynamic", "dupe_factor": 2},
        )


# --- statistics over real shards -------------------------------------------------------------


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlm-stats")
    docs = sample_documents(articles=3)
    bad = [
        Document("empty-doc", "books", "x", " \n "),  # shorter than one token
        Document("unk-doc", "books", "y", "\u2603\u2603 snowmen \u2603"),
    ]
    # A small alphabet: rare characters of the corpus become [UNK], as in real data.
    tok, m = sections({"limit_alphabet": 40})
    result = run_training(out, docs + bad, tok, m)
    return out, docs + bad, result


def _comparable(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.job
def test_masking_statistics(release):
    out, _, result = release
    rows = all_rows(out)
    meta = shard_metadata(open_shard(str(next((out / "shards").glob("train-*.arrow")))).schema)
    special = rows["special_tokens_mask"] == 1
    masked = rows["labels"] != IGNORE
    assert not (masked & special).any(), "no special token is masked"
    fraction = masked.sum() / (~special & (rows["attention_mask"] == 1)).sum()
    assert abs(fraction - 0.15) <= 0.01, fraction
    mask_id = meta["special_tokens"]["mask"][1]
    picked_inputs, picked_labels = rows["input_ids"][masked], rows["labels"][masked]
    as_mask = np.mean(picked_inputs == mask_id)
    kept = np.mean(picked_inputs == picked_labels)
    randomized = 1 - as_mask - kept
    assert abs(as_mask - 0.8) <= 0.02 and abs(kept - 0.1) <= 0.02 and abs(randomized - 0.1) <= 0.02
    for role in ("cls", "sep", "pad"):
        token = meta["special_tokens"][role][1]
        assert not np.any(picked_labels == token), f"[{role}] masked"
    splits = [result["report"][f"mlm/split:{s}"] for s in ("train", "validation")]
    assert sum(s["unk_tokens"] for s in splits) > 0, "rare characters became [UNK]"
    assert sum(s["empty_documents"] for s in splits) == 1, "the blank document has no tokens"
    assert meta["max_seq_length"] == 128 and meta["mlm_probability"] == 0.15
    assert meta["tokenizer_sha256"] == result["tokenizer"]["sha256"]


@pytest.mark.job
def test_every_sequence_is_a_piece_of_its_documents(release):
    """Unmask (labels hold the originals), cut each row at [SEP]: every piece, decoded, is a
    substring of one document of the same split (whitespace aside: WordPiece drops it)."""
    out, docs, result = release
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    meta = shard_metadata(open_shard(str(next((out / "shards").glob("train-*.arrow")))).schema)
    ids = {role: i for role, (_, i) in meta["special_tokens"].items()}
    for split in ("train", "validation"):
        threshold = result["report"]["mlm/validation"]["threshold"]
        members = [d for d in docs if split_of(0, d.id, threshold) == split]
        blob = "\x00".join(_comparable(tok.normalizer.normalize_str(d.text)) for d in members)
        rows = all_rows(out, split)
        original = np.where(rows["labels"] != IGNORE, rows["labels"], rows["input_ids"])
        tokens = 0
        for row, attention in zip(original, rows["attention_mask"], strict=True):
            used = row[attention == 1].tolist()
            assert used[0] == ids["cls"] and used[-1] == ids["sep"]
            pieces: list[list[int]] = [[]]
            for t in used[1:-1]:
                if t in (ids["sep"], ids["unk"]):
                    pieces.append([])
                else:
                    pieces[-1].append(t)
                tokens += t != ids["sep"]
            for piece in pieces:
                text = "".join(tok.id_to_token(t).removeprefix("##") for t in piece)
                assert text in blob, (split, text[:80])
        assert tokens == result["report"][f"mlm/split:{split}"]["tokens"], "no token lost or added"
