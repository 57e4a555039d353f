"""A local run that cuts its large files into pieces writes the release of one that does not."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from helpers import REPO, check_release, run_corpus, write

from gristmill.pipelines import graph
from gristmill.pipelines.config import load
from gristmill.pipelines.phases.plan import partitions_of

MIB = 1 << 20


def _inputs(root: Path) -> list[str]:
    """Two articles files over 1 MiB, uncompressed: State of the Union speeches in JSON lines
    (some repeated, one edited, a bad line) and in Parquet with several row groups."""
    packed = (REPO / "sample" / "articles" / "sotu-sample.jsonl.zst").read_bytes()
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(packed).splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    copies = [{**r, "id": f"copy-{r['id']}"} for r in rows[::5]]
    edited = {**rows[1], "id": "edited", "text": rows[1]["text"].replace("the", "a", 3)}
    jsonl = [json.dumps(r) for r in rows + copies + [edited]]
    jsonl.insert(20, "{cut here")
    write(root / "speeches.jsonl", "\n".join(jsonl) + "\n")
    table = pa.Table.from_pylist([{"id": r["id"], "text": r["text"]} for r in rows])
    pq.write_table(table, root / "speeches.parquet", row_group_size=6, compression="none")
    assert min(p.stat().st_size for p in root.iterdir()) > MIB
    return [f"articles={root}/speeches.jsonl", f"articles={root}/speeches.parquet"]


def _data_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "reports" not in p.parts and p.name != "manifest.json"
    }


@pytest.mark.job
def test_files_cut_into_pieces_give_the_release_of_whole_files(tmp_path):
    sources = _inputs(tmp_path / "in")
    cut = ["runner.workers=2", f"runner.partition_bytes={MIB}", "dedup.enabled=true"]
    cfg = load(None, cut, cli_sources=sources, output=str(tmp_path / "unused"))
    parts = partitions_of(cfg, graph.plan(cfg, None).files)
    pieces = [(s, f.start, f.end) for p in parts for s, f in p.files]
    assert len(parts) == 4 and all(end > 0 for _, _, end in pieces), pieces
    whole = run_corpus(tmp_path / "whole", sources, ["dedup.enabled=true"])
    split = run_corpus(tmp_path / "split", sources, cut)
    check_release(tmp_path / "split", split)
    assert _data_files(tmp_path / "whole") == _data_files(tmp_path / "split")
    assert {k: v for k, v in whole.items() if k != "created_at"} == {
        k: v for k, v in split.items() if k != "created_at"
    }
    read = split["stages"][0]
    dropped = {s["name"]: s["dropped"] for s in split["stages"]}
    assert split["counts"]["dead_letters"] == 1
    assert dropped["dedup_exact"] == {"exact_duplicate": 39 + 8}  # across files and pieces
    assert dropped["dedup_near"] == {"near_duplicate": 1}  # the edited speech
    assert read["in"] == sum(i["records"] for i in split["inputs"]) == 2 * 39 + 8 + 1
