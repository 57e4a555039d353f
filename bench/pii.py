"""Personal data: recall, false positives, real mail and speed of the pii engine, beside presidio.

    python -m bench.pii [--corpus ../shared/corpus] [--quick]

Side by side in one run, on the real corpus:

- recall: known values of every supported type, in varied formats (phone styles, spaced and
  dashed cards, IPv6 forms, spaced IBANs, ...), inserted into real sentences from the SOTU
  addresses and the books; `fast` must find >= 0.98 of the pattern values. Person names are
  inserted with a few natural frames ("X said", "according to X"); `full` must find >= 0.90 of
  them and no fewer than presidio's default AnalyzerEngine on the same texts;
- false positives on the books (no personal data): findings per MB by type, beside presidio's
  default engine on the same excerpt (names of characters and places are real NER findings,
  shown apart from pattern findings);
- SpamAssassin mail bodies (read with gristmill's mail reader): every address that
  `[\\w.+-]+@[\\w-]+\\.[\\w.]+` finds must be scrubbed; findings per type;
- speed, MB per CPU-second on the same English text (SOTU and book excerpts cut into ~5 KB
  documents): `fast` vs presidio's pattern-only AnalyzerEngine (the six pattern recognizers,
  spaCy NLP engine, entities restricted), `full` vs presidio's default AnalyzerEngine (spaCy
  `en_core_web_sm`, all recognizers); presidio runs on a small subset (sizes printed), ours on
  the same subset for the ratio and on a larger set for the absolute figure. Measured
  interleaved, best of rounds, under whatever else runs on the machine.

`main(argv)` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import time
from pathlib import Path

from bench.pii_data import (
    FIRST,
    FRAMES,
    LAST,
    PATTERN_TYPES,
    chunks,
    insert,
    read_docs,
    sentences,
    values,
)
from bench.pii_presidio import presidio_engines, presidio_spans
from bench.tables import table

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
# -- findings and timing --------------------------------------------------------------------------


def covered(spans: list[tuple[int, int, str]], start: int, end: int, kinds) -> bool:
    return any(s <= start and end <= e and (kinds is None or k in kinds) for s, e, k in spans)


def spans_of(hits) -> list[tuple[int, int, str]]:
    return [(h.start, h.end, h.entity_type) for h in hits]


def cpu(fn) -> tuple[float, float, object]:
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c, time.perf_counter() - w, out


# -- measurements ---------------------------------------------------------------------------------


def _pattern_cases(pool: list[str], vals: dict[str, list[str]], rng: random.Random) -> list:
    """(type, text, start, end) of each value put into the next sentence of `pool`; a value's
    `prefix|` part is context before it, not part of the value."""
    cases = []
    for k, (kind, v) in enumerate((kind, v) for kind, items in vals.items() for v in items):
        prefix, _, value = v.rpartition("|")
        text, at = insert(pool[k], prefix + value, rng)
        cases.append((kind, text, at + len(prefix), at + len(prefix) + len(value)))
    return cases


def _pattern_recall(fast, presidio_default, cases: list) -> list[dict]:
    """Recall of the pattern values by type and over all of them, ours beside presidio's."""
    texts = [c[1] for c in cases]
    fast_hits = fast.scan_many(texts, ["en"] * len(texts), ner=False)
    base = [presidio_spans(presidio_default, t) for t in texts]
    rows = []
    for kind in PATTERN_TYPES:
        idx = [i for i, c in enumerate(cases) if c[0] == kind]
        ours = sum(
            covered(spans_of(fast_hits[i].hits), cases[i][2], cases[i][3], {kind}) for i in idx
        )
        theirs = sum(covered(base[i], cases[i][2], cases[i][3], {kind}) for i in idx)
        rows.append(
            {
                "set": kind,
                "values": len(idx),
                "fast": round(ours / len(idx), 3),
                "presidio default": round(theirs / len(idx), 3),
            }
        )
    total = len(cases)
    ours_all = sum(
        covered(spans_of(fast_hits[i].hits), c[2], c[3], {c[0]}) for i, c in enumerate(cases)
    )
    theirs_all = sum(covered(base[i], c[2], c[3], {c[0]}) for i, c in enumerate(cases))
    rows.append(
        {
            "set": "all pattern values",
            "values": total,
            "fast": round(ours_all / total, 3),
            "presidio default": round(theirs_all / total, 3),
        }
    )
    return rows


def _name_recall(full, presidio_default, pool: list[str], rng: random.Random) -> tuple:
    """A made-up name framed into each sentence; the recall row, and how many names each of
    ours (`full`) and presidio found."""
    name_cases = []
    for s in pool:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        frame = rng.choice(FRAMES)
        body = s[0].lower() + s[1:] if frame.startswith("According") else s
        text = frame.format(name=name, s=body)
        at = text.index(name)
        name_cases.append((text, at, at + len(name)))
    texts = [c[0] for c in name_cases]
    full_hits = full.scan_many(texts, ["en"] * len(texts))
    ours = sum(
        covered(spans_of(h.hits), s, e, {"PERSON"})
        for h, (_, s, e) in zip(full_hits, name_cases, strict=True)
    )
    theirs = sum(
        covered(presidio_spans(presidio_default, t), s, e, {"PERSON"}) for t, s, e in name_cases
    )
    row = {
        "set": "PERSON (inserted names)",
        "values": len(name_cases),
        "full": round(ours / len(name_cases), 3),
        "presidio default": round(theirs / len(name_cases), 3),
    }
    return row, ours, theirs


def measure_recall(
    fast, full, presidio_default, prose: list[str], rng: random.Random, quick: bool
) -> dict:
    vals = values(rng)
    n_names = 60 if quick else 150
    pool = sentences(prose, rng, 6 * 60 + n_names)
    cases = _pattern_cases(pool, vals, rng)
    rows = _pattern_recall(fast, presidio_default, cases)
    k = len(cases)
    row, ours, theirs = _name_recall(full, presidio_default, pool[k : k + n_names], rng)
    rows.append(row)
    return {"rows": rows, "names_full": ours, "names_presidio": theirs}


def measure_false_positives(fast, full, presidio_default, books: list[str], quick: bool) -> dict:
    excerpt = chunks(books, 5000, 40_000 if quick else 120_000)
    mb_small = sum(len(t.encode()) for t in excerpt) / 1e6
    everything = books
    mb_all = sum(len(t.encode()) for t in everything) / 1e6

    def per_mb(spans_lists, mb) -> dict[str, float]:
        counts: dict[str, int] = {}
        for spans in spans_lists:
            for _, _, kind in spans:
                counts[kind] = counts.get(kind, 0) + 1
        return {k: round(v / mb, 2) for k, v in sorted(counts.items())}

    fast_all = fast.scan_many(everything, ["en"] * len(everything), ner=False)
    out = {
        "books_mb": round(mb_all, 2),
        "excerpt_mb": round(mb_small, 3),
        "fast, all books": per_mb([spans_of(s.hits) for s in fast_all], mb_all),
        "fast, excerpt": per_mb(
            [spans_of(s.hits) for s in fast.scan_many(excerpt, ["en"] * len(excerpt), ner=False)],
            mb_small,
        ),
        "full, excerpt": per_mb(
            [spans_of(s.hits) for s in full.scan_many(excerpt, ["en"] * len(excerpt))], mb_small
        ),
        "presidio default, excerpt": per_mb(
            [presidio_spans(presidio_default, t) for t in excerpt], mb_small
        ),
    }
    return out


def measure_mail(fast, mail: list[str]) -> dict:
    from gristmill.transforms.pii.scrub import Scrubber, operator_config

    scrubber = Scrubber({}, operator_config("replace", {}, b"bench"))
    fast.clear_caches()
    seconds, _, scans = cpu(lambda: fast.scan_many(mail, ["en"] * len(mail), ner=False))
    addresses = missed = 0
    per_type: dict[str, int] = {}
    missed_domains: dict[str, int] = {}
    for text, scan in zip(mail, scans, strict=True):
        for h in scan.hits:
            per_type[h.entity_type] = per_type.get(h.entity_type, 0) + 1
        out, _ = scrubber.scrub(text, scan.hits)
        for m in ADDRESS.finditer(text):
            address = m.group().rstrip(".")
            addresses += 1
            if address in out:
                missed += 1
                suffix = address.rsplit(".", 1)[-1].lower()
                missed_domains[suffix] = missed_domains.get(suffix, 0) + 1
    mb = sum(len(t.encode()) for t in mail) / 1e6
    return {
        "messages": len(mail),
        "mb": round(mb, 2),
        "addresses": addresses,
        "scrubbed": addresses - missed,
        "left": missed,
        "left_by_tld": dict(sorted(missed_domains.items(), key=lambda kv: -kv[1])[:10]),
        "fast_mb_per_cpu_s": round(mb / seconds, 3),
        "findings_per_type": dict(sorted(per_type.items())),
        "findings_per_mb": {k: round(v / mb, 1) for k, v in sorted(per_type.items())},
    }


def measure_speed(
    fast, full, presidio_default, presidio_patterns, english: list[str], quick: bool
) -> dict:
    small = english[: 8 if quick else 12]  # ~5 KB documents
    big = english
    mb_small = sum(len(t.encode()) for t in small) / 1e6
    mb_big = sum(len(t.encode()) for t in big) / 1e6
    mb_ner = sum(len(t.encode()) for t in big[:80]) / 1e6
    best: dict[str, tuple[float, float]] = {}

    def run(name: str, fn, mb: float, reps: int = 1) -> None:
        total_c = total_w = 0.0
        for _ in range(reps):
            fast.clear_caches()
            c, w, _ = cpu(fn)
            total_c += c
            total_w += w
        rate = (mb * reps / total_c, mb * reps / total_w)
        if name not in best or rate[0] > best[name][0]:
            best[name] = rate

    en = lambda texts: ["en"] * len(texts)  # noqa: E731
    for _ in range(2):  # interleaved rounds; best of the rounds
        run(
            "presidio patterns (small)",
            lambda: [
                presidio_patterns.analyze(t, "en", entities=list(PATTERN_TYPES)) for t in small
            ],
            mb_small,
        )
        run("fast (small)", lambda: fast.scan_many(small, en(small), ner=False), mb_small, reps=20)
        run(
            "presidio default (small)",
            lambda: [presidio_default.analyze(t, "en") for t in small],
            mb_small,
        )
        run("full (small)", lambda: full.scan_many(small, en(small)), mb_small, reps=2)
    run("fast (large)", lambda: fast.scan_many(big, en(big), ner=False), mb_big)
    run("full (large)", lambda: full.scan_many(big[:80], en(big[:80])), mb_ner)
    sizes = {"small": mb_small, "large": mb_big}
    rows = [
        {
            "engine": name,
            "mb": round(mb_ner if name == "full (large)" else sizes[name.split("(")[1][:-1]], 3),
            "kb_per_cpu_s": round(c * 1000, 1),
            "kb_per_wall_s": round(w * 1000, 1),
        }
        for name, (c, w) in best.items()
    ]
    ratio_fast = best["fast (small)"][0] / best["presidio patterns (small)"][0]
    ratio_full = best["full (small)"][0] / best["presidio default (small)"][0]
    return {
        "rows": rows,
        "fast_vs_presidio_patterns": round(ratio_fast, 1),
        "full_vs_presidio_default": round(ratio_full, 1),
        "fast_mb_per_cpu_s": round(best["fast (large)"][0], 2),
        "full_mb_per_cpu_s": round(best["full (large)"][0], 3),
        "subset_mb": round(mb_small, 3),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--quick", action="store_true", help="smaller sets (a smoke run)")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    return parser


def _report_speed(engines: tuple, english: list[str], quick: bool) -> dict:
    speed = measure_speed(*engines, english, quick)
    print(
        table(
            speed["rows"],
            title=f"Speed, KB per CPU-second (presidio on a {speed['subset_mb']} MB subset; ours on it and on more)",
        )
    )
    print(f"fast / presidio pattern-only: {speed['fast_vs_presidio_patterns']}x (target >= 100x); "
          f"fast {speed['fast_mb_per_cpu_s']} MB/s/core (target >= 2); "
          f"full / presidio default: {speed['full_vs_presidio_default']}x (target >= 8x)\n")  # fmt: skip
    return speed


def _report_recall(engines: tuple, prose: list[str], rng: random.Random, quick: bool) -> dict:
    fast, full, presidio_default, _ = engines
    recall = measure_recall(fast, full, presidio_default, prose, rng, quick)
    print(
        table(
            recall["rows"],
            title="Recall of inserted values (fast: >= 0.98 of pattern values; full: >= 0.90 of names)",
        )
    )
    print()
    return recall


def _report_false_positives(engines: tuple, books: list[str], quick: bool) -> dict:
    fast, full, presidio_default, _ = engines
    fp = measure_false_positives(fast, full, presidio_default, books, quick)
    print(table([{"engine": k, **v} for k, v in fp.items() if isinstance(v, dict)],
                title=f"Findings per MB on the books ({fp['books_mb']} MB; excerpt {fp['excerpt_mb']} MB) — no personal data; PERSON/LOCATION are characters and places"))  # fmt: skip
    print()
    return fp


def _report_mail(fast, mail: list[str]) -> dict:
    m = measure_mail(fast, mail)
    print(
        f"SpamAssassin bodies: {m['messages']} messages, {m['mb']} MB (fast: {m['fast_mb_per_cpu_s']} MB/s/core); addresses {m['addresses']}, scrubbed {m['scrubbed']}, left {m['left']} {m['left_by_tld']}"
    )
    print(
        table(
            [
                {"type": k, "findings": v, "per_mb": m["findings_per_mb"][k]}
                for k, v in m["findings_per_type"].items()
            ],
            title="Findings per type (fast)",
        )
    )
    return m


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(
            f"bench/pii: {corpus} not found; the benchmark reads the real corpus there. Nothing measured."
        )
        return {}
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    from gristmill.transforms.pii.engine import EngineSettings, PiiEngine, offline_tldextract

    offline_tldextract()
    rng = random.Random(2024)
    sotu = read_docs(corpus, "articles", ["articles/sotu.jsonl"])
    books = read_docs(corpus, "books", ["books/pg*.txt"])
    mail = read_docs(corpus, "mail", ["email/spamassassin/*/*.txt"])
    if args.quick:
        mail = mail[::8]
    fast = PiiEngine(EngineSettings(), with_ner=False)
    full = PiiEngine(EngineSettings(), with_ner=True)
    engines = (fast, full, *presidio_engines())  # fast, full, presidio default, patterns
    results: dict = {
        "corpus": str(corpus),
        "note": "measured under contention with other jobs on a 2-core machine",
    }
    english = chunks(
        [t for pair in zip(sotu[::7], books, strict=False) for t in pair],
        5000,
        600_000 if args.quick else 2_000_000,
    )
    results["speed"] = _report_speed(engines, english, args.quick)
    results["recall"] = _report_recall(engines, sotu + books, rng, args.quick)
    results["false_positives"] = _report_false_positives(engines, books, args.quick)
    results["mail"] = _report_mail(fast, mail)
    if args.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
