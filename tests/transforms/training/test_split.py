"""The validation split: whole documents by id hash, never empty, holding a least share of the
tokens, with a warning in the report when the corpus cannot give one; never an empty shard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training_helpers import all_rows, run_training, sample_documents, sections

from gristmill.schemas.mlm_shards import open_shard
from gristmill.schemas.records import Document
from gristmill.transforms.training.split import (
    BUCKETS,
    SHIFT,
    fraction_threshold,
    plan_threshold,
    split_of,
    split_score,
)


def _histogram(sizes: dict[str, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    tokens, docs = np.zeros(BUCKETS, np.int64), np.zeros(BUCKETS, np.int64)
    for doc_id, n in sizes.items():
        b = split_score(seed, doc_id) >> SHIFT
        tokens[b] += n
        docs[b] += n > 0
    return tokens, docs


def _shares(sizes: dict[str, int], threshold: int) -> tuple[float, int, int]:
    val = {d: n for d, n in sizes.items() if split_of(0, d, threshold) == "validation"}
    train = {d: n for d, n in sizes.items() if d not in val and n}
    return sum(val.values()) / sum(sizes.values()), len(val), len(train)


@pytest.mark.unit
def test_the_threshold_reaches_the_least_share_and_keeps_train():
    rng = np.random.default_rng(0)
    sizes = {f"doc{i}": int(n) for i, n in enumerate(rng.integers(50, 5000, 300))}
    by_fraction = fraction_threshold(0.01)
    for min_share in (0.0, 0.005, 0.05, 0.3):
        threshold = plan_threshold(*_histogram(sizes), 0.01, min_share)
        share, n_val, n_train = _shares(sizes, threshold)
        assert threshold >= by_fraction, "never fewer documents than validation_fraction gives"
        assert n_val >= 1 and n_train >= 1
        assert share >= min_share
    # a share already reached by the fraction leaves the fraction's draw as it was
    assert plan_threshold(*_histogram(sizes), 0.5, 0.01) == fraction_threshold(0.5)
    assert plan_threshold(*_histogram(sizes), 0.0, 0.3) == 0, "0 turns validation off"


@pytest.mark.unit
def test_few_documents_still_give_both_splits_or_none():
    two = {"a": 10, "b": 4000}
    share, n_val, n_train = _shares(two, plan_threshold(*_histogram(two), 0.01, 0.005))
    assert (n_val, n_train) == (1, 1)
    one = {"only": 900, "blank": 0}
    threshold = plan_threshold(*_histogram(one), 0.9, 0.5)
    assert split_of(0, "only", threshold) == "train", "train keeps the one document"


def _job(out: Path, docs: list[Document], **mlm_) -> dict:
    tok, m = sections({"vocab_size": 800}, {"max_seq_length": 64, **mlm_})
    return run_training(out, docs, tok, m)


@pytest.fixture(scope="module")
def books() -> list[Document]:
    """Whole plays, one document each: few and long, the case a per-document draw gets wrong."""
    docs = sample_documents(articles=0, block_chars=10**9)
    return [d for d in docs if d.source == "books"]


@pytest.mark.job
def test_few_long_documents_get_a_real_validation_split(tmp_path, books):
    datasets = pytest.importorskip("datasets", reason="datasets is in the train extra")
    result = _job(tmp_path, books, validation_fraction=0.01, validation_min_share=0.05)
    report = result["report"]["mlm/validation"]
    assert report["documents"] >= 1 and report["warning"] is None
    assert report["share"] >= 0.05
    rows = {s: len(all_rows(tmp_path, s)["input_ids"]) for s in ("train", "validation")}
    assert rows["validation"] > 0 and rows["train"] > 0
    listed = {path for path, *_ in result["files"]}
    for path in listed:
        if path.endswith(".arrow"):
            assert len(datasets.Dataset.from_file(str(tmp_path / path))) > 0
    tokens = result["report"]["mlm/split:validation"]["tokens"]
    total = tokens + result["report"]["mlm/split:train"]["tokens"]
    assert report["tokens"] == tokens and abs(report["share"] - tokens / total) < 1e-6


@pytest.mark.job
def test_one_document_writes_no_validation_shard_and_warns(tmp_path, books):
    result = _job(tmp_path, books[:1], validation_fraction=0.5)
    warning = result["report"]["mlm/validation"]["warning"]
    assert warning and warning.startswith("no validation split")
    assert not list((tmp_path / "shards").glob("validation-*"))
    assert all("validation" not in path for path, *_ in result["files"])
    assert open_shard(str(next((tmp_path / "shards").glob("train-*.arrow")))).num_rows > 0


@pytest.mark.job
def test_an_empty_train_shard_is_still_a_readable_stream(tmp_path):
    datasets = pytest.importorskip("datasets", reason="datasets is in the train extra")
    result = _job(tmp_path, [Document("blank", "books", "b", " ")])
    (path, rows, *_) = next(f for f in result["files"] if f[0].endswith(".arrow"))
    assert rows == 0 and path.startswith("shards/train-")
    assert len(datasets.Dataset.from_file(str(tmp_path / path))) == 0
