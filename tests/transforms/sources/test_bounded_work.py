"""Bounded work per read and per record, without Beam: zstd inflates in small steps, Parquet
row groups are judged from the footer, the parsers' worst cases are linear, and a record past
its time budget is a dead letter while the next record is read.

Work is counted, never timed (bytes inflated, characters the regexes and the wikitext
tokenizer examine): a count does not depend on the machine, and a broken bound fails at once
instead of after minutes."""

from __future__ import annotations

import gzip
import io
import re

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


def test_zstd_bomb_meets_the_cap_after_bounded_work(tmp_path, monkeypatch):
    """1 GiB of zeros against a 10 MiB cap: what is inflated before the bomb is raised is the
    cap and at most a step or two more, never the frame (the old reader inflated it whole)."""
    path = tmp_path / "bomb.zst"
    with path.open("wb") as fh, zstandard.ZstdCompressor().stream_writer(fh) as w:
        for _ in range(64):
            w.write(b"\0" * (16 << 20))  # 1 GiB
    inflated: list[int] = []
    real_step = ZstdFrames._step

    def counted(self, chunk: bytes) -> bytes:
        out = real_step(self, chunk)
        inflated.append(len(out))
        assert sum(inflated) <= 64 << 20, "inflated far past the cap: the bound is broken"
        return out

    monkeypatch.setattr(ZstdFrames, "_step", counted)
    f = InputFile(str(path), 10 << 20)
    with pytest.raises(DecompressionBomb):
        while f.stream.read(1 << 20):
            pass
    assert f.tell() <= 10 << 20
    assert max(inflated) <= 8 << 20, "one step inflates a few MiB at most"
    assert 10 << 20 < sum(inflated) <= (10 << 20) + 2 * max(inflated) + (1 << 17)


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


class _Scans:
    """Counts the characters the wikitext modules' regexes examine: a search from `pos` up to
    its match's end (or the text's end), a match at `pos` up to its end (at least one), any
    other call (finditer, sub, ...) the whole text."""

    def __init__(self, pattern: re.Pattern[str], counter: list[int]):
        self._pattern = pattern
        self._counter = counter

    def search(self, text: str, pos: int = 0, *args):
        m = self._pattern.search(text, pos, *args)
        self._counter[0] += (m.end() if m else len(text)) - pos
        return m

    def match(self, text: str, pos: int = 0, *args):
        m = self._pattern.match(text, pos, *args)
        self._counter[0] += max(1, m.end() - pos) if m else 1
        return m

    def __getattr__(self, name: str):
        method = getattr(self._pattern, name)

        def counted(text, *args, **kwargs):
            self._counter[0] += len(text) if isinstance(text, str) else len(args[0])
            return method(text, *args, **kwargs)

        return counted if callable(method) and name != "groups" else method


@pytest.fixture
def wikitext_work(monkeypatch) -> dict[str, list[int]]:
    """{"regex": characters the pre-pass regexes examine, "parser": positions the wikitext
    tokenizer reads}. mwparserfromhell's Python tokenizer runs instead of its C port (the same
    routes, retried the same way) so that its reads can be counted; past 50 reads a character
    the count fails the test at once (the quadratic routes took minutes)."""
    from mwparserfromhell import parser as mw_parser
    from mwparserfromhell.parser import tokenizer as mw_tokenizer

    from gristmill.transforms.sources import wikitext, wikitext_linear

    work = {"regex": [0], "parser": [0], "limit": [0]}
    for module in (wikitext, wikitext_linear):
        for name, value in vars(module).copy().items():
            if isinstance(value, re.Pattern):
                monkeypatch.setattr(module, name, _Scans(value, work["regex"]))
    closing = wikitext_linear._closing
    monkeypatch.setattr(wikitext_linear, "_closing", lambda n: _Scans(closing(n), work["regex"]))
    monkeypatch.setattr(mw_parser, "use_c", False)
    real_read = mw_tokenizer.Tokenizer._read

    def read(self, *args, **kwargs):
        work["parser"][0] += 1
        assert work["parser"][0] <= work["limit"][0], "the tokenizer rescans: quadratic"
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(mw_tokenizer.Tokenizer, "_read", read)
    return work


@pytest.mark.parametrize("name", sorted(WORST))
def test_wikitext_worst_cases_are_linear(name, wikitext_work):
    """Each took seconds to a minute before (see wikitext_linear.py). Now the regexes examine
    each character a few times and the tokenizer reads it a few times, at any size: the
    counts per character are the same for the input and for twice the input."""
    per_char = {}
    for copies in (1, 2):
        text = WORST[name] * copies
        wikitext_work["limit"][0] = 50 * len(text)
        wikitext_work["regex"][0] = wikitext_work["parser"][0] = 0
        wikitext_to_text(text)
        regex, parser = wikitext_work["regex"][0], wikitext_work["parser"][0]
        assert regex <= 60 * len(text) and parser <= 10 * len(text), (name, regex, parser)
        per_char[copies] = (regex / len(text), parser / len(text))
    for kind in (0, 1):  # linear: twice the input costs twice the work, not four times
        assert per_char[2][kind] <= per_char[1][kind] * 1.1 + 0.01, (name, per_char)


def _line_start_reach(pattern: re.Pattern[str], text: str) -> int:
    """Characters the repeats that open each alternative of a MULTILINE pattern examine,
    summed over every line start: the engine tries them at each one before failing."""
    leads = []
    depth, start = 0, 0
    for i, char in enumerate(pattern.pattern + "|"):
        depth += {"(": 1, ")": -1}.get(char, 0) if pattern.pattern[i - 1 : i] != "\\" else 0
        if char == "|" and depth == 0:
            alternative = pattern.pattern[start:i]
            lead = re.match(r"\^(?:(?:\[[^\]]*\]|\\s)[*+])*", alternative)
            leads.append(re.compile(lead.group(0) if lead else "^", pattern.flags))
            start = i + 1
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return sum(len(lead.match(text, p).group(0)) for lead in leads for p in starts)


def test_gutenberg_markers_on_a_file_of_blank_lines():
    """`\\s*` at a line start would reach over every newline after it, from every line start
    (quadratic: 40 KB of newlines took 62 s); the markers' leading repeats stay on their line."""
    from gristmill.transforms.sources import books

    blank = "\n" * 20_000 + " \t\n" * 5_000
    for pattern in (books._START, books._END):
        assert _line_start_reach(pattern, blank) <= len(blank)
        assert _line_start_reach(re.compile(r"^\s*\*{3}", re.M), blank) > 100 * len(blank)
    assert strip_gutenberg(blank)[1] is False
    assert strip_gutenberg("x\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nBody.\n") == (
        "Body.",
        True,
    )


def test_budget_raises_inside_the_loop_and_counts(monkeypatch):
    """The clock moves 1 ms per check: a 10 ms budget stops the loop at its 11th check."""
    clock = _Clock()
    monkeypatch.setattr(budget_mod, "time", clock)
    checks = 0
    b = Budget(0.01)
    with pytest.raises(RecordTimeout), b.record():
        while checks < 1000:
            checks += 1
            clock.now += 0.001
            budget_mod.check()
    assert checks == 11 and b.timeouts == 1
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
