"""Precision and recall of each entity type, fast and full mode, on a labelled sample.

    python -m bench.pii_precision [--corpus ../shared/corpus] [--per-type 100] [--names 200]
                                  [--places 100] [--write]

The sample (bench/pii_precision_data.py) is real text whose personal data is all known:
passages of the SOTU addresses and books with one generated value each (pattern types), and
sentences without names or places with one inserted name or place each (PERSON, LOCATION).

- **recall** of a type: the share of its inserted values that a finding of that type covers;
- **precision** of a type: its findings on an inserted value of that type, over all its
  findings in the texts labelled for it (every text for pattern types, the name sentences for
  PERSON and LOCATION); a finding that overlaps the value counts as true;
- **false per MB**: its false findings per MB of those texts, which does not depend on how
  densely values were inserted (precision does: one value per ~1.5 KB passage here);
- **false on other values**: false findings on an inserted value of another type (a phone
  number read in an IBAN's digits): wrong type, but the value is scrubbed all the same.

`--write` stores the figures in transforms/pii/measured.json, which the privacy report quotes
for the run's mode. Counts only: no value and no context is printed. `main(argv)` returns the
figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import random
import subprocess
import time
from pathlib import Path

from bench.pii import DEFAULT_CORPUS, covered, spans_of
from bench.pii_data import read_docs
from bench.pii_precision_data import PASSAGE_CHARS, Case, name_cases, number_cases
from bench.tables import table

MEASURED = Path(__file__).resolve().parents[1] / "transforms" / "pii" / "measured.json"
NER_TYPES = ("PERSON", "LOCATION")
SAMPLE = {
    "numbers": (
        f"real passages of ~{PASSAGE_CHARS} characters of the State of the Union addresses and "
        "Gutenberg books (their own years, amounts and verse numbers kept), one generated value "
        "inserted in each; the base text holds no pattern-type personal data, so every pattern "
        "finding off an inserted value is false"
    ),
    "names": (
        "real sentences holding no name or place of their own (no capitalised word but a "
        "stop word first and 'I'), one made-up name or real place inserted in each; every "
        "finding off it is false. Capitalised non-names (Congress, Union) are not in this sample"
    ),
}


def _labelled(case: Case, entity_type: str) -> bool:
    """Whether the case's text is labelled for `entity_type` (names in passages are not)."""
    return case[0] == "names" or entity_type not in NER_TYPES


def score(cases: list[Case], scans: list, types: tuple[str, ...]) -> dict[str, dict]:
    """Per entity type: values, recall, findings, precision, false findings per MB."""
    out = {
        t: dict.fromkeys(("values", "found", "true", "false", "on_value", "bytes"), 0)
        for t in types
    }
    for case, scan in zip(cases, scans, strict=True):
        where, kind, text, start, end = case
        spans = spans_of(scan.hits)
        if kind in out:
            out[kind]["values"] += 1
            out[kind]["found"] += covered(spans, start, end, {kind})
        for t, row in out.items():
            if _labelled(case, t):
                row["bytes"] += len(text.encode())
        for s, e, t in spans:
            if t in out and _labelled(case, t):
                on_value = s < end and start < e
                out[t]["true" if t == kind and on_value else "false"] += 1
                out[t]["on_value"] += t != kind and on_value
    figures = {}
    for t, row in out.items():
        findings = row["true"] + row["false"]
        figures[t] = {
            "recall": round(row["found"] / row["values"], 4) if row["values"] else None,
            "precision": round(row["true"] / findings, 4) if findings else None,
            "values": row["values"],
            "findings": findings,
            "false_on_other_values": row["on_value"],
            "false_per_mb": round(row["false"] / (row["bytes"] / 1e6), 3) if row["bytes"] else None,
            "sample_mb": round(row["bytes"] / 1e6, 3),
        }
    return figures


def measure(cases: list[Case], mode: str) -> tuple[dict[str, dict], float]:
    """The figures of one mode, and its CPU seconds."""
    from gristmill.transforms.pii.engine import PATTERN_ENTITIES, EngineSettings, PiiEngine

    full = mode == "full"
    engine = PiiEngine(EngineSettings(), with_ner=full)
    texts = [c[2] for c in cases]
    t = time.process_time()
    scans = engine.scan_many(texts, ["en"] * len(texts), ner=full)
    seconds = time.process_time() - t
    types = PATTERN_ENTITIES + (NER_TYPES if full else ())
    return score(cases, scans, types), seconds


def provenance() -> dict[str, str]:
    """The commit measured (with `-dirty` for uncommitted changes) and the date."""
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=True, cwd=MEASURED.parent,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"commit": commit, "date": datetime.date.today().isoformat()}


def rows(figures: dict[str, dict]) -> list[dict]:
    """One table row per entity type, the modes side by side."""
    out = []
    for t in figures.get("full", figures.get("fast", {})):
        row: dict = {"type": t}
        for mode, by_type in figures.items():
            f = by_type.get(t)
            if f is None:
                continue
            row["values"] = f["values"]
            row[f"{mode} recall"] = f["recall"]
            row[f"{mode} precision"] = f["precision"]
            row[f"{mode} false/MB"] = f["false_per_mb"]
            row[f"{mode} false on values"] = f["false_on_other_values"]
        out.append(row)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--per-type", type=int, default=100, help="passages per pattern kind")
    parser.add_argument("--names", type=int, default=200, help="sentences with a name")
    parser.add_argument("--places", type=int, default=100, help="sentences with a place")
    parser.add_argument("--modes", nargs="+", default=["fast", "full"])
    parser.add_argument("--write", action="store_true", help=f"store the figures in {MEASURED}")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"bench/pii_precision: {corpus} not found; nothing measured.")
        return {}
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    rng = random.Random(1616)
    texts = read_docs(corpus, "articles", ["articles/sotu.jsonl"]) + read_docs(
        corpus, "books", ["books/pg*.txt"]
    )
    cases = number_cases(texts, args.per_type, rng)
    cases += name_cases(texts, args.names, args.places, rng)
    figures, seconds = {}, {}
    for mode in args.modes:
        figures[mode], seconds[mode] = measure(cases, mode)
    mb = sum(len(c[2].encode()) for c in cases) / 1e6
    print(table(rows(figures), title=f"Precision and recall per type ({len(cases)} texts, {mb:.2f} MB)"))  # fmt: skip
    print("CPU seconds: " + ", ".join(f"{m} {s:.1f}" for m, s in seconds.items()))
    result = {
        "measured_by": "bench/pii_precision.py",
        **provenance(),
        "sample": {**SAMPLE, "texts": len(cases), "mb": round(mb, 3)},
        "modes": figures,
    }
    if args.write:
        MEASURED.write_text(json.dumps(result, indent=2) + "\n")
        print(f"written: {MEASURED}")
    return result


if __name__ == "__main__":
    main()
