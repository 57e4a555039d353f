"""The release's dataset card, README.md: what `datasets.load_dataset` reads, and how.

Its YAML header names the data files of each config, so `load_dataset(RELEASE)` gives the
clean documents and nothing else (not the drops, the index or the PII findings, which would
not even share a schema), and the `mlm` config the train and validation shards. Made from the
manifest only, without its `created_at` or any path outside the release, so the same job
writes the same card, byte for byte.

`datasets` picks one file reader for a whole local folder, from the first config's files
(Parquet), so the `mlm` config names the shards' Parquet copies in mlm/, not the Arrow shards.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any

import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.schemas.mlm import shard_metadata
from gristmill.transforms.training.shards import COPY_DIR

CARD = "README.md"
SPLITS = ("train", "validation")


def documents_pattern(outputs: list[dict[str, Any]]) -> str:
    """documents/*.parquet, or documents/*/*.parquet when they sit in language folders."""
    nested = any(o["path"].startswith("documents/") and o["path"].count("/") > 1 for o in outputs)
    return "documents/*/*.parquet" if nested else "documents/*.parquet"


def shard_splits(outputs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """{split: {"files", "rows"}} of the masked-LM shards listed in the manifest."""
    found: dict[str, dict[str, int]] = {}
    for o in outputs:
        for split in SPLITS:
            if o["path"].startswith(f"shards/{split}-") and o["path"].endswith(".arrow"):
                part = found.setdefault(split, {"files": 0, "rows": 0})
                part["files"] += 1
                part["rows"] += o["rows"]
    return found


def copy_splits(outputs: list[dict[str, Any]]) -> list[str]:
    """The splits whose shards have Parquet copies (mlm/SPLIT-*.parquet), in SPLITS order."""
    paths = [o["path"] for o in outputs if o["path"].endswith(".parquet")]
    return [s for s in SPLITS if any(p.startswith(f"{COPY_DIR}/{s}-") for p in paths)]


def card_yaml(outputs: list[dict[str, Any]]) -> str:
    """The card's YAML header: the configs (documents first: it is the default)."""
    lines = [
        "---",
        "tags:",
        "- gristmill",
        "configs:",
        "- config_name: default",
        "  default: true",
        "  data_files:",
        "  - split: train",
        f"    path: {documents_pattern(outputs)}",
    ]
    splits = copy_splits(outputs)
    if splits:
        lines += ["- config_name: mlm", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {COPY_DIR}/{split}-*.parquet"]
    return "\n".join([*lines, "---", ""])


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _loading(manifest: dict[str, Any]) -> list[str]:
    splits = copy_splits(manifest["outputs"])
    lines = [
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'RELEASE = "path/to/this/folder"',
        'docs = load_dataset(RELEASE, split="train")  # the clean documents',
    ]
    if splits:
        lines.append(f'mlm = load_dataset(RELEASE, "mlm")  # {", ".join(splits)}')
    if manifest.get("tokenizer"):
        lines += [
            "",
            "from transformers import AutoTokenizer",
            "tokenizer = AutoTokenizer.from_pretrained(RELEASE)",
        ]
    lines += ["```", ""]
    if splits:
        lines += [
            f"The `mlm` config reads `{COPY_DIR}/`, Parquet copies of the Arrow shards in",
            "`shards/` (`datasets` reads one file format per folder); an Arrow shard opens",
            "with `datasets.Dataset.from_file(path)` or `gristmill.schemas.mlm_shards`.",
            "",
        ]
    return lines


def shard_parameters(root: str, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The masking parameters from the first shard's schema metadata (what the shards are,
    whatever the config said); {} when there are no shards."""
    first = next((o["path"] for o in outputs if o["path"].endswith(".arrow")), None)
    if first is None:
        return {}
    path = posixpath.join(root, first)
    opened = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    with opened as fh, pa.ipc.open_stream(fh) as reader:
        return shard_metadata(reader.schema)


def _training(manifest: dict[str, Any], mlm: dict[str, Any]) -> list[str]:
    splits = shard_splits(manifest["outputs"])
    if not splits:
        return []
    static = mlm.get("masking", "static") == "static"
    lines = ["## Masked-LM shards", ""]
    lines += _table(
        ["split", "files", "rows"],
        [[s, splits[s]["files"], splits[s]["rows"]] for s in SPLITS if s in splits],
    )
    keys = ("max_seq_length", "packing", "masking", "mlm_probability", "whole_word_mask")
    lines += ["", *_table(["parameter", "value"], [[k, json.dumps(mlm.get(k))] for k in keys])]
    lines += [""]
    if static:
        lines.append(
            "Masking is static: `labels` are in the shards (-100 where nothing is predicted); "
            "train with `transformers.default_data_collator`, not a masking collator."
        )
    else:
        lines.append(
            "Masking is dynamic: the shards hold no `labels`; train with "
            "`DataCollatorForLanguageModeling(tokenizer, mlm_probability="
            f"{mlm.get('mlm_probability', 0.15)})`, which masks each batch anew."
        )
    if "validation" not in splits:
        lines += ["", "There is no validation split: the corpus had too few documents."]
    return [*lines, ""]


def _contents(manifest: dict[str, Any]) -> list[str]:
    stages = manifest.get("stages") or []
    counts = manifest.get("counts") or {}
    lines = [
        "## Contents",
        "",
        f"{counts.get('documents', 0)} documents, with the columns `id`, `source`, "
        "`url_or_path`, `text`, `lang`, `lang_score`, `meta` (JSON). The documents that left "
        f"the flow ({counts.get('drops', 0)}) are in `drops/` with their stage and reason; "
        f"unreadable input ({counts.get('dead_letters', 0)} records) in `dead_letters/`.",
        "",
    ]
    if stages:
        by_source = stages[-1].get("by_source") or {}
        if by_source:
            rows = [[s, v["kept"]] for s, v in sorted(by_source.items())]
            lines += [*_table(["source", "documents"], rows), ""]
        rows = [[s["name"], s["in"], s["kept"], sum(s["dropped"].values())] for s in stages]
        lines += [*_table(["stage", "in", "kept", "dropped"], rows), ""]
    return lines


def render_card(manifest: dict[str, Any], shards: dict[str, Any] | None = None) -> str:
    """The whole card from the manifest (its `created_at` is never read) and the shards'
    parameters (`shard_parameters`)."""
    tok = manifest.get("tokenizer")
    lines = [
        "# gristmill release",
        "",
        "Clean, deduplicated, privacy-scrubbed text made by gristmill "
        f"{manifest.get('gristmill_version')}; "
        "`manifest.json` lists every file with its sha256 and the config that made it, "
        "`reports/run.html` how the job went.",
        "",
        *_loading(manifest),
        *_contents(manifest),
    ]
    if tok:
        lines += [
            "## Tokenizer",
            "",
            f"`tokenizer.json` (vocabulary {tok.get('vocab_size')}, sha256 `{tok.get('sha256')}`)"
            " with `tokenizer_config.json` and `special_tokens_map.json`: a Hugging Face "
            "tokenizer folder.",
            "",
        ]
    lines += _training(manifest, shards or {})
    return card_yaml(manifest["outputs"]) + "\n" + "\n".join(lines).rstrip() + "\n"


def card_entry(data: bytes) -> dict[str, Any]:
    """The card as the manifest lists a file (no rows: not a table)."""
    return {"path": CARD, "rows": 0, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
