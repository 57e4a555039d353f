"""Reading masked-LM shards: zero-copy tables and batches, and a PyTorch loader.

`open_shard` memory-maps one shard; `ShardReader` yields rows of a release's shards as int64
tensors, split across DataLoader workers and ranks; `MlmShards` is that reader as a torch
IterableDataset. torch is optional and imported only when `MlmShards` is first looked up
(importing torch takes seconds, and the job's workers never need it); without torch that
look-up says so.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.schemas.mlm import shard_metadata


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
