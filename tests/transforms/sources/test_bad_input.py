"""Bad input through the real job: the job finishes, every readable record is kept, every bad
part is a counted dead letter with its file and offset, and the accounting adds up."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import random
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from helpers import check_release, compress, jsonl, run_corpus, write

CAP = 1 << 20  # read.max_decompressed_bytes for the bad-input job
RNG = random.Random(20240607)


def junk(n: int) -> bytes:
    return bytes(RNG.randrange(256) for _ in range(n))


def book(token: str) -> str:
    return (
        "The Project Gutenberg eBook of Something\n\n"
        f"*** START OF THE PROJECT GUTENBERG EBOOK {token} ***\n\n"
        f"{token} opens the book.\n\nA second paragraph of {token}.\n\n"
        f"*** END OF THE PROJECT GUTENBERG EBOOK {token} ***\n\nLicence text.\n"
    )


def article(uid: str, extra: str = "") -> dict:
    return {"uid": uid, "body": f"Article {uid} says hello.{extra}", "title": f"t-{uid}"}


def lines_of(rows: list[dict]) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" for r in rows]


class Inputs:
    """Builds the input tree and remembers what the job must make of it."""

    def __init__(self, root: Path):
        self.root = root
        self.good_books: dict[str, str] = {}  # file name -> expected text
        self.good_articles: dict[str, str] = {}  # uid -> expected text
        self.partial: dict[str, tuple[str, int]] = {}  # file -> (uid prefix, total rows)
        self.dead: dict[str, str] = {}  # file name -> expected dead-letter error (or "*")
        self.exact_offset: dict[str, int] = {}
        self.read_drops: dict[str, str] = {}  # file name -> reason (read stage)

    def books(self, name: str, data: bytes | str) -> Path:
        return write(self.root / "books" / name, data)

    def articles(self, name: str, data: bytes | str) -> Path:
        return write(self.root / "articles" / name, data)


@pytest.fixture(scope="module")
def bad_job(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_input")
    inp = Inputs(root / "in")

    # -- books: one good file per compression, names that lie about the content
    for kind, name in [
        ("plain", "good_plain.txt"),
        ("gzip", "good_gzip.txt"),
        ("bz2", "good_bz2.dat"),
        ("zstd", "good_zstd.gz"),
    ]:
        token = f"GOODBOOK{kind.upper()}"
        inp.books(name, compress(kind, book(token).encode()))
        inp.good_books[name] = f"{token} opens the book.\n\nA second paragraph of {token}."
    # corrupt gzip: a valid header, then garbage
    inp.books("corrupt_header.txt.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + junk(5000))
    inp.dead["corrupt_header.txt.gz"] = "*"
    # truncated gzip
    whole = gzip.compress(("Truncated book line.\n" * 20000).encode())
    inp.books("truncated.txt.gz", whole[: len(whole) // 2])
    inp.dead["truncated.txt.gz"] = "truncated_input"
    # corrupt bz2 and zstd
    inp.books("corrupt.txt.bz2", b"BZh9" + junk(5000))
    inp.dead["corrupt.txt.bz2"] = "*"
    inp.books("corrupt.txt.zst", b"\x28\xb5\x2f\xfd" + junk(5000))
    inp.dead["corrupt.txt.zst"] = "*"
    # truncated zstd: ends inside a frame
    whole_zst = zstandard.ZstdCompressor().compress(("Truncated zstd line.\n" * 20000).encode())
    inp.books("truncated.txt.zst", whole_zst[: len(whole_zst) // 2])
    inp.dead["truncated.txt.zst"] = "truncated_input"
    # invalid UTF-8 inside a book: the text is kept, the bad bytes are a dead letter
    latin = b"GOODBOOKLATIN1 tells of a caf\xe9 in Paris, and of much else besides.\n"
    inp.books("latin1.txt", latin)
    inp.good_books["latin1.txt"] = latin.decode("utf-8", "replace").strip()
    inp.dead["latin1.txt"] = "invalid_utf8"
    inp.exact_offset["latin1.txt"] = latin.index(b"\xe9")
    # an empty file, and a book that is nothing but control characters
    inp.books("empty.txt", b"")
    inp.read_drops["empty.txt"] = "empty"
    inp.books("controls.txt", "\x01\x02\x03\x1b\x7f")
    # binary junk with NUL bytes
    inp.books("junk.txt", junk(20000) + b"\x00" * 100)
    inp.dead["junk.txt"] = "binary_content"
    inp.exact_offset["junk.txt"] = 0
    # a decompression bomb: small on disk, 8 MiB inflated, past the 1 MiB cap
    inp.books("bomb.txt.gz", gzip.compress(b"bomb " * ((8 << 20) // 5)))
    inp.dead["bomb.txt.gz"] = "decompression_bomb"

    # -- articles (text_field=body, id_field=uid, set with --set on the source)
    good = [article(f"a{i}") for i in range(3)]
    inp.articles("good.jsonl", jsonl(good))
    inp.articles("good.parquet", b"")  # replaced below
    pq.write_table(
        pa.table(
            {
                "uid": ["p0", "p1"],
                "body": ["Article p0 says hello.", "Article p1 says hello."],
                "title": ["t-p0", "t-p1"],
            }
        ),
        root / "in" / "articles" / "good.parquet",
    )
    multi = [article(f"m{i}") for i in range(4)]
    inp.articles(
        "good_multi.jsonl.gz", gzip.compress(jsonl(multi[:2])) + gzip.compress(jsonl(multi[2:]))
    )
    inp.articles("good_bz2.jsonl", bz2.compress(jsonl([article("z0")])))
    for row in [*good, *multi, article("z0"), article("p0"), article("p1")]:
        inp.good_articles[row["uid"]] = row["body"]
    # a malformed JSON line between good ones
    malformed = [
        *lines_of([article("j0")]),
        b'{"uid": "j1", "body": "broken\n',
        *lines_of([article("j2")]),
    ]
    inp.articles("malformed.jsonl", b"".join(malformed))
    inp.good_articles.update({"j0": article("j0")["body"], "j2": article("j2")["body"]})
    inp.dead["malformed.jsonl"] = "invalid_json"
    inp.exact_offset["malformed.jsonl"] = len(malformed[0])
    # invalid UTF-8 inside a JSON line
    bad_line = b'{"uid": "u1", "body": "Article u1 says caf\xe9 hello, at some length.", "title": "t-u1"}\n'
    utf = [*lines_of([article("u0")]), bad_line, *lines_of([article("u2")])]
    inp.articles("invalid_utf8.jsonl", b"".join(utf))
    inp.good_articles.update(
        {
            "u0": article("u0")["body"],
            "u1": "Article u1 says caf\ufffd hello, at some length.",
            "u2": article("u2")["body"],
        }
    )
    inp.dead["invalid_utf8.jsonl"] = "invalid_utf8"
    inp.exact_offset["invalid_utf8.jsonl"] = len(utf[0]) + bad_line.index(b"\xe9")
    # an empty JSONL file: nothing in, nothing out, still listed as an input
    inp.articles("empty.jsonl", b"")
    # a corrupt gzip JSONL
    inp.articles("corrupt.jsonl.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + junk(3000))
    inp.dead["corrupt.jsonl.gz"] = "*"
    # a truncated gzip JSONL: the complete lines before the cut are kept
    rows = [article(f"t{i:04d}", " " + hashlib.sha1(b"%d" % i).hexdigest()) for i in range(3000)]
    whole = gzip.compress(jsonl(rows))
    inp.articles("truncated.jsonl.gz", whole[: len(whole) * 2 // 3])
    inp.partial["truncated.jsonl.gz"] = ("t", len(rows))
    inp.dead["truncated.jsonl.gz"] = "truncated_input"
    # a JSONL bomb: lines before the cap are kept
    bomb_rows = [article(f"b{i:05d}", " " + "pad " * 2000) for i in range(400)]
    inp.articles("bomb.jsonl.gz", gzip.compress(jsonl(bomb_rows)))
    inp.partial["bomb.jsonl.gz"] = ("b", len(bomb_rows))
    inp.dead["bomb.jsonl.gz"] = "decompression_bomb"

    out = root / "out"
    manifest = run_corpus(
        out,
        [f"books={inp.root}/books/*", f"articles={inp.root}/articles/*"],
        [
            f"read.max_decompressed_bytes={CAP}",
            "sources.1.options.text_field=body",
            "sources.1.options.id_field=uid",
        ],
    )
    return inp, out, manifest


@pytest.mark.job
def test_release_is_complete_and_accounted(bad_job):
    _, out, manifest = bad_job
    assert (out / "manifest.json").is_file()
    check_release(out, manifest)
    assert [s["name"] for s in manifest["stages"]] == ["read", "normalize", "dedup_paragraphs"]


def test_every_input_is_listed(bad_job):
    inp, _, manifest = bad_job
    listed = {Path(i["path"]).name for i in manifest["inputs"]}
    on_disk = {p.name for p in (inp.root).glob("*/*")}
    assert listed == on_disk


def test_every_good_book_is_a_document(bad_job):
    inp, out, manifest = bad_job
    docs = {
        d["url_or_path"]: d
        for d in check_release(out, manifest)["documents"]
        if d["source"] == "books"
    }
    assert set(docs) == set(inp.good_books)
    for name, text in inp.good_books.items():
        assert docs[name]["text"] == text, name


def test_every_good_article_is_a_document(bad_job):
    inp, out, manifest = bad_job
    docs = check_release(out, manifest)["documents"]
    by_uid: dict[str, dict] = {}
    for d in docs:
        if d["source"] == "articles":
            meta = json.loads(d["meta"])
            assert meta["record_id"] not in by_uid
            by_uid[meta["record_id"]] = d
    for uid, text in inp.good_articles.items():
        assert uid in by_uid, uid
        assert by_uid[uid]["text"] == text, uid
        assert json.loads(by_uid[uid]["meta"])["title"] == f"t-{uid}"


def test_partly_readable_files_keep_what_came_before_the_error(bad_job):
    inp, out, manifest = bad_job
    tables = check_release(out, manifest)
    for name, (prefix, total) in inp.partial.items():
        ids = sorted(
            json.loads(d["meta"])["record_id"]
            for d in tables["documents"]
            if d["url_or_path"] == name
        )
        assert 0 < len(ids) < total, name
        width = len(ids[0]) - 1
        assert ids == [f"{prefix}{i:0{width}d}" for i in range(len(ids))], (
            f"{name}: not a clean prefix"
        )
        [stat] = [i for i in manifest["inputs"] if Path(i["path"]).name == name]
        assert stat["records"] == len(ids) and stat["dead_letters"] == 1


def test_each_bad_part_is_a_dead_letter(bad_job):
    inp, out, manifest = bad_job
    dead = check_release(out, manifest)["dead_letters"]
    by_file: dict[str, list[dict]] = defaultdict(list)
    for row in dead:
        by_file[Path(row["file"]).name].append(row)
        assert Path(row["file"]).is_absolute() and Path(row["file"]).exists()
        assert row["error"], row
    assert set(by_file) == set(inp.dead)
    for name, error in inp.dead.items():
        [row] = by_file[name]
        if error != "*":
            assert row["error"] == error, (name, row)
        assert row["source"] == ("books" if "/books/" in row["file"] else "articles")
        if name in inp.exact_offset:
            assert row["offset"] == inp.exact_offset[name], (name, row)
        size = Path(row["file"]).stat().st_size
        limit = CAP if "bomb" in name else max(size * 200, CAP)
        assert 0 <= row["offset"] <= limit, (name, row)


def test_dead_letter_offsets_fall_after_the_last_kept_line(bad_job):
    inp, out, manifest = bad_job
    tables = check_release(out, manifest)
    for name in inp.partial:
        kept = [
            json.loads(d["meta"])["offset"] for d in tables["documents"] if d["url_or_path"] == name
        ]
        [row] = [r for r in tables["dead_letters"] if Path(r["file"]).name == name]
        assert row["offset"] > max(kept), name


def test_drops_and_per_input_counts(bad_job):
    inp, out, manifest = bad_job
    tables = check_release(out, manifest)
    stages = {s["name"]: s for s in manifest["stages"]}
    assert stages["read"]["dropped"] == {"empty": 1}
    assert stages["normalize"]["dropped"] == {"empty": 1}  # the control-characters-only book
    stats = {Path(i["path"]).name: i for i in manifest["inputs"]}
    assert stats["empty.jsonl"]["records"] == 0 and stats["empty.jsonl"]["dead_letters"] == 0
    assert stats["empty.txt"]["records"] == 1
    assert stats["malformed.jsonl"]["records"] == 2
    assert stats["invalid_utf8.jsonl"]["records"] == 3
    for name in inp.dead:
        assert stats[name]["dead_letters"] == 1, name
    assert len(tables["drops"]) == 2


@pytest.mark.job
def test_a_50mb_single_line_document(tmp_path):
    """One 50 MB JSON line between small ones: a document (or a counted drop), never a crash."""
    big_text = ("The quick brown fox jumps over the lazy dog. " * (50 * (1 << 20) // 45)).strip()
    assert len(big_text) > 50_000_000
    head = jsonl([{"id": "before", "text": "small one"}])
    data = head + json.dumps({"id": "huge", "text": big_text}).encode() + b"\n"
    data += jsonl([{"id": "after", "text": "small two"}])
    del big_text
    path = write(tmp_path / "in" / "huge.jsonl", data)
    del data
    out = tmp_path / "out"
    manifest = run_corpus(out, [f"articles={path}"])
    tables = check_release(out, manifest)
    docs = {json.loads(d["meta"])["record_id"]: d for d in tables["documents"]}
    assert {"before", "after"} <= set(docs)
    assert manifest["stages"][0]["in"] == 3
    assert not tables["dead_letters"]
    if "huge" in docs:
        assert len(docs["huge"]["text"]) > 50_000_000
        assert json.loads(docs["huge"]["meta"])["offset"] == len(head)
    else:
        assert len(tables["drops"]) == 1
