"""Fuzzing the readers: mutated real files through the read step, every reader and codec.

`python -m bench.fuzz --seconds 180` takes small real files from ../shared/corpus (a slice of a
book, a few JSON lines, the same rows as Parquet, a wiki dump's first pages, a few WARC records,
loose HTML, e-mails), mutates them (flipped, deleted, inserted, repeated and truncated bytes,
and a planted e-mail address), wraps them in each codec (before or after the mutation, so
both corrupt text and corrupt compressed streams are met) and reads each with ReadFiles, the
job's own DoFn. Every case must hold: nothing escapes the DoFn, the file's counts match what
it emitted (records = documents + drops, dead letters as emitted), no dead letter carries the
planted address, and the file reads within a few record budgets. It prints the cases run and
the problems found per reader. tests/transforms/sources/test_fuzz_readers.py runs the same
harness under hypothesis on the repository's own sample files.
"""

from __future__ import annotations

import argparse
import bz2
import functools
import gzip
import io
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from apache_beam.pvalue import TaggedOutput

from gristmill.transforms.sources import KINDS, reader_for
from gristmill.transforms.sources.html_text import EXTRACTORS
from gristmill.transforms.sources.limits import ReadLimits
from gristmill.transforms.sources.read import MatchedFile, ReadFiles

SECRET = b"planted.secret@example.org"
CODECS = ("plain", "gzip", "bz2", "zstd")
OPS = ("flip", "delete", "insert", "repeat", "truncate", "plant")
CASE_SECONDS = 10.0  # a small file may take a few record budgets, never more
LIMITS = ReadLimits(max_decompressed_bytes=8 << 20, max_record_bytes=1 << 20, record_seconds=2.0)


@dataclass(frozen=True)
class Seed:
    """A small real file and how to read it."""

    name: str  # reader label in the counts: books, jsonl, parquet, wiki, warc, html, mail
    kind: str  # source kind
    data: bytes
    options: dict = field(default_factory=dict)


def mutate(data: bytes, ops: list[tuple[str, float, int, int]]) -> bytes:
    """Apply (op, where as a fraction of the length, length, byte) edits in turn."""
    buf = bytearray(data)
    for op, where, length, byte in ops:
        at = int(where * len(buf)) if buf else 0
        if op == "flip" and buf:
            buf[min(at, len(buf) - 1)] ^= byte or 1
        elif op == "delete":
            del buf[at : at + length]
        elif op == "insert":
            buf[at:at] = bytes([byte]) * length
        elif op == "repeat":
            buf[at:at] = buf[at : at + length] * 3
        elif op == "truncate":
            del buf[at:]
        elif op == "plant":
            buf[at:at] = SECRET
    return bytes(buf)


def encode(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        return gzip.compress(data, mtime=0)
    if codec == "bz2":
        return bz2.compress(data)
    if codec == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


@dataclass
class Outcome:
    seconds: float
    documents: int = 0
    drops: int = 0
    dead: int = 0
    problems: list[str] = field(default_factory=list)


def run_case(seed: Seed, data: bytes, folder: Path, limits: ReadLimits = LIMITS) -> Outcome:
    """Read one mutated file with the job's ReadFiles DoFn and check what it emitted."""
    path = folder / f"case.{seed.name}"
    path.write_bytes(data)
    dofn = ReadFiles(seed.kind, reader_for(seed.kind), seed.options, limits)
    dofn.setup()
    started = time.perf_counter()
    out = Outcome(0.0)
    stats = []
    try:
        for item in dofn.process(MatchedFile(str(path), path.name, len(data))):
            tag, value = (item.tag, item.value) if isinstance(item, TaggedOutput) else ("", item)
            if tag == "dead":
                out.dead += 1
                if SECRET[:12] in value.detail.encode() or b"example.org" in value.detail.encode():
                    out.problems.append(f"dead letter holds input bytes: {value.error}")
            elif tag == "drops":
                out.drops += 1
            elif tag == "inputs":
                stats.append(value)
            else:
                out.documents += 1
    except Exception as err:  # the DoFn must never raise
        out.problems.append(f"raised {type(err).__name__}: {str(err)[:120]}")
    out.seconds = time.perf_counter() - started
    if out.seconds > CASE_SECONDS:
        out.problems.append(f"took {out.seconds:.1f} s")
    if len(stats) != 1:
        out.problems.append(f"{len(stats)} input stats")
    elif stats[0].records != out.documents + out.drops or stats[0].dead_letters != out.dead:
        out.problems.append(
            f"counts {stats[0].records}/{stats[0].dead_letters} != emitted "
            f"{out.documents + out.drops}/{out.dead}"
        )
    return out


def parquet_bytes(rows: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink, row_group_size=2)
    return sink.getvalue()


def _jsonl_rows(data: bytes, n: int, chars: int) -> list[dict]:
    rows = []
    for line in data.splitlines()[:n]:
        row = json.loads(line)
        rows.append({k: (v[:chars] if isinstance(v, str) else v) for k, v in row.items()})
    return rows


def _warc_head(data: bytes, records: int) -> bytes:
    starts = [i for i in range(len(data)) if data.startswith(b"WARC/1.", i)][: records + 1]
    return data[: starts[-1]] if len(starts) > records else data


@functools.lru_cache(maxsize=64)
def _head(path: Path, n: int) -> bytes:
    """The first n bytes of a file, decompressed by its name's suffix."""
    if path.suffix == ".zst":
        with path.open("rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as r:
            return r.read(n)
    opener = {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix, open)
    with opener(path, "rb") as fh:
        return fh.read(n)


def seeds_from(
    book: Path, articles: Path, wiki: Path, warc: Path, html: Path, mails: list[Path]
) -> list[Seed]:
    """One seed per reader and format, each a few KB, from real files of each kind."""
    rows = _jsonl_rows(_head(articles, 1 << 20), 4, 1500)
    wiki_data = _head(wiki, 1 << 20)
    if len(wiki_data) > 12000:  # the first pages, closed
        wiki_data = wiki_data[: wiki_data.index(b"</page>", 8000) + 7] + b"\n</mediawiki>\n"
    warc_data = _head(warc, 1 << 22)
    return [
        Seed("books", "books", book.read_bytes()[:6000]),
        Seed("jsonl", "articles", b"".join(json.dumps(r).encode() + b"\n" for r in rows)),
        Seed("parquet", "articles", parquet_bytes(rows), {"format": "parquet"}),
        Seed("wiki", "wiki", wiki_data),
        Seed("warc", "web", _warc_head(warc_data, 4), {"extractor": "trafilatura"}),
        Seed("html", "web", html.read_bytes()[:8000], {"extractor": "resiliparse"}),
        Seed("mail", "mail", b"".join(m.read_bytes() for m in mails)),
    ]


def repo_seeds(repo: Path) -> list[Seed]:
    """Seeds from the repository's sample/ and tests/fixtures (the test suite's)."""
    mail = repo / "tests" / "fixtures" / "mail"
    return seeds_from(
        repo / "sample" / "books" / "sonnets.txt",
        repo / "sample" / "articles" / "sotu-sample.jsonl.zst",
        repo / "tests" / "fixtures" / "wiki" / "export.xml",
        repo / "sample" / "web" / "udhr.warc.gz",
        repo / "sample" / "web" / "udhr-eng.html",
        [mail / "three.mbox"],
    )


def corpus_seeds(corpus: Path, rng: random.Random) -> list[Seed]:
    """Seeds from ../shared/corpus, a different file of each kind on each call."""
    books = sorted((corpus / "books").glob("*.txt"))
    mails = sorted((corpus / "email").glob("*/*/*.txt"))
    warcs = sorted((corpus / "web").glob("*.warc*"))
    pages = sorted((corpus / "extraction" / "aeb-html").glob("*"))
    return seeds_from(
        rng.choice(books),
        corpus / "articles" / "sotu.jsonl",
        corpus / "articles" / "enwiki-sample.xml.bz2",
        rng.choice(warcs),
        rng.choice(pages),
        [rng.choice(mails)],
    )


def random_ops(rng: random.Random) -> list[tuple[str, float, int, int]]:
    return [
        (rng.choice(OPS), rng.random(), rng.choice((1, 2, 7, 64, 4096)), rng.randrange(256))
        for _ in range(rng.randrange(1, 6))
    ]


def fuzz(corpus: Path, seconds: float, seed: int, log: Callable[[str], None] = print) -> Counter:
    """Run cases until `seconds` have passed; returns cases, problems and dead letters per reader."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as tmp:
        while time.monotonic() < deadline:
            for s in corpus_seeds(corpus, rng):
                if s.kind == "web":  # both extractors, the default (trafilatura) included
                    s = replace(s, options={"extractor": rng.choice(EXTRACTORS)})
                codec, after = rng.choice(CODECS), rng.random() < 0.5
                ops = random_ops(rng)
                data = (
                    mutate(encode(s.data, codec), ops)
                    if after
                    else encode(mutate(s.data, ops), codec)
                )
                out = run_case(s, data, Path(tmp))
                counts[f"{s.name} cases"] += 1
                counts[f"{s.name} dead letters"] += out.dead
                counts[f"{s.name} slowest ms"] = max(
                    counts[f"{s.name} slowest ms"], int(out.seconds * 1000)
                )
                for problem in out.problems:
                    counts[f"{s.name} problems"] += 1
                    log(f"{s.name} {codec} {'after' if after else 'before'} {ops}: {problem}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", default=str(Path(__file__).parent.parent.parent / "shared" / "corpus")
    )
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = fuzz(Path(args.corpus), args.seconds, args.seed)
    readers = sorted({k.split(" ", 1)[0] for k in counts})
    print(f"{'reader':10} {'cases':>7} {'problems':>9} {'dead letters':>13} {'slowest ms':>11}")
    for r in readers:
        print(
            f"{r:10} {counts[f'{r} cases']:7} {counts[f'{r} problems']:9} "
            f"{counts[f'{r} dead letters']:13} {counts[f'{r} slowest ms']:11}"
        )
    print(f"total cases: {sum(counts[f'{r} cases'] for r in readers)}; kinds: {', '.join(KINDS)}")


if __name__ == "__main__":
    main()
