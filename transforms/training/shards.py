"""Deterministic Arrow IPC shards of masked-LM examples: rows packed, masked and written.

A document goes to a shard by a hash of its id, so all its sequences land in one shard and
packing happens inside the shard; the number of shards follows from the split's token total,
so it depends only on the data; rows follow the document ids; every train shard is written,
empty ones too (as one empty record batch, which every reader accepts), and validation shards
only when the split holds a document (split.py). Same documents and config, same bytes,
whatever the runner or the worker count.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from gristmill.schemas.mlm import mlm_schema, mlm_table, numpy_dtypes
from gristmill.schemas.records import FileInfo
from gristmill.transforms.sinks import shard_name, shard_of, write_bytes
from gristmill.transforms.training.examples import (
    IGNORE,
    NAME,
    DocTokens,
    EncodedDoc,
    MaskSpec,
    mask_tokens,
)
from gristmill.transforms.training.split import TRAIN, VALIDATION, SplitDocs, validation_report
from gristmill.transforms.training.tokenizer import TokenizerInfo

SHARD_DIR = "shards"
# Parquet copies of the shards, the `mlm` config of the dataset card: `datasets` reads one file
# format per local folder (the default config's, Parquet), so the Arrow shards cannot be a config.
COPY_DIR = "mlm"
BATCH_BYTES = 4 << 20  # one Arrow record batch: the unit a reader maps and shuffles

# Per split: (tokens, documents with tokens, documents without, [UNK] tokens).
Totals = tuple[int, int, int, int]


# --- rows ------------------------------------------------------------------------------


class Packing(NamedTuple):
    """Where each token of a DocTokens goes in a (rows, seq_len) block, flattened."""

    rows: int
    dest: np.ndarray  # int64 flat position of every token, in order
    seps: np.ndarray  # int64 flat positions of [SEP]; [CLS] is at every row start


def pack(lengths: np.ndarray, seq_len: int, packing: str) -> Packing:
    """[CLS] tokens [SEP] rows; `concat` fills rows across documents with [SEP] between them
    (one starts only if at least one of its tokens fits), `document` gives each its own rows."""
    last = seq_len - 1  # the column of a full row's closing [SEP]
    seg_starts: list[int] = []
    seg_lens: list[int] = []
    seps: list[int] = []
    row, pos = 0, 1
    for n in lengths.tolist():
        if not n:
            continue
        if pos > 1:
            if packing == "document" or pos > last - 2:
                seps.append(row * seq_len + pos)
                row, pos = row + 1, 1
            else:
                seps.append(row * seq_len + pos)
                pos += 1
        done = 0
        while done < n:
            take = min(n - done, last - pos)
            seg_starts.append(row * seq_len + pos)
            seg_lens.append(take)
            pos += take
            done += take
            if pos == last:
                seps.append(row * seq_len + pos)
                row, pos = row + 1, 1
    if pos > 1:
        seps.append(row * seq_len + pos)
        row += 1
    starts = np.array(seg_starts, dtype=np.int64)
    sizes = np.array(seg_lens, dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    dest = np.repeat(starts - offsets, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)
    return Packing(row, dest, np.array(seps, dtype=np.int64))


def example_columns(
    tokens: DocTokens, packing: Packing, spec: MaskSpec, dtypes: dict[str, np.dtype]
) -> dict[str, np.ndarray]:
    """The shard columns as flat arrays (rows x seq_len), copies one after another."""
    size = packing.rows * spec.seq_len
    special = np.zeros(spec.vocab_size, dtype=bool)
    special[list(spec.special_ids)] = True
    base_attention = np.zeros(size, dtype=dtypes["attention_mask"])
    base_attention[:: spec.seq_len] = 1
    base_attention[packing.seps] = 1
    base_attention[packing.dest] = 1
    base_special = np.ones(size, dtype=dtypes["special_tokens_mask"])
    base_special[packing.dest] = special[tokens.ids]
    columns: dict[str, list[np.ndarray]] = {name: [] for name in dtypes}
    for copy in range(spec.copies):
        if spec.static:
            inputs, labels = mask_tokens(tokens, spec, copy)
            flat_labels = np.full(size, IGNORE, dtype=dtypes["labels"])
            flat_labels[packing.dest] = labels
            columns["labels"].append(flat_labels)
        else:
            inputs = tokens.ids
        flat = np.full(size, spec.pad, dtype=dtypes["input_ids"])
        flat[:: spec.seq_len] = spec.cls
        flat[packing.seps] = spec.sep
        flat[packing.dest] = inputs
        columns["input_ids"].append(flat)
        columns["token_type_ids"].append(np.zeros(size, dtype=dtypes["token_type_ids"]))
        columns["attention_mask"].append(base_attention)
        columns["special_tokens_mask"].append(base_special)
    return {name: np.concatenate(parts) for name, parts in columns.items() if parts}


# --- files -----------------------------------------------------------------------------


def row_bytes(spec: MaskSpec) -> int:
    """Bytes of one row: seq_len positions of every column (ids, 3 x int8, labels)."""
    schema = mlm_schema(spec.seq_len, spec.vocab_size, {}, labels=spec.static)
    return spec.seq_len * sum(d.itemsize for d in numpy_dtypes(schema).values())


def estimate_rows(tokens: int, docs: int, spec: MaskSpec) -> int:
    body = spec.seq_len - 2
    # concat: one [SEP] per document; document: a partial last row per document
    rows = math.ceil((tokens + docs) / body) if spec.packing == "concat" else docs + tokens // body
    return rows * spec.copies


def shard_count(totals: Totals | None, spec: MaskSpec, target_bytes: int) -> int:
    if not totals:
        return 1
    rows = estimate_rows(totals[0], totals[1], spec)
    return max(1, math.ceil(rows * row_bytes(spec) / target_bytes))


def stream_bytes(table: pa.Table, rows_per_batch: int) -> pa.Buffer:
    """An uncompressed Arrow IPC stream: what memory_map + open_stream read without copying."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=None)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        if table.num_rows:
            writer.write_table(table, max_chunksize=max(1, rows_per_batch))
        else:  # a stream without batches is rejected by datasets.Dataset.from_file
            writer.write_batch(pa.RecordBatch.from_pylist([], schema=table.schema))
    return sink.getvalue()


def write_shard(root: str, relpath: str, table: pa.Table, rows_per_batch: int) -> FileInfo:
    data = stream_bytes(table, rows_per_batch)
    view = memoryview(data)
    write_bytes(posixpath.join(root, relpath), view)
    return FileInfo(relpath, table.num_rows, len(view), hashlib.sha256(view).hexdigest())


def write_parquet_copy(root: str, relpath: str, table: pa.Table, rows_per_group: int) -> FileInfo:
    """The shard again as zstd Parquet (about a quarter of its size): what
    `load_dataset(RELEASE, "mlm")` reads; row groups as large as the Arrow record batches."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table, sink, compression="zstd", compression_level=3, row_group_size=rows_per_group
    )
    view = memoryview(sink.getvalue())
    write_bytes(posixpath.join(root, relpath), view)
    return FileInfo(relpath, table.num_rows, len(view), hashlib.sha256(view).hexdigest())


def sum_totals(values) -> Totals:
    out = [0, 0, 0, 0]
    for value in values:
        for i, v in enumerate(value):
            out[i] += v
    return tuple(out)


def _doc_totals(item: tuple[str, EncodedDoc]) -> tuple[str, Totals]:
    split, doc = item
    n = len(doc.ids)
    return split, (n, int(n > 0), int(n == 0), doc.unk)


class _Specs:
    """MaskSpec for the tokenizer side input, settled once per DoFn instance."""

    def __init__(self, section: dict, seed: int):
        self.section = section
        self.seed = seed
        self._cache: tuple[str, MaskSpec] | None = None

    def get(self, info: TokenizerInfo) -> MaskSpec:
        if self._cache is None or self._cache[0] != info.sha256:
            self._cache = (info.sha256, MaskSpec.of(self.section, self.seed, info))
        return self._cache[1]


class _KeyByShard(beam.DoFn):
    def __init__(self, section: dict, seed: int):
        self.specs = _Specs(section, seed)
        self.target = section["shard_bytes"]

    def process(self, item: tuple[str, EncodedDoc], info: TokenizerInfo, totals: dict):
        split, doc = item
        if len(doc.ids):
            n = shard_count(totals.get(split), self.specs.get(info), self.target)
            yield (split, shard_of(doc.id, n)), doc


class _EveryShard(beam.DoFn):
    def __init__(self, section: dict, seed: int):
        self.specs = _Specs(section, seed)
        self.target = section["shard_bytes"]

    def process(self, split: str, info: TokenizerInfo, totals: dict):
        n = shard_count(totals.get(split), self.specs.get(info), self.target)
        if split != TRAIN and not totals.get(split, (0, 0))[1]:
            n = 0  # never an empty validation split
        for index in range(n):
            yield (split, index), None


class ExampleShard(beam.DoFn):
    """One shard's documents -> packed, masked rows -> shards/SPLIT-0000i-of-0000n.arrow, and
    its Parquet copy mlm/SPLIT-0000i-of-0000n.parquet."""

    def __init__(self, section: dict, seed: int, root: str):
        self.specs = _Specs(section, seed)
        self.target = section["shard_bytes"]
        self.root = root

    def process(self, keyed, info: TokenizerInfo, totals: dict):
        (split, index), items = keyed
        docs = [d for d in items if d is not None]
        spec = self.specs.get(info)
        n = shard_count(totals.get(split), spec, self.target)
        meta: dict[str, Any] = {
            "split": split,
            "shard": index,
            "num_shards": n,
            "tokenizer_sha256": info.sha256,
            "vocab_size": info.vocab_size,
            "special_tokens": {role: [info.roles[role], i] for role, i in info.ids.items()},
            "special_ids": list(info.special_ids),
            **spec.metadata(),
        }
        schema = mlm_schema(spec.seq_len, spec.vocab_size, meta, labels=spec.static)
        tokens = DocTokens.of(docs, spec.whole_word)
        packing = pack(tokens.lengths, spec.seq_len, spec.packing)
        columns = example_columns(tokens, packing, spec, numpy_dtypes(schema))
        table = mlm_table(columns, schema)
        relpath = shard_name(f"{SHARD_DIR}/{split}", index, n, ".arrow")
        per_batch = max(1, BATCH_BYTES // row_bytes(spec))
        written = write_shard(self.root, relpath, table, per_batch)
        copy = shard_name(f"{COPY_DIR}/{split}", index, n, ".parquet")
        yield write_parquet_copy(self.root, copy, table, per_batch)
        real = int(columns["attention_mask"].sum(dtype="int64"))
        masked = int((columns["labels"] != -100).sum()) if spec.static else 0
        Metrics.counter(NAME, f"{split}.rows").inc(table.num_rows)
        Metrics.counter(NAME, f"{split}.masked").inc(masked)
        yield written
        report = {
            "split": split,
            "rows": table.num_rows,
            "tokens": real,
            "masked": masked,
            "documents": len(docs),
            "bytes": written.bytes,
            "sha256": written.sha256,
        }
        yield beam.pvalue.TaggedOutput("report", (NAME, relpath, report))


def _source_lang_tokens(doc: EncodedDoc) -> tuple[tuple[str, str], Totals]:
    n = len(doc.ids)
    return (doc.source, doc.lang), (n, int(n > 0), int(n == 0), doc.unk)


def _by_source(pairs: dict) -> tuple[str, str, dict]:
    """{source: {lang: {tokens, documents}}}: what the run report shows per source."""
    out: dict[str, dict] = {}
    for (source, lang), (tokens, docs, empty, unk) in sorted(pairs.items()):
        cell = {"tokens": tokens, "documents": docs + empty, "unk_tokens": unk}
        out.setdefault(source, {})[lang or "und"] = cell
    return NAME, "tokens_by_source", out


def _totals_report(item: tuple[str, Totals]):
    split, (tokens, docs, empty, unk) = item
    value = {"tokens": tokens, "documents": docs, "empty_documents": empty, "unk_tokens": unk}
    return NAME, f"split:{split}", value


class WriteExampleShards(beam.PTransform):
    """EncodedDoc -> (FileInfo of every shard, report rows): split, packed, masked, written."""

    def __init__(self, section: dict, seed: int, root: str, info: beam.PCollection):
        super().__init__()
        self.section = section
        self.seed = seed
        self.root = root
        self.info = info

    def expand(self, docs):
        info = beam.pvalue.AsSingleton(self.info)
        fraction = float(self.section["validation_fraction"])
        splits = [TRAIN] + ([VALIDATION] if fraction > 0 else [])
        encoded, threshold = docs | "Split" >> SplitDocs(self.seed, self.section, NAME)
        totals = (
            encoded
            | "DocTotals" >> beam.Map(_doc_totals)
            | "SumTotals" >> beam.CombinePerKey(sum_totals)
        )
        by_split = beam.pvalue.AsDict(totals)
        keyed = encoded | "KeyByShard" >> beam.ParDo(
            _KeyByShard(self.section, self.seed), info, by_split
        )
        every = (
            encoded.pipeline
            | "Splits" >> beam.Create(splits)
            | "EveryShard" >> beam.ParDo(_EveryShard(self.section, self.seed), info, by_split)
        )
        out = (
            (keyed, every)
            | "WithEmpty" >> beam.Flatten()
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards"
            >> beam.ParDo(
                ExampleShard(self.section, self.seed, self.root), info, by_split
            ).with_outputs("report", main="files")
        )
        rows = [out.report, totals | "TotalsReport" >> beam.Map(_totals_report)]
        rows.append(
            docs
            | "SourceLangTokens" >> beam.Map(_source_lang_tokens)
            | "SumSourceLang" >> beam.CombinePerKey(sum_totals)
            | "SourceLangDict" >> beam.combiners.ToDict()
            | "BySource" >> beam.Map(_by_source)
        )
        if fraction > 0:
            min_share = float(self.section["validation_min_share"])
            rows.append(
                docs.pipeline
                | "ValidationTrigger" >> beam.Create([None])
                | "ValidationReport"
                >> beam.Map(
                    lambda _, t, th: (
                        NAME,
                        VALIDATION,
                        validation_report(t, th, fraction, min_share),
                    ),
                    by_split,
                    beam.pvalue.AsSingleton(threshold),
                )
            )
        report = rows | "Reports" >> beam.Flatten()
        return out.files, report
