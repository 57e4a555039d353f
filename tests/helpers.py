"""Shared helpers for the gristmill tests: fixture files, job runs and release checks.

Every fixture is made under tmp_path; nothing here reads the shared corpus.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import zstandard

from gristmill.transforms.sources.paths import path_bytes

# Reading tests run the read and normalize stages only: the later stages would drop short
# test documents (quality, langid) or merge repeated ones (dedup), and they have tests of their own.
REPO = Path(__file__).resolve().parent.parent

READ_ONLY = [
    "langid.enabled=false",
    "quality.enabled=false",
    "dedup.enabled=false",
    "pii.enabled=false",
]


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def compress(kind: str, data: bytes) -> bytes:
    if kind == "plain":
        return data
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(kind)


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode("utf-8") + b"\n" for r in rows)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_corpus(
    output: Path, sources: list[str], sets: list[str] = (), job_file: str | None = None
) -> dict[str, Any]:
    """Runs the real job (1 worker unless `sets` says otherwise) and returns its manifest."""
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    cfg = load(job_file, [*READ_ONLY, *sets], cli_sources=list(sources), output=str(output))
    return run_job(cfg)


def read_rows(out: Path, kind: str) -> list[dict[str, Any]]:
    """All rows of one release table (documents, drops, dead_letters), shard by shard."""
    rows: list[dict[str, Any]] = []
    for part in sorted((out / kind).glob("*.parquet")):
        rows.extend(pq.read_table(part).to_pylist())
    return rows


def check_release(out: Path, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The accounting and file invariants every release must hold; returns the three tables."""
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest
    assert not (out / "manifest.json.tmp").exists()
    assert not (out / "_job").exists()

    stages = manifest["stages"]
    assert stages, "no stages in the manifest"
    assert stages[0]["name"] == "read"
    for prev, cur in zip([None, *stages], stages, strict=False):
        dropped = sum(cur["dropped"].values())
        assert cur["in"] == cur["kept"] + dropped, f"{cur['name']}: in != kept + dropped"
        if prev is not None:
            assert cur["in"] == prev["kept"], f"{cur['name']}: in != {prev['name']} kept"
        for source, part in cur["by_source"].items():
            assert part["in"] == part["kept"] + sum(part["dropped"].values()), (cur["name"], source)
        assert sum(p["in"] for p in cur["by_source"].values()) == cur["in"]
        assert sum(p["kept"] for p in cur["by_source"].values()) == cur["kept"]

    inputs = manifest["inputs"]
    assert stages[0]["in"] == sum(i["records"] for i in inputs)
    for entry in inputs:
        if "path_hmac" in entry:  # the pii stage ran: the path is scrubbed, matched by HMAC
            assert len(entry["path_hmac"]) == 64, entry["path"]
            continue
        path = Path(os.fsdecode(path_bytes(entry["path"])))  # names are recorded escaped
        assert entry["bytes"] == path.stat().st_size, entry["path"]
        assert entry["sha256"] == sha256_file(path), entry["path"]

    tables = {kind: read_rows(out, kind) for kind in ("documents", "drops", "dead_letters")}
    counts = manifest["counts"]
    assert len(tables["documents"]) == counts["documents"] == stages[-1]["kept"]
    assert (
        len(tables["drops"]) == counts["drops"] == sum(sum(s["dropped"].values()) for s in stages)
    )
    assert len(tables["dead_letters"]) == counts["dead_letters"]
    assert counts["dead_letters"] == sum(i["dead_letters"] for i in inputs)

    # Every drop row is counted under its stage and reason, and only there.
    by_reason = Counter((d["stage"], d["reason"]) for d in tables["drops"])
    counted = Counter({(s["name"], r): n for s in stages for r, n in s["dropped"].items()})
    assert by_reason == counted

    ids = [d["id"] for d in tables["documents"]]
    assert len(ids) == len(set(ids)), "duplicate document ids"

    # Outputs: every Parquet file on disk is listed, with its rows, bytes and checksum.
    listed = {o["path"]: o for o in manifest["outputs"]}
    found = {p.relative_to(out).as_posix() for p in out.glob("*/*.parquet")}
    assert {p for p in listed if p.endswith(".parquet")} == found
    for rel, entry in listed.items():
        if not rel.endswith(".parquet"):
            continue
        path = out / rel
        assert entry["bytes"] == path.stat().st_size, rel
        assert entry["sha256"] == sha256_file(path), rel
        assert entry["rows"] == pq.ParquetFile(path).metadata.num_rows, rel
    return tables
