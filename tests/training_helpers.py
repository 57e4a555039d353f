"""Helpers for the training-data tests: sample documents, sections, a real training sub-graph."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import apache_beam as beam
import numpy as np
import zstandard
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from helpers import REPO

from gristmill.schemas.mlm_shards import open_shard
from gristmill.schemas.records import Document, make_doc_id
from gristmill.transforms.normalize import NormalizeParams, normalize_text
from gristmill.transforms.params import defaults
from gristmill.transforms.stage import StageContext
from gristmill.transforms.training import examples as mlm
from gristmill.transforms.training import tokenizer as tokenize
from gristmill.transforms.training.graph import add_training_data

SAMPLE = REPO / "sample"


def sample_documents(articles: int = 8, block_chars: int = 2000) -> list[Document]:
    """Clean documents from the committed sample: books cut at paragraphs into ~2 KB blocks,
    and the first State of the Union addresses, normalized as the job does."""
    params = NormalizeParams()
    docs = []
    for path in sorted((SAMPLE / "books").glob("*.txt")):
        paragraphs = path.read_text(encoding="utf-8").split("\n\n")
        block: list[str] = []
        for i, para in enumerate(paragraphs):
            block.append(para)
            if sum(map(len, block)) >= block_chars or i == len(paragraphs) - 1:
                text = normalize_text("\n\n".join(block), params)
                docs.append(Document(make_doc_id("books", path.name, i), "books", path.name, text))
                block = []
    raw = (SAMPLE / "articles" / "sotu-sample.jsonl.zst").read_bytes()
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(raw).decode().splitlines()
    for i, line in enumerate(lines[:articles]):
        row = json.loads(line)
        text = normalize_text(row["text"], params)
        docs.append(Document(make_doc_id("sotu", "sotu.jsonl", i), "sotu", row["id"], text))
    return docs


def sections(tok: dict | None = None, mlm_: dict | None = None) -> tuple[dict, dict]:
    t = copy.deepcopy(defaults(tokenize.TokenizerParams)) | {"enabled": True, "vocab_size": 2000}
    m = copy.deepcopy(defaults(mlm.MlmParams)) | {"enabled": True, "validation_fraction": 0.1}
    return t | (tok or {}), m | (mlm_ or {})


def run_training(
    out: Path, docs: list[Document], tok: dict, mlm_: dict, workers: int = 1, seed: int = 0
) -> dict:
    """Runs add_training_data on the FnApiRunner; returns the report rows and files it gave."""
    args = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
    if workers > 1:
        args = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    result = out / "_result.json"

    def save(rows, files, summary):
        result.write_text(
            json.dumps(
                {
                    "report": {f"{s}/{k}": v for s, k, v in rows},
                    "files": sorted([f.path, f.rows, f.bytes, f.sha256] for f in files),
                    "tokenizer": summary,
                }
            )
        )

    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(args)) as p:
        pdocs = p | "Docs" >> beam.Create(docs)
        extras = add_training_data(p, pdocs, tok, mlm_, StageContext("mlm", str(out), seed, {}))
        side = beam.pvalue.AsList
        _ = (
            p
            | "Trigger" >> beam.Create([None])
            | "Save"
            >> beam.Map(
                lambda _, r, f, t: save(r, f, t[0]),
                side(extras["report"]),
                side(extras["files"]),
                side(extras["tokenizer"]),
            )
        )
    return json.loads(result.read_text())


def all_rows(out: Path, split: str | None = None) -> dict[str, np.ndarray]:
    """Every row of every shard (of one split), as (rows, seq_len) arrays."""
    parts: dict[str, list[np.ndarray]] = {}
    pattern = f"{split}-*.arrow" if split else "*.arrow"
    for shard in sorted((out / "shards").glob(pattern)):
        table = open_shard(str(shard))
        for name in table.column_names:
            width = table.schema.field(name).type.list_size
            values = table.column(name).combine_chunks().flatten().to_numpy()
            parts.setdefault(name, []).append(values.reshape(-1, width).astype(np.int64))
    return {k: np.concatenate(v) for k, v in parts.items()}


def run_release(out: Path, *sets: str, sources: tuple[str, ...] = ("books", "mail")) -> dict:
    """A small release made by the real job: the sample's books (and mail, in several
    languages) through langid, a 1000-token WordPiece and 64-token masked-LM shards. Returns
    the manifest."""
    from helpers import run_corpus

    paths = {"books": "books/*.txt", "mail": "mail/*.txt"}
    base = [
        "langid.enabled=true",
        "tokenizer.enabled=true",
        "tokenizer.vocab_size=1000",
        "mlm.enabled=true",
        "mlm.max_seq_length=64",
    ]
    srcs = [f"{s}={SAMPLE / paths[s]}" for s in sources]
    return run_corpus(out, srcs, [*base, *sets])
