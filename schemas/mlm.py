"""Masked-LM example shards: the Arrow schema, a zero-copy reader and a PyTorch loader.

A shard is an uncompressed Arrow IPC *stream* file, so `pyarrow.memory_map` +
`pyarrow.ipc.open_stream` and `datasets.Dataset.from_file` read it without copying. Every
column is a fixed-size list (one row = one sequence of `max_seq_length` positions) of the
narrowest integer type that holds its values. The schema metadata (key `gristmill.mlm`, JSON)
names the tokenizer's sha256, the sequence length and the masking parameters.

torch is optional and imported only when `MlmShards` is first looked up (importing torch
takes seconds, and the job's workers never need it); without torch that look-up says so.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

MLM_SCHEMA_VERSION = 1
META_KEY = b"gristmill.mlm"
COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "labels")


def id_type(vocab_size: int) -> pa.DataType:
    """The narrowest unsigned type that holds every token id."""
    for width, typ in ((8, pa.uint8()), (16, pa.uint16())):
        if vocab_size <= 1 << width:
            return typ
    return pa.uint32()


def label_type(vocab_size: int) -> pa.DataType:
    """The narrowest signed type that holds every token id and -100."""
    for width, typ in ((7, pa.int8()), (15, pa.int16())):
        if vocab_size <= 1 << width:
            return typ
    return pa.int32()


def mlm_schema(seq_len: int, vocab_size: int, meta: dict[str, Any], labels: bool) -> pa.Schema:
    """Columns as HF expects them; `labels` only for statically masked shards."""
    types = {
        "input_ids": id_type(vocab_size),
        "token_type_ids": pa.int8(),
        "attention_mask": pa.int8(),
        "special_tokens_mask": pa.int8(),
        "labels": label_type(vocab_size),
    }
    fields = [
        pa.field(name, pa.list_(types[name], seq_len), nullable=False)
        for name in COLUMNS
        if labels or name != "labels"
    ]
    text = json.dumps({"schema_version": MLM_SCHEMA_VERSION, **meta}, sort_keys=True)
    return pa.schema(fields, metadata={META_KEY: text.encode("utf-8")})


def numpy_dtypes(schema: pa.Schema) -> dict[str, np.dtype]:
    return {f.name: np.dtype(str(f.type.value_type)) for f in schema}


def mlm_table(columns: dict[str, np.ndarray], schema: pa.Schema) -> pa.Table:
    """Flat (rows x seq_len) arrays -> a table of fixed-size lists, without copying them."""
    arrays = []
    for field in schema:
        values = pa.array(columns[field.name], type=field.type.value_type)
        arrays.append(pa.FixedSizeListArray.from_arrays(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def shard_metadata(schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError("not a gristmill masked-LM shard (no gristmill.mlm schema metadata)")
    return json.loads(raw)


def open_shard(path: str) -> pa.Table:
    """The whole shard as a table whose buffers point into the memory-mapped file."""
    with pa.ipc.open_stream(pa.memory_map(path, "r")) as reader:
        return reader.read_all()


def read_metadata(path: str) -> dict[str, Any]:
    with pa.ipc.open_stream(pa.memory_map(path, "r")) as reader:
        return shard_metadata(reader.schema)


def batch_arrays(batch: pa.RecordBatch) -> dict[str, np.ndarray]:
    """(rows, seq_len) numpy views of a record batch's columns (no copy)."""
    out = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        values = column.flatten().to_numpy(zero_copy_only=True)  # flatten honours slicing
        out[name] = values.reshape(-1, column.type.list_size)
    return out


def find_shards(path: str, split: str = "train") -> list[str]:
    """`path` may be a release directory, its shards/ directory, a glob or one file."""
    if os.path.isdir(path):
        base = (
            path if os.path.basename(path.rstrip("/")) == "shards" else os.path.join(path, "shards")
        )
        found = sorted(glob.glob(os.path.join(base, f"{split}-*.arrow")))
    else:
        found = sorted(glob.glob(path))
    if not found:
        raise FileNotFoundError(f"no {split} shards at {path}")
    return found


class ShardReader:
    """Rows of masked-LM shards as int64 tensors, split across DataLoader workers and ranks.

    Work units are whole shards when there are at least as many shards as readers (workers x
    ranks), else equal slices of rows; unit k goes to reader k mod readers, so readers never
    overlap and together read everything once per epoch. With `shuffle`, units and rows are
    permuted by (seed, epoch), the same on every rank; call `set_epoch` each epoch.
    `batch_size` yields ready (batch, seq_len) tensors (use DataLoader(batch_size=None));
    without it, single rows for the DataLoader to collate.
    """

    def __init__(
        self,
        shards: list[str] | str,
        split: str = "train",
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = False,
        seed: int = 0,
        batch_size: int | None = None,
        drop_last: bool = False,
    ):
        import torch

        super().__init__()
        self.paths = find_shards(shards, split) if isinstance(shards, str) else list(shards)
        if rank is None or world_size is None:
            dist = torch.distributed
            ready = dist.is_available() and dist.is_initialized()
            rank = dist.get_rank() if ready else 0
            world_size = dist.get_world_size() if ready else 1
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.batch_size, self.drop_last = batch_size, drop_last
        self.rows = [_row_count(p) for p in self.paths]
        self.metadata = read_metadata(self.paths[0])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _units(self, readers: int) -> list[tuple[int, int, int]]:
        """(shard, first row, end row) work units, at least `readers` of them when possible."""
        parts = max(1, -(-readers // len(self.paths)))
        units = []
        for i, n in enumerate(self.rows):
            for k in range(parts):
                units.append((i, k * n // parts, (k + 1) * n // parts))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(units))
            units = [units[j] for j in order]
        return units

    def _mine(self) -> list[tuple[int, int, int]]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        readers = workers * self.world_size
        me = self.rank * workers + worker
        return [u for k, u in enumerate(self._units(readers)) if k % readers == me]

    def _blocks(self) -> Iterator[dict[str, np.ndarray]]:
        """Record batches of this reader's units as numpy views of the mapped files; with
        `shuffle`, batches in permuted order and rows permuted inside each (a block shuffle)."""
        for shard, lo, hi in self._mine():
            batches = open_shard(self.paths[shard]).slice(lo, hi - lo).to_batches()
            rng = np.random.default_rng([self.seed, self.epoch, shard, lo])
            order = rng.permutation(len(batches)) if self.shuffle else range(len(batches))
            for j in order:
                arrays = batch_arrays(batches[j])
                if self.shuffle:
                    perm = rng.permutation(batches[j].num_rows)
                    arrays = {name: a[perm] for name, a in arrays.items()}
                yield arrays

    def __iter__(self):
        import torch

        def tensors(block: dict[str, np.ndarray]) -> dict[str, Any]:
            return {k: torch.from_numpy(v.astype(np.int64)) for k, v in block.items()}

        if not self.batch_size:
            for block in self._blocks():
                for i in range(len(block["input_ids"])):
                    yield tensors({k: v[i] for k, v in block.items()})
            return
        size = self.batch_size
        carry: dict[str, np.ndarray] | None = None
        for block in self._blocks():
            if carry is not None:  # rows left from the previous block start this one
                block = {k: np.concatenate([carry[k], v]) for k, v in block.items()}
            n = len(block["input_ids"])
            full = n - n % size
            for start in range(0, full, size):
                yield tensors({k: v[start : start + size] for k, v in block.items()})
            carry = {k: v[full:] for k, v in block.items()} if full < n else None
        if carry is not None and not self.drop_last:
            yield tensors(carry)


def __getattr__(name: str) -> Any:
    """`MlmShards`: ShardReader as a torch IterableDataset, made on first use (PEP 562)."""
    if name != "MlmShards":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from torch.utils.data import IterableDataset
    except ImportError:
        raise ImportError(
            "MlmShards needs PyTorch: pip install 'gristmill[train]' (torch, transformers)"
        ) from None
    cls = type("MlmShards", (ShardReader, IterableDataset), {"__module__": __name__})
    cls.__doc__ = ShardReader.__doc__
    globals()["MlmShards"] = cls
    return cls


def _row_count(path: str) -> int:
    with pa.ipc.open_stream(pa.memory_map(path, "r")) as reader:
        return sum(batch.num_rows for batch in reader)
