"""Large files read in pieces: every cut reads each record once, with the file's offsets."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from random import Random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import compress, write

from gristmill.pipelines.phases.plan import plan_partitions
from gristmill.pipelines.phases.rest import _per_file
from gristmill.transforms.sources.articles import read_articles
from gristmill.transforms.sources.limits import ReadLimits
from gristmill.transforms.sources.read import MatchedFile, ReadFiles
from gristmill.transforms.sources.reader_api import BadRecord, RawRecord, ReadContext
from gristmill.transforms.sources.splits import pieces, splittable
from gristmill.transforms.sources.streams import InputFile

LIMIT = 120  # bytes per record: one line below is longer


def _lines() -> bytes:
    rows = [json.dumps({"id": i, "text": f"record {i} " + "é" * (i % 7)}) for i in range(12)]
    rows.insert(3, "")  # a blank line
    rows.insert(5, "{not json")
    rows.insert(8, json.dumps({"text": "x" * 200}))  # too long
    return b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\n" + b'{"text": "no newline"}'


def _read(path: Path, start: int = 0, end: int = -1) -> list[tuple]:
    """What the articles reader yields for [start, end): (offset, kind, text or error)."""
    span = (start, end) if end >= 0 else None
    ctx = ReadContext("s", str(path), "f", {}, LIMIT, "replace", span=span)
    f = InputFile(str(path), 1 << 30, max(start - 1, 0))
    out = []
    for rec in read_articles(f, ctx):
        if isinstance(rec, RawRecord):
            out.append((rec.offset, "record", rec.text))
        elif isinstance(rec, BadRecord):
            out.append((rec.offset, "bad", rec.error))
    return out


@pytest.mark.unit
def test_json_lines_cut_at_every_byte_read_each_record_once(tmp_path):
    path = write(tmp_path / "a.jsonl", _lines())
    whole = _read(path)
    assert [k for _, k, _ in whole].count("record") == 13
    assert {e for _, k, e in whole if k == "bad"} == {"invalid_json", "record_too_large"}
    size = path.stat().st_size
    for cut in range(1, size):
        assert _read(path, 0, cut) + _read(path, cut, size) == whole, cut
    three = [_read(path, a, b) for a, b in ((0, 50), (50, 51), (51, size))]
    assert [r for part in three for r in part] == whole


def _parquet(path: Path, rows: int, group: int) -> Path:
    table = pa.table({"id": list(range(rows)), "text": [f"row {i} " * 5 for i in range(rows)]})
    pq.write_table(table, path, row_group_size=group, compression="none")
    return path


@pytest.mark.unit
def test_parquet_pieces_read_each_row_group_once(tmp_path):
    path = _parquet(tmp_path / "a.parquet", 100, 9)
    whole = _read(path)
    assert [o for o, _, _ in whole] == list(range(100))  # offsets are row numbers
    size = path.stat().st_size
    for count in (2, 3, 7, 40):
        f = MatchedFile(str(path), "a.parquet", size)
        parts = pieces(f, -(-size // count))
        assert parts[0].start == 0 and parts[-1].end == size
        got = [r for p in parts for r in _read(path, p.start, p.end)]
        assert got == whole, count


@pytest.mark.unit
def test_only_large_uncompressed_articles_files_are_cut(tmp_path):
    random = Random(0)
    data = b"".join(  # hex text: the gzip copy stays larger than a partition
        json.dumps({"text": random.randbytes(60).hex()}).encode() + b"\n" for _ in range(200)
    )
    plain = write(tmp_path / "big.jsonl", data)
    packed = write(tmp_path / "big.jsonl.gz", compress("gzip", data))
    small = write(tmp_path / "small.jsonl", data[:100])
    files = {
        "s": [MatchedFile(str(p), p.name, p.stat().st_size) for p in (plain, packed, small)],
        "b": [MatchedFile(str(plain), "big.txt", plain.stat().st_size)],
    }
    kinds = {"s": "articles", "b": "books"}
    size = plain.stat().st_size
    parts = plan_partitions(files, size // 3 - 1, lambda s, f: splittable(kinds[s], {}, f))
    listed = [[(s, f.relpath, f.start, f.end) for s, f in p.files] for p in parts]
    step = -(-size // 4)
    assert listed == [
        [("s", "big.jsonl", 0, step)],
        [("s", "big.jsonl", step, 2 * step)],
        [("s", "big.jsonl", 2 * step, 3 * step)],
        [("s", "big.jsonl", 3 * step, size)],
        [("s", "big.jsonl.gz", 0, -1)],  # a compressed stream reads from its start only
        [("s", "small.jsonl", 0, -1)],
        [("b", "big.txt", 0, -1)],  # a book is one document
    ]
    assert all(p.bytes < size // 3 for p in parts[:4]) and parts[4].bytes > size // 3


def _outputs(matched: MatchedFile) -> tuple[list, list]:
    """ReadFiles on one file or piece: (documents and dead letters, input stats)."""
    dofn = ReadFiles("s", read_articles, {}, ReadLimits(max_record_bytes=LIMIT))
    dofn.setup()
    rows, stats = [], []
    for out in dofn.process(matched):
        tag, value = getattr(out, "tag", "docs"), getattr(out, "value", out)
        (stats if tag == "inputs" else rows).append(value)
    return rows, stats


@pytest.mark.unit
def test_pieces_of_a_file_make_its_documents_ids_and_one_input_row(tmp_path):
    path = write(tmp_path / "a.jsonl", _lines())
    size = path.stat().st_size
    rows, stats = [], []
    for start, end in ((0, 40), (40, 90), (90, size)):
        got = _outputs(MatchedFile(str(path), "a.jsonl", size, start=start, end=end))
        rows += got[0]
        stats += got[1]
    whole_rows, whole_stats = _outputs(MatchedFile(str(path), "a.jsonl", size))
    assert rows == whole_rows and len(whole_rows) == 15  # ids come from the file's offsets
    merged = _per_file([{**asdict(s), "skipped": dict(s.skipped)} for s in stats])
    assert len(stats) == 3 and merged == whole_stats
    assert merged[0].bytes == size and merged[0].records == 13 and merged[0].dead_letters == 2
