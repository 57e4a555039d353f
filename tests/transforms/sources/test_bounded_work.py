"""Bounded work per read and per record, without Beam: zstd inflates in small steps, Parquet
row groups are judged from the footer, the parsers' worst cases are linear, and a record past
its time budget is a dead letter while the next record is read."""

from __future__ import annotations

import gzip
import io
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from helpers import write

from gristmill.transforms.sources import budget as budget_mod
from gristmill.transforms.sources.articles import read_articles
from gristmill.transforms.sources.books import strip_gutenberg
from gristmill.transforms.sources.budget import Budget, RecordTimeout
from gristmill.transforms.sources.parquet_rows import plan_row_groups
from gristmill.transforms.sources.reader_api import BadRecord, RawRecord, ReadContext
from gristmill.transforms.sources.streams import (
    DecompressionBomb,
    InputFile,
    ZstdFrames,
    error_detail,
)
from gristmill.transforms.sources.wiki import read_wiki
from gristmill.transforms.sources.wikitext import wikitext_to_text


def ctx(path, record=1 << 20, cap=1 << 30, seconds=20.0, **options) -> ReadContext:
    return ReadContext("s", str(path), "x", options, record, "replace", cap, Budget(seconds))


# ---- streaming decompression ---------------------------------------------------------------


def test_zstd_zeros_inflate_a_few_mib_per_step():
    """2 GiB of zeros in ~65 KB: each read returns a bounded piece, never the whole frame."""
    raw = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as w:
        for _ in range(16):
            w.write(b"\0" * (16 << 20))
    assert len(raw.getvalue()) < 40_000
    frames = ZstdFrames(io.BytesIO(raw.getvalue()))
    buf = bytearray(1 << 16)
    biggest = max(frames.readinto(buf) for _ in range(2000))
    assert biggest <= len(buf)
    assert len(frames._out) <= 8 << 20  # what one step inflated


def test_zstd_bomb_meets_the_cap_fast(tmp_path):
    path = tmp_path / "bomb.zst"
    with path.open("wb") as fh, zstandard.ZstdCompressor().stream_writer(fh) as w:
        for _ in range(64):
            w.write(b"\0" * (16 << 20))  # 1 GiB
    f = InputFile(str(path), 10 << 20)
    started = time.perf_counter()
    with pytest.raises(DecompressionBomb):
        while f.stream.read(1 << 20):
            pass
    assert time.perf_counter() - started < 2.0
    assert f.tell() <= 10 << 20


def test_error_details_never_quote_the_input():
    try:
        gzip.GzipFile(fileobj=io.BytesIO(b"\x1fxjane@example.org")).read()
    except OSError as err:
        assert "jane" not in error_detail(err) and error_detail(err).startswith("BadGzipFile")
    assert error_detail(ValueError("secret value jane@example.org")) == "ValueError"


# ---- Parquet footers -------------------------------------------------------------------------


def _parquet(path, tables, **kw):
    with pq.ParquetWriter(path, tables[0].schema, **kw) as w:
        for t in tables:
            w.write_table(t)
    return path


def test_row_groups_are_judged_from_the_footer(tmp_path):
    small = pa.table({"text": ["a", "b"]})
    huge = pa.table({"text": ["x" * (3 << 20)]})
    path = _parquet(tmp_path / "t.parquet", [small, huge, small])
    verdicts = list(plan_row_groups(pq.ParquetFile(path).metadata, 1 << 20, 1 << 30))
    assert [(v.first_row, v.error) for v in verdicts] == [
        (0, ""),
        (2, "record_too_large"),
        (3, ""),
    ]
    capped = list(plan_row_groups(pq.ParquetFile(path).metadata, 8 << 20, 1 << 20))
    assert [(v.first_row, v.error) for v in capped] == [(0, ""), (2, "decompression_bomb")]


def test_a_dictionary_repeated_past_the_cap_is_a_bomb(tmp_path):
    """One 64 KB value repeated in 4,000 rows: small on disk and in the footer (a dictionary),
    256 MB once decoded. It stops at the file's cap, rows before it kept."""
    text = pa.DictionaryArray.from_arrays(pa.array([0] * 4000, pa.int32()), ["w " * 32768])
    rows = pa.table({"id": [str(i) for i in range(4000)], "text": text})
    path = _parquet(tmp_path / "d.parquet", [rows], use_dictionary=True, compression="zstd")
    assert path.stat().st_size < 1 << 20
    out = list(read_articles(InputFile(str(path), 1 << 30), ctx(path, cap=16 << 20)))
    docs = [o for o in out if isinstance(o, RawRecord)]
    [bad] = [o for o in out if isinstance(o, BadRecord)]
    assert bad.error == "decompression_bomb" and bad.offset == len(docs)
    assert 200 <= len(docs) <= 256


# ---- parsers' worst cases ------------------------------------------------------------------

WORST = {
    "unclosed refs": "<ref>" * 10_000,
    "unclosed tags": "<div>" * 10_000,
    "includeonly": "<includeonly>" * 10_000,
    "table openers": "{|\n" * 16_000,
    "open external links": "[http://x.org " * 4_000,
    "open templates": "{{|}\n" * 10_000,
    "list markers": "*" * 40_000,
}


@pytest.mark.parametrize("name", sorted(WORST))
def test_wikitext_worst_cases_are_linear(name):
    """Each took seconds to a minute before (see wikitext_linear.py); now well under one."""
    started = time.perf_counter()
    wikitext_to_text(WORST[name])
    assert time.perf_counter() - started < 2.0, name


def test_gutenberg_markers_on_a_file_of_blank_lines():
    started = time.perf_counter()
    assert strip_gutenberg("\n" * 1_000_000)[1] is False
    assert time.perf_counter() - started < 1.0


def test_budget_raises_inside_the_loop_and_counts():
    b = Budget(0.01)
    with pytest.raises(RecordTimeout), b.record():
        while True:
            budget_mod.check()
    assert b.timeouts == 1
    with b.record():
        budget_mod.check()  # a fresh record has its own budget
    budget_mod.check()  # outside a record: no budget


class _Clock:
    """A clock the test moves by hand: whether a record overran its budget never depends on
    how fast the machine happens to be."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_page_past_its_budget_is_a_dead_letter_and_the_next_is_read(tmp_path, monkeypatch):
    """The wikitext renderer is one call the budget cannot interrupt: a page whose rendering
    overran (here: the clock moved 1 s while the heavy page rendered) is a dead letter, and
    the next page is read."""
    from gristmill.transforms.sources import wiki

    clock = _Clock()
    monkeypatch.setattr(budget_mod, "time", clock)
    real = wiki.wikitext_to_text

    def render(text: str) -> str:
        if "[[a]]" in text:
            clock.now += 1.0
        return real(text)

    monkeypatch.setattr(wiki, "wikitext_to_text", render)
    heavy = "Prose. " + "[[a]] " * 600
    dump = (
        "<mediawiki>"
        f"<page><title>Heavy</title><ns>0</ns><id>1</id><revision><text>{heavy}</text></revision></page>"
        "<page><title>Light</title><ns>0</ns><id>2</id><revision><text>Light prose.</text>"
        "</revision></page></mediawiki>"
    )
    path = write(tmp_path / "d.xml", dump)
    out = list(read_wiki(InputFile(str(path), 1 << 30), ctx(path, seconds=0.05)))
    assert [(type(o).__name__, o.offset) for o in out] == [("BadRecord", 0), ("RawRecord", 1)]
    assert out[0].error == "record_timeout" and "record_seconds" in out[0].detail
    assert out[1].text == "Light prose."
