"""The release's tokenizer is a Hugging Face tokenizer directory: `AutoTokenizer` loads it with
the section's special tokens and limit, and transformers' masked-LM collator works with it."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from training_helpers import run_release, run_training, sample_documents, sections

from gristmill.pipelines.tools.validate import check_hf_files
from gristmill.schemas.mlm_shards import open_shard
from gristmill.transforms.params import defaults
from gristmill.transforms.training import tokenizer as tokenize

# Not the defaults, so the files are seen to follow the section.
ROLES = {"pad": "<pad>", "unk": "<unk>", "cls": "<s>", "sep": "</s>", "mask": "<mask>"}
SECTION = {"vocab_size": 1000, "model_max_length": 256, "lowercase": False, "special_tokens": ROLES}
HF = (tokenize.CONFIG_FILENAME, tokenize.SPECIAL_TOKENS_FILENAME)


@pytest.fixture(scope="module")
def hf_release(tmp_path_factory) -> tuple[Path, dict]:
    """A tokenizer trained by the job's own sub-graph (no shards): (folder, what it emitted)."""
    out = tmp_path_factory.mktemp("hf") / "release"
    tok, m = sections(SECTION, {"enabled": False})
    return out, run_training(out, sample_documents(articles=2)[::2], tok, m)


def _section(**changes) -> dict:
    return copy.deepcopy(defaults(tokenize.TokenizerParams)) | changes


def _auto_tokenizer(folder: Path):
    transformers = pytest.importorskip("transformers", reason="transformers is in the train extra")
    return transformers.AutoTokenizer.from_pretrained(str(folder))


@pytest.mark.job
def test_the_files_are_written_and_listed(hf_release):
    out, result = hf_release
    listed = {path: (rows, size, sha) for path, rows, size, sha in result["files"]}
    assert set(listed) == set(tokenize.HF_FILENAMES)
    for name in HF:
        raw = (out / name).read_bytes()
        assert listed[name] == (0, len(raw), hashlib.sha256(raw).hexdigest())
    config = json.loads((out / tokenize.CONFIG_FILENAME).read_text())
    tokens = {f"{role}_token": token for role, token in ROLES.items()}
    assert config == tokens | {
        "model_max_length": 256,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "do_lower_case": False,
        "clean_up_tokenization_spaces": False,
    }
    assert json.loads((out / tokenize.SPECIAL_TOKENS_FILENAME).read_text()) == tokens
    assert check_hf_files(str(out), _manifest(result)) == []


@pytest.mark.job
def test_auto_tokenizer_loads_the_directory(hf_release):
    out, _ = hf_release
    hf = _auto_tokenizer(out)
    # Trained vocabularies give pad, unk, cls, sep, mask the ids 0..4.
    for i, (role, token) in enumerate(ROLES.items()):
        assert getattr(hf, f"{role}_token") == token
        assert getattr(hf, f"{role}_token_id") == i
    assert hf.model_max_length == 256
    assert len(hf) == tokenize.Tokenizer.from_file(str(out / "tokenizer.json")).get_vocab_size()
    ids = hf("The Quick brown fox.")["input_ids"]
    assert ids[0] == hf.cls_token_id and ids[-1] == hf.sep_token_id
    assert hf.convert_ids_to_tokens(ids)[1].startswith("T")  # lowercase: false kept the case


@pytest.mark.job
def test_masked_lm_collator_and_padding(hf_release):
    out, _ = hf_release
    hf = _auto_tokenizer(out)
    torch = pytest.importorskip("torch")
    from transformers import DataCollatorForLanguageModeling

    texts = [d.text[: 40 + 30 * i] for i, d in enumerate(sample_documents(articles=0)[:8])]
    encoded = [hf(t, truncation=True, max_length=64) for t in texts]
    lengths = [len(e["input_ids"]) for e in encoded]
    assert len(set(lengths)) > 1, "the batch needs padding"

    padded = hf.pad(encoded, return_tensors="pt")
    assert padded["input_ids"].shape == (len(texts), max(lengths))
    assert (padded["input_ids"][padded["attention_mask"] == 0] == hf.pad_token_id).all()

    torch.manual_seed(0)
    collator = DataCollatorForLanguageModeling(hf, mlm_probability=0.15)
    batch = collator(encoded)
    labels, ids = batch["labels"], batch["input_ids"]
    assert ids.shape == labels.shape == (len(texts), max(lengths))
    chosen = labels != -100
    assert chosen.any() and (ids[chosen] == hf.mask_token_id).any()
    assert not chosen[padded["attention_mask"] == 0].any(), "padding is never a label"
    assert not chosen[:, 0].any(), "[CLS] is never masked"


def test_files_are_deterministic_and_sorted():
    section = _section()
    first = tokenize.hf_files(section)
    assert first == tokenize.hf_files(copy.deepcopy(section))
    for raw in first.values():
        keys = list(json.loads(raw))
        assert keys == sorted(keys) and raw.endswith(b"\n")
    config = json.loads(first[tokenize.CONFIG_FILENAME])
    assert (config["model_max_length"], config["do_lower_case"]) == (512, True)
    assert config["mask_token"] == "[MASK]"


def test_a_given_tokenizer_gets_the_files_too(tmp_path):
    """Copied as is, with its own truncation limit as model_max_length (the limit
    mlm.max_seq_length was checked against)."""
    section = _section(vocab_size=200, special_tokens=ROLES)
    texts = [d.text for d in sample_documents(articles=0)][:20]
    tok = tokenize.train_tokenizer(texts, section)
    tok.enable_truncation(64)
    data = tok.to_str()
    given = tmp_path / "given.json"
    given.write_text(data, encoding="utf-8")
    sha = hashlib.sha256(data.encode("utf-8")).hexdigest()
    out = tmp_path / "release"
    out.mkdir()
    emitted = list(tokenize.CopyGiven(str(out), sha, section).process(str(given)))
    files = [e.value for e in emitted if getattr(e, "tag", None) == "files"]
    assert sorted(f.path for f in files) == sorted(tokenize.HF_FILENAMES)
    config = json.loads((out / tokenize.CONFIG_FILENAME).read_text())
    assert config["model_max_length"] == 64 and config["pad_token"] == "<pad>"
    hf = _auto_tokenizer(out)
    assert (hf.mask_token, hf.mask_token_id, hf.model_max_length) == ("<mask>", 4, 64)
    # with shards, their sequence length wins: a model trained on them takes no longer input
    shorter = tmp_path / "with_shards"
    shorter.mkdir()
    list(tokenize.CopyGiven(str(shorter), sha, section, 48).process(str(given)))
    assert json.loads((shorter / tokenize.CONFIG_FILENAME).read_text())["model_max_length"] == 48


@pytest.mark.job
def test_model_max_length_is_the_shards_sequence_length(tmp_path):
    """A real job with shards of 96 tokens (not the mlm default, under the tokenizer's 512):
    AutoTokenizer on the release says 96, as long as the shards' rows."""
    out = tmp_path / "release"
    manifest = run_release(out, "mlm.max_seq_length=96", sources=("books",))
    assert defaults(tokenize.TokenizerParams)["model_max_length"] == 512
    config = json.loads((out / tokenize.CONFIG_FILENAME).read_text())
    assert config["model_max_length"] == 96
    hf = _auto_tokenizer(out)
    assert hf.model_max_length == 96
    shard = next(o["path"] for o in manifest["outputs"] if o["path"].endswith(".arrow"))
    table = open_shard(str(out / shard))
    assert table.schema.field("input_ids").type.list_size == hf.model_max_length


def _manifest(result: dict) -> dict:
    outputs = [{"path": p, "rows": r, "bytes": b, "sha256": s} for p, r, b, s in result["files"]]
    return {"tokenizer": result["tokenizer"], "outputs": outputs}


@pytest.mark.job
def test_validate_names_a_token_the_tokenizer_lacks(hf_release, tmp_path):
    out, result = hf_release
    copy_ = tmp_path / "copy"
    copy_.mkdir()
    for name in tokenize.HF_FILENAMES:
        copy_.joinpath(name).write_bytes((out / name).read_bytes())
    config = json.loads((out / tokenize.CONFIG_FILENAME).read_text()) | {"mask_token": "[MASK]"}
    (copy_ / tokenize.CONFIG_FILENAME).write_text(json.dumps(config))
    (copy_ / tokenize.SPECIAL_TOKENS_FILENAME).write_text("{not json")
    problems = check_hf_files(str(copy_), _manifest(result))
    missing = "mask_token '[MASK]' is not a token of tokenizer.json"
    assert problems[0] == f"tokenizer_config.json: {missing}"
    assert problems[1].startswith("special_tokens_map.json: not valid JSON")
