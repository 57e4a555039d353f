"""`gristmill validate RELEASE`: does the release on disk still say what its manifest says?

Checks every listed file (present, bytes, sha256, rows), the table schemas against
`schemas/tables.py` and the masked-LM shard schema, the tokenizer's hash (manifest, file and
every shard's metadata), the Hugging Face files beside the tokenizer against its vocabulary,
the accounting invariant, and that nothing unlisted sits among the data. Each problem is one
line that starts with the file it is about. Works on any Beam filesystem, so a release in a
bucket is checked where it is.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import sys
from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.schemas import tables
from gristmill.transforms.accounting import accounting_problems, table_of
from gristmill.transforms.sources.read import file_sha256

MANIFEST = "manifest.json"
TABLE_SCHEMAS: dict[str, pa.Schema] = tables.TABLE_SCHEMAS
ALWAYS_ALLOWED = ("reports/", ".gristmill.lock")  # around the manifest, never listed in it
HF_FILES = ("tokenizer_config.json", "special_tokens_map.json")  # beside tokenizer.json
IGNORED_LABEL = -100  # labels where nothing is predicted


def _open(root: str, rel: str):
    return FileSystems.open(
        posixpath.join(root, rel), compression_type=CompressionTypes.UNCOMPRESSED
    )


def _digest(root: str, rel: str) -> tuple[int, str]:
    return file_sha256(posixpath.join(root, rel))


Ranges = dict[str, tuple[int, int]]  # column -> (min, max) over a shard's values


def _rows_and_schema(root: str, rel: str) -> tuple[int | None, pa.Schema | None, Ranges]:
    """(rows, schema, value ranges of a shard's columns) of a table file; (None, None, {}) for
    files that are not tables."""
    with _open(root, rel) as fh:
        if rel.endswith(".parquet"):
            pf = pq.ParquetFile(fh)
            return pf.metadata.num_rows, pf.schema_arrow, {}
        if rel.endswith(".arrow"):
            with pa.ipc.open_stream(fh) as reader:
                rows, ranges = 0, {}
                for batch in reader:
                    rows += batch.num_rows
                    _widen(ranges, batch)
                return rows, reader.schema, ranges
    return None, None, {}


def _widen(ranges: Ranges, batch: pa.RecordBatch) -> None:
    """Min and max of each list column of a shard batch; labels without the -100 markers."""
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type)):
            continue
        values = column.flatten()
        if name == "labels":
            values = pc.filter(values, pc.not_equal(values, IGNORED_LABEL))
        if len(values) == 0:
            continue
        mm = pc.min_max(values)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        old = ranges.get(name)
        ranges[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))


def _range_problems(rel: str, ranges: Ranges, vocab_size: int | None) -> list[str]:
    """Token ids and labels inside the vocabulary; masks and token types 0 or 1."""
    problems = []
    for name in ("input_ids", "labels"):
        if name in ranges and vocab_size is not None:
            lo, hi = ranges[name]
            if lo < 0 or hi >= vocab_size:
                problems.append(
                    f"{rel}: {name} from {lo} to {hi}, outside the vocabulary of {vocab_size}"
                )
    for name in ("attention_mask", "special_tokens_mask", "token_type_ids"):
        if name in ranges and not (ranges[name][0] >= 0 and ranges[name][1] <= 1):
            problems.append(
                f"{rel}: {name} holds values from {ranges[name][0]} to {ranges[name][1]}"
            )
    return problems


def _vocab_size(schema: pa.Schema, tokenizer: dict | None) -> int | None:
    if tokenizer and isinstance(tokenizer.get("vocab_size"), int):
        return tokenizer["vocab_size"]
    try:
        from gristmill.schemas import mlm

        size = mlm.shard_metadata(schema).get("vocab_size")
    except (ImportError, ValueError):
        return None
    return size if isinstance(size, int) else None


def _shard_problems(rel: str, schema: pa.Schema, tokenizer: dict | None) -> list[str]:
    try:
        from gristmill.schemas import mlm
    except ImportError:  # the masked-LM schema is not part of this install
        return []
    problems = []
    names = [n for n in mlm.COLUMNS if n in schema.names]
    if schema.names != names or names[:4] != list(mlm.COLUMNS[:4]):
        problems.append(f"{rel}: columns {schema.names}, expected {list(mlm.COLUMNS)}")
    for field in schema:
        if not pa.types.is_fixed_size_list(field.type):
            problems.append(f"{rel}: column {field.name} is {field.type}, not a fixed-size list")
    try:
        meta = mlm.shard_metadata(schema)
    except ValueError as err:
        return [*problems, f"{rel}: {err}"]
    if tokenizer and meta.get("tokenizer_sha256") != tokenizer.get("sha256"):
        problems.append(
            f"{rel}: shard metadata names tokenizer {meta.get('tokenizer_sha256')}, "
            f"manifest has {tokenizer.get('sha256')}"
        )
    return problems


def check_file(root: str, entry: dict, tokenizer: dict | None) -> list[str]:
    """One listed output: present, same bytes and sha256, same rows, the expected schema."""
    rel = entry["path"]
    if not FileSystems.exists(posixpath.join(root, rel)):
        return [f"{rel}: missing (listed in {MANIFEST})"]
    problems = []
    size, sha = _digest(root, rel)
    if size != entry["bytes"]:
        problems.append(f"{rel}: {size} bytes, {MANIFEST} says {entry['bytes']}")
    if sha != entry["sha256"]:
        problems.append(f"{rel}: sha256 {sha}, {MANIFEST} says {entry['sha256']}")
    if problems:  # bytes the job did not write are never parsed: a corrupt footer or stream
        return problems  # can abort the reader's native code, which no except clause catches
    try:
        rows, schema, ranges = _rows_and_schema(root, rel)
    except Exception as err:  # a damaged file must be named, not crash the check
        kind = "Parquet" if rel.endswith(".parquet") else "an Arrow stream"
        return [*problems, f"{rel}: cannot be read as {kind}: {str(err)[:200]}"]
    if rows is None:
        return problems
    if rows != entry["rows"]:
        problems.append(f"{rel}: {rows} rows, {MANIFEST} says {entry['rows']}")
    expected = TABLE_SCHEMAS.get(table_of(rel))
    if (
        expected is not None
        and rel.endswith(".parquet")
        and not schema.remove_metadata().equals(expected.remove_metadata())
    ):
        problems.append(f"{rel}: schema differs from schemas/tables.py: {schema.remove_metadata()}")
    if rel.endswith(".arrow"):
        problems.extend(_shard_problems(rel, schema, tokenizer))
        problems.extend(_range_problems(rel, ranges, _vocab_size(schema, tokenizer)))
    return problems


def training_problems(root: str, manifest: dict) -> list[str]:
    """The tokenizer against the manifest, and each shard's schema against the tokenizer: what a
    refresh that reuses this release's tokenizer relies on (schemas only, no rows read)."""
    tokenizer = manifest.get("tokenizer")
    problems = check_tokenizer(root, tokenizer)
    for entry in manifest.get("outputs", []):
        rel = entry["path"]
        if not rel.endswith(".arrow"):
            continue
        if not FileSystems.exists(posixpath.join(root, rel)):
            problems.append(f"{rel}: missing (listed in {MANIFEST})")
            continue
        with _open(root, rel) as fh, pa.ipc.open_stream(fh) as reader:
            problems.extend(_shard_problems(rel, reader.schema, tokenizer))
    return problems


def check_tokenizer(root: str, tokenizer: dict | None) -> list[str]:
    if not tokenizer:
        return []
    rel = tokenizer.get("path", "tokenizer.json")
    if not FileSystems.exists(posixpath.join(root, rel)):
        return [f"{rel}: missing (the manifest's tokenizer)"]
    _, sha = _digest(root, rel)
    if sha != tokenizer.get("sha256"):
        return [f"{rel}: sha256 {sha}, {MANIFEST} tokenizer.sha256 says {tokenizer.get('sha256')}"]
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return []
    try:
        with _open(root, rel) as fh:
            size = Tokenizer.from_str(fh.read().decode("utf-8")).get_vocab_size()
    except Exception as err:
        return [f"{rel}: cannot be loaded as a tokenizer: {str(err)[:200]}"]
    if "vocab_size" in tokenizer and size != tokenizer["vocab_size"]:
        return [
            f"{rel}: vocabulary of {size}, {MANIFEST} tokenizer.vocab_size says {tokenizer['vocab_size']}"
        ]
    return []


def _vocab(root: str, rel: str) -> set[str] | None:
    """The tokens of a tokenizer.json; None when it cannot be loaded (check_tokenizer says why)."""
    try:
        from tokenizers import Tokenizer

        with _open(root, rel) as fh:
            tok = Tokenizer.from_str(fh.read().decode("utf-8"))
    except Exception:
        return None
    return set(tok.get_vocab(with_added_tokens=True))


def check_hf_files(root: str, manifest: dict) -> list[str]:
    """tokenizer_config.json and special_tokens_map.json, where listed, are JSON objects naming
    only tokens the tokenizer has: transformers would otherwise add new tokens with ids past
    the vocabulary the shards were made with. Releases from before these files have none."""
    tokenizer = manifest.get("tokenizer")
    if not tokenizer:
        return []
    rel_tok = tokenizer.get("path", "tokenizer.json")
    listed = {o["path"] for o in manifest["outputs"]}
    names = [posixpath.join(posixpath.dirname(rel_tok), name) for name in HF_FILES]
    present = [n for n in names if n in listed and FileSystems.exists(posixpath.join(root, n))]
    vocab = _vocab(root, rel_tok) if present else None
    problems = []
    for rel in present:
        try:
            with _open(root, rel) as fh:
                spec = json.loads(fh.read().decode("utf-8"))
        except ValueError as err:
            problems.append(f"{rel}: not valid JSON: {err}")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{rel}: not a JSON object")
            continue
        for key, value in sorted(spec.items()):
            token = value.get("content") if isinstance(value, dict) else value
            if key.endswith("_token") and vocab is not None and token not in vocab:
                problems.append(f"{rel}: {key} {token!r} is not a token of {rel_tok}")
    return problems


def check_accounting(manifest: dict) -> list[str]:
    """The job's own accounting check (transforms/accounting.py), on the manifest as written."""
    problems = accounting_problems(
        manifest["stages"], manifest["inputs"], manifest["outputs"], manifest.get("counts")
    )
    return [f"{MANIFEST} stages: {p}" for p in problems]


def check_drop_reasons(root: str, manifest: dict) -> list[str]:
    """Every drops/ row is counted under its stage and reason in the manifest, and only there."""
    found: Counter[tuple[str, str]] = Counter()
    for o in manifest["outputs"]:
        if table_of(o["path"]) == "drops" and o["path"].endswith(".parquet"):
            try:
                with _open(root, o["path"]) as fh:
                    t = pq.read_table(fh, columns=["stage", "reason"])
            except Exception:
                return []  # already reported by check_file
            found.update(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))
    counted = Counter(
        {(s["name"], r): n for s in manifest["stages"] for r, n in s["dropped"].items()}
    )
    return [
        f"drops/: {found.get(k, 0)} rows for {k[0]}/{k[1]}, {MANIFEST} counts {counted.get(k, 0)}"
        for k in sorted(set(found) | set(counted))
        if found.get(k, 0) != counted.get(k, 0)
    ]


INPUT_FIELDS = {"path": str, "bytes": int, "sha256": str, "records": int, "dead_letters": int}
SHA256 = re.compile(r"[0-9a-f]{64}")


def check_inputs(manifest: dict) -> list[str]:
    """Each listed input has its path, size, checksum and counts, of the right types (what a
    refresh compares against); the inputs themselves are not needed."""
    problems = []
    for i, entry in enumerate(manifest["inputs"]):
        where = f"{MANIFEST} inputs[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not a mapping")
            continue
        for key, kind in INPUT_FIELDS.items():
            value = entry.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                problems.append(
                    f"{where}: {key} is {type(value).__name__}, expected {kind.__name__}"
                )
            elif kind is int and value < 0:
                problems.append(f"{where}: {key} is negative")
        sha = entry.get("sha256")
        if isinstance(sha, str) and sha and not SHA256.fullmatch(sha):
            problems.append(f"{where}: sha256 is not 64 hex digits")
    return problems


def check_extra_files(root: str, manifest: dict) -> list[str]:
    listed = {o["path"] for o in manifest["outputs"]} | {MANIFEST}
    if manifest.get("tokenizer"):
        listed.add(manifest["tokenizer"].get("path", "tokenizer.json"))
    prefix = root.rstrip("/") + "/"
    problems = []
    for meta in FileSystems.match([prefix + "**"])[0].metadata_list:
        rel = meta.path[len(prefix) :] if meta.path.startswith(prefix) else meta.path
        if rel not in listed and not rel.startswith(ALWAYS_ALLOWED):
            problems.append(f"{rel}: not listed in {MANIFEST}")
    return sorted(problems)


def validate_release(root: str) -> list[str]:
    """Every problem found, one line each, naming its file; [] for a sound release."""
    path = posixpath.join(root, MANIFEST)
    if not FileSystems.exists(path):
        return [f"{MANIFEST}: missing: {root} is not a complete release"]
    try:
        with _open(root, MANIFEST) as fh:
            manifest: dict[str, Any] = json.loads(fh.read().decode("utf-8"))
        for key in ("stages", "inputs", "outputs"):
            if not isinstance(manifest.get(key), list):
                return [f"{MANIFEST}: no {key} list"]
    except ValueError as err:
        return [f"{MANIFEST}: not valid JSON: {err}"]
    tokenizer = manifest.get("tokenizer")
    if tokenizer is not None and not isinstance(tokenizer, dict):
        return [f"{MANIFEST}: tokenizer is not a mapping"]
    problems: list[str] = []
    for entry in manifest["outputs"]:
        rel = entry.get("path", "?") if isinstance(entry, dict) else "?"
        problems.extend(_guarded(rel, check_file, root, entry, tokenizer))
    rel_tok = (tokenizer or {}).get("path", "tokenizer.json")
    problems.extend(_guarded(rel_tok, check_tokenizer, root, tokenizer))
    problems.extend(_guarded(rel_tok, check_hf_files, root, manifest))
    problems.extend(_guarded(MANIFEST, check_inputs, manifest))
    problems.extend(_guarded(MANIFEST, check_accounting, manifest))
    problems.extend(_guarded("drops/", check_drop_reasons, root, manifest))
    problems.extend(_guarded(root, check_extra_files, root, manifest))
    return problems


def _guarded(rel: str, check, *args) -> list[str]:
    """A check's problems; a check that fails itself (a manifest of the wrong shape, a file
    that cannot be read) is one more problem line naming what it was looking at."""
    try:
        return check(*args)
    except Exception as err:
        return [f"{rel}: cannot be checked: {type(err).__name__}: {str(err)[:200]}"]


def main(argv: list[str] | None = None) -> int:
    """`gristmill validate RELEASE`: 0 when sound; 1 and one line per problem otherwise."""
    parser = argparse.ArgumentParser(
        prog="gristmill validate",
        description="Check a release against its manifest: files, checksums, rows, schemas, "
        "the tokenizer and the accounting.",
        epilog="exit status: 0 sound, 1 problems found (one line each, on stderr)",
    )
    parser.add_argument("release", help="release directory (holds manifest.json)")
    args = parser.parse_args(argv)
    try:
        problems = validate_release(args.release)
    except Exception as err:  # never a traceback: one line, naming the release
        problems = [f"{MANIFEST}: cannot be checked: {type(err).__name__}: {str(err)[:200]}"]
    for line in problems:
        print(f"gristmill validate: {posixpath.join(args.release, line)}", file=sys.stderr)
    if problems:
        print(f"{args.release}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.release}: ok (files, checksums, rows, schemas and accounting agree)")
    return 0
