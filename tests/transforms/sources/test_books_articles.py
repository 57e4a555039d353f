"""Books (Gutenberg boilerplate) and articles (JSONL, Parquet) readers, without Beam."""

from __future__ import annotations

import datetime
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from helpers import compress, jsonl, write

from gristmill.schemas import tables
from gristmill.transforms.sources.articles import META_MAX_CHARS, read_articles, read_jsonl
from gristmill.transforms.sources.books import read_book, strip_gutenberg
from gristmill.transforms.sources.reader_api import BadRecord, RawRecord, ReadContext
from gristmill.transforms.sources.streams import InputFile

BODY = "HAMLET\n\nACT I\n\nScene I. Elsinore. A platform before the castle.\n\nWho's there?"

MODERN = (
    "The Project Gutenberg eBook of Hamlet, by William Shakespeare\n\n"
    "This eBook is for the use of anyone anywhere in the United States.\n\n"
    "Title: Hamlet\n\nRelease Date: November 1998 [eBook #1524]\n\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK HAMLET ***\n\n\n"
    f"{BODY}\n\n\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK HAMLET ***\n\n"
    "Updated editions will replace the previous one--the old editions will be renamed.\n"
    "*** START: FULL LICENSE ***\n\nTHE FULL PROJECT GUTENBERG LICENSE\n"
)

NINETIES = (
    "**The Project Gutenberg Etext of Hamlet, by Shakespeare**\n"
    "#2 in our series by William Shakespeare\n\n"
    "**Welcome To The World of Free Plain Vanilla Electronic Texts**\n\n"
    "**Etexts Readable By Both Humans and By Computers, Since 1971**\n\n"
    "*These Etexts Prepared By Hundreds of Volunteers and Donations*\n\n"
    "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\n"
    'Why is this "Small Print!" statement here?  You know: lawyers.\n'
    "*END THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n"
    "\n"
    "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
    f"{BODY}\n\n"
    "End of Project Gutenberg's Etext of Hamlet, by Shakespeare\n"
)


def ctx(path, source="s", max_record_bytes=1 << 30, mode="replace", **options) -> ReadContext:
    return ReadContext(source, str(path), path.name, options, max_record_bytes, mode)


def read(reader, path, **kw) -> list:
    f = InputFile(str(path), 1 << 30)
    return list(reader(f, ctx(path, **kw)))


# ---- Gutenberg boilerplate -----------------------------------------------------------------


def test_modern_header_and_footer_removed():
    text, found = strip_gutenberg(MODERN)
    assert found
    assert text == BODY


def test_this_project_gutenberg_ebook_variant():
    book = (
        "header\n*** START OF THIS PROJECT GUTENBERG EBOOK SONNETS ***\n"
        f"{BODY}\n*** END OF THIS PROJECT GUTENBERG EBOOK SONNETS ***\nfooter\n"
    )
    assert strip_gutenberg(book) == (BODY, True)


def test_modern_markers_with_crlf_line_ends():
    text, found = strip_gutenberg(MODERN.replace("\n", "\r\n"))
    assert found
    assert "START OF" not in text and "END OF" not in text and "LICENSE" not in text
    assert text.strip() == BODY.replace("\n", "\r\n")


def test_nineties_small_print_removed():
    text, found = strip_gutenberg(NINETIES)
    assert found
    assert text.strip("\n") == BODY
    assert "SMALL PRINT" not in text and "End of Project Gutenberg" not in text


@pytest.mark.parametrize(
    "text",
    [
        BODY,
        "A story that mentions Project Gutenberg in passing.\nThe end of the story.",
        "*** A line of stars ***\nand some text\n",
        "",
    ],
)
def test_text_without_markers_untouched(text):
    out, found = strip_gutenberg(text)
    assert found is False
    assert out is text


def test_only_an_end_marker():
    assert strip_gutenberg(f"{BODY}\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence") == (
        BODY,
        True,
    )


# ---- read_book -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "gzip", "bz2", "zstd"])
def test_read_book_any_compression(tmp_path, kind):
    path = write(tmp_path / "hamlet.txt", compress(kind, MODERN.encode()))
    [rec] = read(read_book, path)
    assert isinstance(rec, RawRecord)
    assert (rec.offset, rec.text, rec.drop) == (0, BODY, "")
    assert rec.meta == {"gutenberg_boilerplate": True}


def test_read_book_without_stripping(tmp_path):
    path = write(tmp_path / "hamlet.txt", MODERN)
    [rec] = read(read_book, path, strip_gutenberg=False)
    assert rec.text == MODERN
    assert rec.meta == {}


def test_read_book_empty_and_boilerplate_only(tmp_path):
    [empty] = read(read_book, write(tmp_path / "empty.txt", b""))
    assert (empty.drop, empty.text) == ("empty", "")
    shell = "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
    [hollow] = read(read_book, write(tmp_path / "hollow.txt", shell))
    assert hollow.drop == "empty"


def test_read_book_invalid_utf8_kept_and_reported(tmp_path):
    data = b"A book about caf\xe9 culture, long enough to keep the text.\n"
    [bad, rec] = read(read_book, write(tmp_path / "latin1.txt", data))
    assert bad == BadRecord(data.index(b"\xe9"), "invalid_utf8", bad.detail)
    assert rec.text == data.decode("utf-8", "replace")


def test_read_book_binary_and_too_large(tmp_path):
    [bad] = read(read_book, write(tmp_path / "junk.txt", bytes(range(256)) * 40))
    assert (bad.offset, bad.error) == (0, "binary_content")
    [big] = read(read_book, write(tmp_path / "big.txt", "x" * 2000), max_record_bytes=1000)
    assert (big.offset, big.error) == (0, "record_too_large")


# ---- JSONL ---------------------------------------------------------------------------------


def test_jsonl_custom_fields_meta_and_record_id(tmp_path):
    rows = [
        {
            "uid": 17,
            "body": "First article.",
            "title": "One",
            "date": "2020-01-01",
            "score": 1.5,
            "ok": True,
        },
        {
            "uid": "b-2",
            "body": "Second article.",
            "long": "x" * (META_MAX_CHARS + 1),
            "nested": {"a": 1},
        },
        {"body": "Third, without an id.", "tags": ["a", "b"], "none": None},
    ]
    path = write(tmp_path / "news.jsonl", jsonl(rows))
    recs = read(read_jsonl, path, text_field="body", id_field="uid")
    assert [r.text for r in recs] == ["First article.", "Second article.", "Third, without an id."]
    assert [r.record_id for r in recs] == ["17", "b-2", ""]
    assert recs[0].meta == {
        "uid": 17,
        "title": "One",
        "date": "2020-01-01",
        "score": 1.5,
        "ok": True,
    }
    assert recs[1].meta == {"uid": "b-2"}, "long strings and nested objects stay out of meta"
    assert recs[2].meta == {"none": None}
    assert all("body" not in r.meta for r in recs)
    # Offsets are the byte offsets of the lines.
    data = path.read_bytes()
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]
    assert [r.offset for r in recs] == starts


def test_jsonl_meta_at_the_size_limit_is_kept(tmp_path):
    path = write(tmp_path / "a.jsonl", jsonl([{"text": "t", "note": "n" * META_MAX_CHARS}]))
    [rec] = read(read_jsonl, path)
    assert rec.meta["note"] == "n" * META_MAX_CHARS


def test_jsonl_offsets_are_decompressed_offsets(tmp_path):
    z = zstandard.ZstdCompressor()
    lines = [jsonl([{"id": i, "text": f"doc {i}"}]) for i in range(4)]
    path = write(
        tmp_path / "a.jsonl.zst", z.compress(b"".join(lines[:2])) + z.compress(b"".join(lines[2:]))
    )
    recs = read(read_articles, path)
    expected = [sum(len(x) for x in lines[:i]) for i in range(4)]
    assert [r.offset for r in recs] == expected
    assert [r.record_id for r in recs] == ["0", "1", "2", "3"]


def test_jsonl_bad_lines_are_dead_letters_and_reading_goes_on(tmp_path):
    lines = [
        b'{"id": 1, "text": "good one"}\n',
        b"\n",
        b'{"id": 2, "text": "broken\n',
        b"[1, 2, 3]\n",
        b'{"id": 3, "text": 42}\n',
        b'{"id": 4}\n',
        b'{"id": 5, "text": "   "}\n',
        b'{"id": 6, "text": "caf\xe9 is not UTF-8 here but the line is long enough"}\n',
        b'{"id": 7, "text": "last good one"}',
    ]
    path = write(tmp_path / "mixed.jsonl", b"".join(lines))
    at = [sum(len(x) for x in lines[:i]) for i in range(len(lines))]
    out = read(read_jsonl, path)
    summary = [
        (type(o).__name__, o.offset, getattr(o, "error", "") or getattr(o, "drop", "")) for o in out
    ]
    assert summary == [
        ("RawRecord", at[0], ""),
        ("BadRecord", at[2], "invalid_json"),
        ("BadRecord", at[3], "not_an_object"),
        ("BadRecord", at[4], "wrong_type"),
        ("RawRecord", at[5], "no_text"),
        ("RawRecord", at[6], "empty"),
        ("BadRecord", at[7] + lines[7].index(b"\xe9"), "invalid_utf8"),
        ("RawRecord", at[7], ""),
        ("RawRecord", at[8], ""),
    ]
    assert out[7].text.startswith("caf\ufffd is not UTF-8")
    assert out[8].text == "last good one"


def test_jsonl_line_over_the_record_limit_is_skipped(tmp_path):
    lines = [
        jsonl([{"id": "a", "text": "short"}]),
        jsonl([{"id": "big", "text": "y" * 5000}]),
        jsonl([{"id": "b", "text": "after"}]),
    ]
    path = write(tmp_path / "big.jsonl", b"".join(lines))
    out = read(read_jsonl, path, max_record_bytes=1000)
    assert [type(o).__name__ for o in out] == ["RawRecord", "BadRecord", "RawRecord"]
    assert (out[1].offset, out[1].error) == (len(lines[0]), "record_too_large")
    assert (out[2].offset, out[2].text) == (len(lines[0]) + len(lines[1]), "after")


def test_jsonl_dead_letter_mode_drops_the_line(tmp_path):
    path = write(
        tmp_path / "a.jsonl",
        b'{"text": "caf\xe9 and a long enough line of text"}\n{"text": "ok"}\n',
    )
    out = read(read_jsonl, path, mode="dead_letter")
    assert [type(o).__name__ for o in out] == ["BadRecord", "RawRecord"]
    assert out[1].text == "ok"


# ---- Parquet -------------------------------------------------------------------------------


def test_parquet_articles(tmp_path):
    table = pa.table(
        {
            "uid": ["p-0", "p-1", "p-2"],
            "body": ["Parquet article zero.", "Parquet article one.", None],
            "year": [2001, 2002, 2003],
            "long": ["z" * 1000, "short", "short"],
        }
    )
    path = tmp_path / "news.parquet"
    pq.write_table(table, path, row_group_size=2)
    out = read(read_articles, path, text_field="body", id_field="uid", format="auto")
    assert [(o.offset, o.text, o.record_id, o.drop) for o in out] == [
        (0, "Parquet article zero.", "p-0", ""),
        (1, "Parquet article one.", "p-1", ""),
        (2, "", "", "no_text"),
    ]
    assert out[0].meta == {"uid": "p-0", "year": 2001}
    assert out[1].meta == {"uid": "p-1", "year": 2002, "long": "short"}


def test_parquet_missing_text_column(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1], "content": ["x"]}), path)
    [bad] = read(read_articles, path)
    assert (bad.offset, bad.error) == (0, "missing_column")
    assert "content" in bad.detail


def test_parquet_format_forced(tmp_path):
    path = tmp_path / "data.bin"
    pq.write_table(pa.table({"text": ["forced"]}), path)
    [rec] = read(read_articles, path, format="parquet")
    assert rec.text == "forced"


def test_parquet_meta_is_json_serializable(tmp_path):
    table = pa.table(
        {
            "text": ["An article with a date."],
            "published": [datetime.datetime(2020, 5, 17, 12, 0)],
            "day": [datetime.date(2020, 5, 17)],
            "raw": [b"\x00\x01"],
        }
    )
    path = tmp_path / "dated.parquet"
    pq.write_table(table, path)
    [rec] = read(read_articles, path)
    json.loads(tables.meta_json(rec.meta))


def test_jsonl_with_a_byte_order_mark(tmp_path):
    path = write(
        tmp_path / "bom.jsonl",
        b"\xef\xbb\xbf" + jsonl([{"id": "first", "text": "one"}, {"id": "second", "text": "two"}]),
    )
    out = read(read_jsonl, path)
    assert [type(o).__name__ for o in out] == ["RawRecord", "RawRecord"], out
    assert [o.record_id for o in out] == ["first", "second"]


def test_jsonl_escaped_lone_surrogate_does_not_reach_the_documents(tmp_path):
    path = write(
        tmp_path / "sur.jsonl",
        b'{"id": "s", "text": "broken emoji \\ud83d here", "note": "x\\udc00"}\n',
    )
    out = read(read_jsonl, path)
    for rec in out:
        if isinstance(rec, RawRecord):
            rec.text.encode("utf-8")
            tables.meta_json(rec.meta).encode("utf-8")
    [doc] = [r for r in out if isinstance(r, RawRecord)]
    assert doc.text == "broken emoji \ufffd here"
    # the replaced escape is reported, not silently mended
    assert [(b.offset, b.error) for b in out if isinstance(b, BadRecord)] == [(0, "invalid_utf8")]


def test_jsonl_line_nested_too_deep_is_one_dead_letter_and_the_file_goes_on(tmp_path):
    deep = b'{"id": "deep", "text": "x", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    lines = [jsonl([{"id": "a", "text": "before"}]), deep, jsonl([{"id": "b", "text": "after"}])]
    path = write(tmp_path / "deep.jsonl", b"".join(lines))
    out = read(read_jsonl, path)
    assert [type(o).__name__ for o in out] == ["RawRecord", "BadRecord", "RawRecord"]
    assert (out[1].offset, out[1].error) == (len(lines[0]), "json_too_deep")
    assert (out[2].offset, out[2].text) == (len(lines[0]) + len(deep), "after")
