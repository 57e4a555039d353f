"""Masked-LM example shards: the Arrow schema and its metadata (readers: mlm_shards.py).

A shard is an uncompressed Arrow IPC *stream* file, so `pyarrow.memory_map` +
`pyarrow.ipc.open_stream` and `datasets.Dataset.from_file` read it without copying. Every
column is a fixed-size list (one row = one sequence of `max_seq_length` positions) of the
narrowest integer type that holds its values. The schema metadata (key `gristmill.mlm`, JSON)
names the tokenizer's sha256, the sequence length and the masking parameters.
"""

from __future__ import annotations

import json
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
