"""The training shards of an erased release, made again from its documents.

The shards are written by the job's own transform (transforms/training/graph.shards_branch:
encode, split, pack, mask, write the Arrow shards and their Parquet copies), with the release's
recorded `mlm` section and seed and its existing tokenizer.json, so token ids mean what they
meant and the shard layout is the one the job would write for these documents. Documents are
read file by file, a record batch at a time, in a Beam pipeline.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from gristmill.pipelines.tools.erase_files import batches
from gristmill.schemas.tables import document_from_row
from gristmill.transforms.stage import StageContext
from gristmill.transforms.training import tokenizer as tokenize
from gristmill.transforms.training.examples import NAME
from gristmill.transforms.training.graph import SHARDS, shards_branch
from gristmill.transforms.training.shards import COPY_DIR, SHARD_DIR

MADE = "_job/erase-shards.json"
SHARD_FOLDERS = (SHARD_DIR, COPY_DIR)


def is_shard_file(rel: str) -> bool:
    return rel.split("/", 1)[0] in SHARD_FOLDERS and "/" in rel


class _ReadDocuments(beam.DoFn):
    def process(self, path: str):
        for rows in batches(path):
            for row in rows:
                yield document_from_row(row)


class _Record(beam.DoFn):
    """Writes what the shard step made (files, report rows) for the driver to read."""

    def __init__(self, path: str):
        self.path = path

    def process(self, _, files, report):
        made = {
            "files": sorted((dataclasses.asdict(f) for f in files), key=lambda f: f["path"]),
            "report": sorted(([list(r) for r in report]), key=lambda r: (r[0], r[1])),
        }
        with FileSystems.create(self.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            fh.write(json.dumps(made).encode("utf-8"))
        yield len(files)


def rebuild_shards(out: str, documents: list[str], manifest: dict[str, Any]) -> list[dict]:
    """Writes OUT/shards and OUT/mlm from the documents files (paths relative to OUT) with the
    tokenizer already at OUT; returns their manifest entries (with each shard's tokens)."""
    config = manifest["config"]
    tok_section, mlm_section = config["tokenizer"], config[SHARDS.section]
    roles = tokenize.special_tokens(tok_section)
    tok_path = posixpath.join(out, (manifest.get("tokenizer") or {}).get("path", tokenize.FILENAME))
    with FileSystems.open(tok_path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        tok_json = fh.read().decode("utf-8")
    ctx = StageContext(NAME, out, int(config.get("seed", 0)), {})
    record = posixpath.join(out, MADE)
    with beam.Pipeline(options=PipelineOptions(["--direct_num_workers=1"])) as p:
        docs = (
            p
            | "DocumentFiles" >> beam.Create([posixpath.join(out, d) for d in documents])
            | "ReadDocuments" >> beam.ParDo(_ReadDocuments())
        )
        json_ = p | "Tokenizer" >> beam.Create([tok_json])
        info = json_ | "TokenizerInfo" >> beam.Map(tokenize.inspect_tokenizer, roles)
        made = shards_branch(docs, mlm_section, ctx, {"json": json_, "info": info}, roles["unk"])
        _ = (
            p
            | "Trigger" >> beam.Create([None])
            | "Record"
            >> beam.ParDo(
                _Record(record),
                beam.pvalue.AsList(made["files"]),
                beam.pvalue.AsList(made["report"]),
            )
        )
    with FileSystems.open(record, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        result = json.loads(fh.read().decode("utf-8"))
    FileSystems.delete([posixpath.join(out, "_job")])
    tokens = {k: v for _, k, v in result["report"] if isinstance(v, dict) and "tokens" in v}
    return [
        {**f, "tokens": tokens[f["path"]]["tokens"]} if f["path"] in tokens else f
        for f in result["files"]
    ]
