"""One-core throughput of each stage of the corpus job, on its real input."""

from __future__ import annotations

import time
from pathlib import Path

from gristmill.schemas.records import Document
from gristmill.transforms.normalize import NormalizeParams, normalize_text
from gristmill.transforms.sources import reader_for
from gristmill.transforms.sources.read import match_inputs
from gristmill.transforms.sources.reader_api import RawRecord, ReadContext
from gristmill.transforms.sources.streams import InputFile

SETS = [
    ("books", "books", ["books/*.txt", "books/shakespeare/*.txt"]),
    ("articles", "articles", ["articles/sotu.jsonl"]),
    ("wiki", "wiki", ["articles/enwiki-sample.xml.bz2"]),
    ("web", "web", ["web/*.warc*"]),
    ("mail", "mail", ["email/spamassassin/*/*.txt"]),
]


def _read(corpus: Path, name: str, kind: str, patterns: list[str]) -> tuple[dict, list[Document]]:
    files = match_inputs([str(corpus / p) for p in patterns])
    reader = reader_for(kind)
    docs: list[Document] = []
    raw_bytes = 0
    started = time.perf_counter()
    for f in files:
        ctx = ReadContext(name, f.path, f.relpath, {}, 256 << 20, "replace")
        stream = InputFile(f.path, 8 << 30)
        try:
            for out in reader(stream, ctx):
                if isinstance(out, RawRecord) and not out.drop:
                    docs.append(Document(f"{f.relpath}:{out.offset}", name, f.relpath, out.text))
        except Exception:
            pass
        raw_bytes += stream.finish()[0]
    elapsed = time.perf_counter() - started
    row = {
        "stage": f"read/{kind}",
        "input": f"{len(files)} files",
        "docs": len(docs),
        "mb": round(raw_bytes / 1e6, 2),
        "seconds": round(elapsed, 2),
        "mb_per_s_per_core": round(raw_bytes / 1e6 / elapsed, 2),
        "note": "raw input bytes",
    }
    return row, docs


def _mb(docs: list[Document]) -> float:
    return sum(len(d.text.encode("utf-8")) for d in docs) / 1e6


def measure_stages(corpus: Path) -> list[dict]:
    rows = []
    docs: list[Document] = []
    for name, kind, patterns in SETS:
        row, got = _read(corpus, name, kind, patterns)
        rows.append(row)
        docs.extend(got)

    params = NormalizeParams()
    mb = _mb(docs)
    started = time.perf_counter()
    for d in docs:
        d.text = normalize_text(d.text, params)
    elapsed = time.perf_counter() - started
    rows.append(
        {
            "stage": "normalize",
            "input": "all read docs",
            "docs": len(docs),
            "mb": round(mb, 2),
            "seconds": round(elapsed, 2),
            "mb_per_s_per_core": round(mb / elapsed, 2),
            "note": "text bytes",
        }
    )

    from gristmill.transforms.quality.stage import QualityFilter, QualityParams

    kinds = {name: kind for name, kind, _ in SETS}
    qf = QualityFilter(QualityParams(), kinds)
    mb = _mb(docs)
    kept = 0
    started = time.perf_counter()
    for d in docs:
        if qf.check(d) is None:
            kept += 1
    elapsed = time.perf_counter() - started
    rows.append(
        {
            "stage": "quality",
            "input": "normalized docs",
            "docs": len(docs),
            "mb": round(mb, 2),
            "seconds": round(elapsed, 2),
            "mb_per_s_per_core": round(mb / elapsed, 2),
            "note": f"{kept} kept",
        }
    )
    return rows
