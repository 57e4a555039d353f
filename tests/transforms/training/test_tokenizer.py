"""Tokenizer training: deterministic, bounded sample, checks before the job, bad input."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path

import pytest
from training_helpers import run_training, sample_documents, sections

from gristmill.pipelines.config import ConfigError, section_params
from gristmill.schemas.records import Document
from gristmill.transforms.params import defaults
from gristmill.transforms.training import tokenizer as tokenize
from gristmill.transforms.training.graph import plan_training
from gristmill.transforms.training.sample import BoundedSample, SampleDocs, sample_hash
from gristmill.transforms.training.tokenizer import (
    special_tokens,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [d.text for d in sample_documents(articles=0)][:60]


def _digest(tok) -> str:
    return hashlib.sha256(tok.to_str().encode()).hexdigest()


def test_wordpiece_training_is_deterministic(texts):
    # tokenizers' own WordPiece trainer numbers `##x` pieces in hash-map order, so two runs in
    # one process already differ (they did in 3 of 3 tries with tokenizers 0.23.3).
    section = copy.deepcopy(defaults(tokenize.TokenizerParams)) | {"vocab_size": 1000}
    runs = [train_tokenizer(texts, section) for _ in range(3)]
    assert len({_digest(tok) for tok in runs}) == 1
    tok = runs[0]
    spec = json.loads(tok.to_str())
    added = [t["content"] for t in spec["added_tokens"]]
    assert added == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert [tok.token_to_id(t) for t in added] == [0, 1, 2, 3, 4]
    assert tok.get_vocab_size() == 1000
    assert tok.encode("To be, or not to be").tokens[:3] == ["[CLS]", "to", "be"]


def test_byte_level_bpe_is_deterministic_and_has_no_unknowns(texts):
    section = copy.deepcopy(defaults(tokenize.TokenizerParams)) | {
        "model": "bpe",
        "vocab_size": 600,
        "lowercase": False,
    }
    first, second = train_tokenizer(texts, section), train_tokenizer(texts, section)
    assert _digest(first) == _digest(second)
    enc = first.encode("Snowman \u2603 and Ærøskøbing", add_special_tokens=False)
    assert first.token_to_id("[UNK]") not in enc.ids
    assert first.decode(enc.ids) == "Snowman \u2603 and Ærøskøbing"


def test_bounded_sample_does_not_depend_on_how_the_runner_splits_it():
    rng = random.Random(5)
    items = []
    for i in range(400):
        text = "x" * rng.randint(1, 300)
        items.append((sample_hash(0, f"doc{i}"), f"doc{i}", text, len(text)))
    combine = BoundedSample(5000)
    whole = combine.extract_output(combine.add_inputs(combine.create_accumulator(), items))
    for parts in (2, 7, 50):
        shuffled = items[:]
        rng.shuffle(shuffled)
        accs = [
            combine.add_inputs(combine.create_accumulator(), shuffled[k::parts])
            for k in range(parts)
        ]
        assert combine.extract_output(combine.merge_accumulators(accs)) == whole
    assert sum(it[3] for it in whole) <= 5000
    assert [it[0] for it in whole] == sorted(it[0] for it in items)[: len(whole)]
    rest = sorted(items)[len(whole)]
    assert sum(it[3] for it in whole) + rest[3] > 5000, "the prefix is as long as the cap allows"


def test_sample_rate_picks_by_id_hash():
    rate = 0.25
    fn = SampleDocs(3, rate)
    picked = [i for i in range(4000) if list(fn.process(Document(f"id{i}", "s", "p", "some text")))]
    assert abs(len(picked) / 4000 - rate) < 0.03
    again = [i for i in range(4000) if list(fn.process(Document(f"id{i}", "s", "p", "other text")))]
    assert picked == again, "membership depends on the id only"


@pytest.mark.parametrize(
    "given, message",
    [
        ({"model": "sentencepiece"}, "tokenizer.model: must be one of"),
        ({"vocab_size": 100, "model": "bpe"}, "tokenizer.vocab_size: must be at least 261"),
        ({"sample_rate": 0}, "tokenizer.sample_rate"),
        ({"special_tokens": {"mask": "[PAD]"}}, "tokenizer.special_tokens: must be 5 different"),
        ({"special_tokens": {"bos": "<s>"}}, "tokenizer.special_tokens.bos: unknown key"),
        ({"vocab_size": "big"}, "tokenizer.vocab_size: expected an integer"),
    ],
)
def test_bad_tokenizer_settings_name_the_key(given, message):
    with pytest.raises(ConfigError, match=message):
        section_params("tokenizer", given)
    assert section_params("mlm", {"max_seq_length": 512}).max_seq_length == 512


def _write_tokenizer(path: Path, texts: list[str], specials: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token=specials[0] if specials else "[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
    )
    path.write_text(tok.to_str(), encoding="utf-8")
    return path


def test_a_given_tokenizer_is_checked_before_the_job(tmp_path, texts):
    tok, m = sections()
    bare = _write_tokenizer(tmp_path / "bare.json", texts[:20], ["[UNK]"])
    with pytest.raises(
        ValueError, match=r"tokenizer\.path: .*has no pad '\[PAD\]'.*mask '\[MASK\]'"
    ):
        plan_training(tok | {"path": str(bare)}, m)
    with pytest.raises(ValueError, match=r"tokenizer\.path: cannot read"):
        plan_training(tok | {"path": str(tmp_path / "missing.json")}, m)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a tokenizers JSON file"):
        plan_training(tok | {"path": str(tmp_path / "junk.json")}, m)
    with pytest.raises(
        ValueError, match=r"mlm\.max_seq_length: 1024 is over the tokenizer's limit of 512"
    ):
        plan_training(tok, m | {"max_seq_length": 1024})
    with pytest.raises(ValueError, match=r"mlm\.enabled: masked-LM shards need a tokenizer"):
        plan_training(tok | {"enabled": False}, m)
    # Its own limit counts when it has one (a truncation setting in tokenizer.json).
    full = _write_tokenizer(
        tmp_path / "full.json", texts[:20], ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]
    )
    spec = json.loads(full.read_text())
    spec["truncation"] = {
        "direction": "Right",
        "max_length": 64,
        "strategy": "LongestFirst",
        "stride": 0,
    }
    full.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"limit of 64 \(its truncation\.max_length\)"):
        plan_training(tok | {"path": str(full)}, m)
    plan = plan_training(tok | {"path": str(full)}, m | {"max_seq_length": 64})
    assert set(plan.given_info.ids) == {"pad", "unk", "cls", "sep", "mask"}
    assert plan.given_info.max_length == 64


@pytest.mark.job
def test_small_corpus_and_given_tokenizer_end_to_end(tmp_path):
    """A corpus far smaller than the vocabulary still gives a tokenizer and shards; that
    tokenizer given back as tokenizer.path is copied as is and gives the same shards."""
    docs = [
        Document(f"d{i}", "books", "p", f"Line {i}: the quick brown fox jumps over dog {i}.")
        for i in range(30)
    ]
    tok, m = sections({"vocab_size": 30522}, {"max_seq_length": 32, "validation_fraction": 0.0})
    first = run_training(tmp_path / "a", docs, tok, m)
    report = first["report"]["tokenizer/tokenizer"]
    assert report["requested_vocab_size"] == 30522 and report["vocab_size"] < 200
    assert first["tokenizer"]["vocab_size"] == report["vocab_size"]
    shards = sorted(p.name for p in (tmp_path / "a" / "shards").iterdir())
    assert shards == ["train-00000-of-00001.arrow"]

    given = tmp_path / "given.json"
    given.write_bytes((tmp_path / "a" / "tokenizer.json").read_bytes())
    second = run_training(tmp_path / "b", list(reversed(docs)), tok | {"path": str(given)}, m)
    assert second["report"]["tokenizer/tokenizer"]["trained"] is False
    assert (tmp_path / "b" / "tokenizer.json").read_bytes() == given.read_bytes()
    assert second["files"] == first["files"]


def test_transformers_loads_the_trained_tokenizer(tmp_path, texts):
    transformers = pytest.importorskip("transformers", reason="transformers is in the train extra")
    section = copy.deepcopy(defaults(tokenize.TokenizerParams)) | {"vocab_size": 500}
    path = tmp_path / "tokenizer.json"
    path.write_text(train_tokenizer(texts, section).to_str(), encoding="utf-8")
    roles = special_tokens(section)
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(path), **{f"{role}_token": t for role, t in roles.items()}
    )
    ids = hf("the quick brown fox")["input_ids"]
    assert ids[0] == hf.cls_token_id and ids[-1] == hf.sep_token_id and hf.mask_token_id == 4
