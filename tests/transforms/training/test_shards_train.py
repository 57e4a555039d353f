"""Shards: byte-identical across runs and worker counts, readable zero-copy and by `datasets`,
split across loader workers and ranks, and a tiny BERT learns from them."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from training_helpers import all_rows, run_training, sample_documents, sections

from gristmill.pipelines.tools import inspect as inspect_shards
from gristmill.schemas.mlm import COLUMNS
from gristmill.schemas.mlm_shards import find_shards, open_shard, read_metadata

OPTIONS = {"shard_bytes": 64 << 10, "dupe_factor": 2, "whole_word_mask": True}


def _digests(out: Path) -> dict[str, str]:
    files = [out / "tokenizer.json", *sorted((out / "shards").iterdir())]
    return {
        f.relative_to(out).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    docs = sample_documents(articles=2)[::4]
    tok, m = sections({"vocab_size": 1000}, OPTIONS)
    first = run_training(root / "one", docs, tok, m)
    # A second run, on 2 worker processes, the documents arriving in another order.
    two = run_training(root / "two", list(reversed(docs)), tok, m, workers=2)
    return root, first, two


@pytest.mark.job
def test_shards_are_byte_identical_across_runs_and_workers(runs):
    root, first, two = runs
    digests = _digests(root / "one")
    assert len([k for k in digests if k.startswith("shards/train-")]) > 2, "several train shards"
    assert any(k.startswith("shards/validation-") for k in digests)
    assert _digests(root / "two") == digests
    assert first["files"] == two["files"]
    assert first["report"] == two["report"]
    listed = {path: (rows, size, sha) for path, rows, size, sha in first["files"]}
    for rel, sha in digests.items():
        assert listed[rel][2] == sha and listed[rel][1] == (root / "one" / rel).stat().st_size


def test_shard_layout_and_metadata(runs):
    root, first, *_ = runs
    shards = find_shards(str(root / "one"))
    meta = read_metadata(shards[0])
    assert meta["tokenizer_sha256"] == first["tokenizer"]["sha256"]
    assert (meta["max_seq_length"], meta["dupe_factor"], meta["whole_word_mask"]) == (128, 2, True)
    table = open_shard(shards[0])
    assert table.column_names == list(COLUMNS)
    assert table.schema.field("input_ids").type == pa.list_(pa.uint16(), 128)  # vocab 1000
    assert table.schema.field("labels").type == pa.list_(pa.int16(), 128)
    assert table.schema.field("attention_mask").type == pa.list_(pa.int8(), 128)
    # rows listed in the report add up to the files, tokens to the attention masks
    for path, rows, _, _ in first["files"]:
        if path.startswith("shards/"):
            entry = first["report"][f"mlm/{path}"]
            assert entry["rows"] == rows == open_shard(str(root / "one" / path)).num_rows
    train = all_rows(root / "one", "train")
    reported = sum(v["tokens"] for k, v in first["report"].items() if "/shards/train-" in k)
    assert reported == train["attention_mask"].sum()
    half = len(train["input_ids"]) // 2  # two copies per shard: same tokens, other masks
    assert half and not np.array_equal(train["labels"][:half], train["labels"][half:])


def test_reading_is_zero_copy(runs):
    root, *_ = runs
    shard = find_shards(str(root / "one"))[0]
    before = pa.total_allocated_bytes()
    table = open_shard(shard)
    assert table.nbytes > 50_000
    assert pa.total_allocated_bytes() - before < 4096, "buffers point into the mapped file"


def test_datasets_loads_a_shard(runs):
    datasets = pytest.importorskip("datasets", reason="datasets is in the train extra")
    root, *_ = runs
    shard = find_shards(str(root / "one"))[0]
    ds = datasets.Dataset.from_file(shard)
    assert ds.num_rows == open_shard(shard).num_rows
    assert set(ds.column_names) == set(COLUMNS)
    row = ds.with_format("numpy")[0]
    assert row["input_ids"].shape == (128,) and row["labels"].min() == -100


def _row_keys(loader) -> Counter:
    keys: Counter = Counter()
    for batch in loader:
        for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
            keys[ids.numpy().tobytes() + labels.numpy().tobytes()] += 1
    return keys


@pytest.mark.job
def test_loader_splits_rows_across_workers_and_ranks(runs):
    torch = pytest.importorskip("torch", reason="torch is in the train extra")
    from torch.utils.data import DataLoader

    from gristmill.schemas.mlm_shards import MlmShards

    root, *_ = runs
    everything = _row_keys(DataLoader(MlmShards(str(root / "one"), batch_size=32), batch_size=None))
    train = all_rows(root / "one", "train")
    assert sum(everything.values()) == len(train["input_ids"])
    seen: Counter = Counter()
    for rank in range(2):
        data = MlmShards(str(root / "one"), rank=rank, world_size=2, shuffle=True, batch_size=8)
        part = _row_keys(DataLoader(data, batch_size=None, num_workers=2))
        assert part and not (set(part) - set(everything))
        seen += part
    assert seen == everything, "every row once, across 2 ranks x 2 workers"
    rows = DataLoader(MlmShards(str(root / "one"), split="validation"), batch_size=4)
    batch = next(iter(rows))
    assert batch["input_ids"].dtype == torch.int64 and batch["input_ids"].shape == (4, 128)


@pytest.mark.job
def test_tiny_bert_learns_from_the_shards(runs):
    torch = pytest.importorskip("torch", reason="torch is in the train extra")
    transformers = pytest.importorskip("transformers", reason="transformers is in the train extra")
    from torch.utils.data import DataLoader

    from gristmill.schemas.mlm_shards import MlmShards

    root, first, *_ = runs
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only contend
    config = transformers.BertConfig(
        vocab_size=first["tokenizer"]["vocab_size"],
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    model = transformers.BertForMaskedLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    data = MlmShards(str(root / "one"), shuffle=True, seed=0, batch_size=8, drop_last=True)
    losses: list[float] = []
    model.train()
    try:
        for batch in DataLoader(data, batch_size=None):  # the README's loop
            batch.pop("special_tokens_mask")
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            if len(losses) == 30:
                break
    finally:
        torch.set_num_threads(threads)
    assert len(losses) == 30 and np.isfinite(losses).all()
    first5, last5 = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last5 < first5 - 0.4, (first5, last5)


def test_inspect_decodes_rows_with_masks(runs, capsys):
    root, *_ = runs
    shard = find_shards(str(root / "one"))[0]
    assert inspect_shards.main([shard, "--rows", "2"]) == 0
    out = capsys.readouterr().out
    assert "(matches)" in out and "row 0 (" in out and "row 1 (" in out
    assert "[MASK:" in out and out.count("[CLS]") == 2
    assert inspect_shards.main([str(root / "one" / "tokenizer.json")]) == 2
    assert "not a masked-LM shard" in capsys.readouterr().err
    docs = root / "documents.parquet"
    rows = [{"id": "a", "text": "x" * 500}, {"id": "b", "text": "line\nbreak"}]
    pq.write_table(pa.Table.from_pylist(rows), docs)
    assert inspect_shards.main([str(docs), "--rows", "5"]) == 0
    out = capsys.readouterr().out
    assert "2 rows" in out and "row 1:" in out and "text=line\u23cebreak" in out
    assert "x" * 300 + "…" in out
