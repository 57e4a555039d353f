"""Repeated-paragraph removal on the real SpamAssassin mail: the share of text removed and twenty
examples of what went. Run by hand:

    .venv/bin/python -m bench.paragraphs [--corpus ../shared/corpus] [--min-documents 3]

The mail is read and normalized as the job does, goes through dedup_exact and dedup_near (as in
the job, the stage sees only their survivors), then through the stage on Beam's FnApiRunner.
Examples: the 10 units found in the most documents and 10 others drawn with a fixed seed, each
its first 80 characters with e-mail addresses, URLs and digit runs masked, and the number of
documents it occurs in (recounted here from the texts; every removed unit must occur in at
least `min_documents`, which is checked).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from bench.stages import _read
from gristmill.schemas.records import Document
from gristmill.transforms.accounting import Accounted, text_bytes
from gristmill.transforms.dedup import exact, near, paragraphs
from gristmill.transforms.dedup.keyed import EDITS, cut_spans
from gristmill.transforms.dedup.paragraphs_params import ParagraphsParams
from gristmill.transforms.dedup.paragraphs_text import split_units, unit_hash
from gristmill.transforms.dedup.params import defaults
from gristmill.transforms.dedup.survivors import snippet
from gristmill.transforms.normalize import NormalizeParams, normalize_text
from gristmill.transforms.stage import StageContext

ROOT = Path(__file__).resolve().parent.parent
GOT: dict[str, list] = {}


def _keep(item, key: str) -> None:
    GOT.setdefault(key, []).append(item)


def _docs(corpus: Path) -> list[Document]:
    _, docs = _read(corpus, "mail", "mail", ["email/spamassassin/*/*.txt"])
    params = NormalizeParams()
    out = [dataclasses.replace(d, text=normalize_text(d.text, params)) for d in docs]
    return [d for d in out if d.text]


def _run(docs: list[Document], params: ParagraphsParams, tmp: str) -> None:
    """dedup_exact and dedup_near, then the stage; what reached it, its drops and edits."""
    dedup = defaults()
    dedup["index"]["enabled"] = False
    kinds = {"mail": "mail"}
    with beam.Pipeline(runner=FnApiRunner()) as p:
        kept = p | beam.Create(docs)
        for stage in (exact.STAGE, near.STAGE):
            ctx = StageContext(stage.name, tmp, 0, kinds)
            kept = (kept | stage.name >> Accounted(stage.name, stage.build(dedup, ctx))).kept
        ctx = StageContext(paragraphs.NAME, tmp, 0, kinds, {"dedup": dedup})
        keys = kept | "Keys" >> paragraphs.keys(params, ctx)
        _, drops, extras = keys | "OnKeys" >> paragraphs.on_keys(params, ctx)
        for name, pcoll in (("in", kept), ("drops", drops), ("edits", extras[EDITS])):
            GOT[name] = []
            pcoll | f"Keep/{name}" >> beam.Map(_keep, name)


def _removed_units(doc: Document, spans: tuple[int, ...], unit: str) -> list[str]:
    """The units of `doc` that lie inside the cut spans."""
    units, seps = split_units(doc.text, unit)
    out, at = [], 0
    cuts = list(zip(spans[0::2], spans[1::2], strict=True))
    for sep, text in zip(seps, units, strict=True):
        start = at + len(sep)
        end = start + len(text)
        if text and any(a <= start and end <= b for a, b in cuts):
            out.append(text)
        at = end
    return out


def _report(params: ParagraphsParams, seconds: float) -> None:
    docs = {d.id: d for d in GOT["in"]}
    edits = {e.id: e.spans for e in GOT["edits"]}
    dropped = {d.id for d in GOT["drops"]}
    total = sum(text_bytes(d.text) for d in docs.values())
    counts: Counter = Counter()
    for d in docs.values():
        counts.update({unit_hash(u, params.min_chars) for u in split_units(d.text, params.unit)[0]})
    removed: dict[int, str] = {}
    for doc_id, spans in edits.items():
        for text in _removed_units(docs[doc_id], spans, params.unit):
            removed.setdefault(unit_hash(text, params.min_chars), text)
    cut_bytes = sum(
        text_bytes(docs[i].text) - text_bytes(cut_spans(docs[i].text, s)) for i, s in edits.items()
    )
    drop_bytes = sum(text_bytes(docs[i].text) for i in dropped)
    below = [h for h in removed if counts[h] < params.min_documents]
    print(f"mail documents reaching the stage (after exact and near dedup): {len(docs):,}")
    print(f"text bytes reaching it: {total:,}; stage wall time {seconds:.1f} s")
    print(f"edited: {len(edits):,} documents, {cut_bytes:,} bytes ({cut_bytes / total:.2%})")
    print(
        f"dropped (mostly_repeated): {len(dropped):,} documents, {drop_bytes:,} bytes "
        f"({drop_bytes / total:.2%})"
    )
    print(f"removed in all: {(cut_bytes + drop_bytes) / total:.2%} of the text bytes")
    print(
        f"distinct units removed: {len(removed):,}; removed though in fewer than "
        f"{params.min_documents} documents: {len(below)}"
    )
    ranked = sorted(removed, key=lambda h: (-counts[h], h))
    rest = ranked[10:]
    picks = ranked[:10] + sorted(
        random.Random(0).sample(rest, min(10, len(rest))), key=lambda h: (-counts[h], h)
    )
    print("\ndocuments | removed unit (first 80 characters, e-mails/URLs/digit runs masked)")
    for h in picks:
        print(f"{counts[h]:>9} | {snippet(removed[h])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--min-documents", type=int, default=ParagraphsParams().min_documents)
    ap.add_argument("--unit", default="paragraph", choices=("paragraph", "line"))
    args = ap.parse_args()
    params = dataclasses.replace(
        ParagraphsParams(), min_documents=args.min_documents, unit=args.unit
    )
    docs = _docs(Path(args.corpus))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        _run(docs, params, tmp)
    _report(params, time.perf_counter() - started)


if __name__ == "__main__":  # run from the importable module: the sink's function is pickled by name
    from bench.paragraphs import main as run

    run()
