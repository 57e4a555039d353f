"""Recall and precision of the pii recognizers for numbers, beside presidio's default engine.

    python -m bench.pii_recall [--corpus ../shared/corpus] [--per-type 200] [--head DIR]

Run by hand (about two minutes). In one run, on the real corpus:

- **recall**: generated values (bench/pii_recall_data.py: every card scheme including 2-series
  Mastercards, NANP numbers with any area code in nine formats, international numbers, SSNs,
  IBANs, IPs, e-mails) inserted into real sentences of the books and the State of the Union
  addresses, and into real SpamAssassin mail; a value counts as found when a finding of its type
  covers it. Ours (`fast` mode, the defaults) beside presidio's default AnalyzerEngine on every
  fourth of the same texts (`--presidio-every`: it scans a few KB per second). Target: >= 0.99
  for each type;
- the e-mail addresses already in the SpamAssassin mail: how many the scrub leaves;
- **false positives** per MB for PHONE_NUMBER and CREDIT_CARD on the Gutenberg books and the
  SOTU addresses (no personal data there): ours; HEAD's recognizers (presidio's phone and card
  recognizers, threshold 0.4, no allow-list); presidio's default engine (the same recognizers at
  its default threshold 0; run through our windows, which give presidio's results, see
  tests/transforms/pii/test_pii.py, since presidio's own engine scans ~5 KB/s). Target <= 0.1;
- **speed** of `fast` mode in MB per CPU-second on 5 KB prose documents and on mail, ours and,
  with `--head DIR` (a checkout of the previous commit, e.g. `git archive HEAD | tar -x -C DIR`),
  the code there, each in its own process, best of rounds.

Counts only: no value and no context is printed. `main(argv)` returns the numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.pii import ADDRESS, DEFAULT_CORPUS, covered, spans_of
from bench.pii_data import chunks, read_docs, sentences
from bench.pii_presidio import presidio_engines, presidio_spans
from bench.pii_recall_data import TYPES, entity, insert_at_space, mail_pieces, value
from bench.tables import table

NUMBER_TYPES = ("PHONE_NUMBER", "CREDIT_CARD")
SPEED_PROBE = """
import json, sys, time
from gristmill.transforms.pii.engine import EngineSettings, PiiEngine
sets = json.load(open(sys.argv[1]))
engine = PiiEngine(EngineSettings(), with_ner=False)
out = {}
for name, texts in sets.items():
    mb = sum(len(t.encode()) for t in texts) / 1e6
    best = 0.0
    for _ in range(int(sys.argv[2])):
        engine.clear_caches()
        t = time.process_time()
        engine.scan_many(texts, ["en"] * len(texts), ner=False)
        best = max(best, mb / (time.process_time() - t))
    out[name] = round(best, 2)
print(json.dumps(out))
"""


def build_cases(prose: list[str], mail: list[str], per_type: int, rng: random.Random) -> list:
    """(kind, where, text, start, end): per type `per_type` sentences and half as many mail
    pieces, each with one generated value inserted."""
    cases = []
    sent = sentences(prose, rng, per_type * len(TYPES))
    pieces = mail_pieces(mail)
    rng.shuffle(pieces)
    for t, kind in enumerate(TYPES):
        for i in range(per_type + per_type // 2):
            inserted, v = value(kind, rng, i)
            if i < per_type:
                host, where = sent[t * per_type + i], "prose"
            else:
                host, where = pieces[(t * per_type + i) % len(pieces)], "mail"
            text, at = insert_at_space(host, inserted, rng)
            start = at + inserted.index(v)
            cases.append((kind, where, text, start, start + len(v)))
    return cases


def measure_recall(ours, presidio_default, cases: list, every: int) -> list[dict]:
    """Per type and host: the share of inserted values ours finds, and presidio's default
    engine on every `every`-th case (it scans a few KB per second)."""
    texts = [c[2] for c in cases]
    our_scans = ours.scan_many(texts, ["en"] * len(texts), ner=False)
    theirs = {i: presidio_spans(presidio_default, t) for i, t in enumerate(texts) if i % every == 0}
    rows = []
    for kind in TYPES:
        row: dict = {"type": kind}
        for where in ("prose", "mail"):
            idx = [i for i, c in enumerate(cases) if c[0] == kind and c[1] == where]
            want = {entity(kind)}
            hit = sum(covered(spans_of(our_scans[i].hits), *cases[i][3:5], want) for i in idx)
            sub = [i for i in idx if i in theirs]
            got = sum(covered(theirs[i], *cases[i][3:5], want) for i in sub)
            row[f"{where} n"] = len(idx)
            row[f"ours {where}"] = round(hit / len(idx), 3)
            row[f"presidio {where}"] = round(got / len(sub), 3)
            row[f"presidio {where} n"] = len(sub)
        rows.append(row)
    return rows


def measure_false_positives(corpora: dict[str, list[str]]) -> list[dict]:
    from gristmill.transforms.pii.allow import NumberOptions
    from gristmill.transforms.pii.engine import EngineSettings, PiiEngine

    presidios = NumberOptions(cards="presidio", nanp=False, phone_min_digits=0, allow_list=False)
    engines = {
        "ours (defaults)": EngineSettings(entities=NUMBER_TYPES),
        "HEAD (presidio recognizers, 0.4)": EngineSettings(
            entities=NUMBER_TYPES, numbers=presidios
        ),
        "presidio default (threshold 0)": EngineSettings(
            entities=NUMBER_TYPES, numbers=presidios, score_threshold=0.0
        ),
    }
    rows = []
    for name, settings in engines.items():
        engine = PiiEngine(settings, with_ner=False)
        row: dict = {"engine": name}
        for corpus, texts in corpora.items():
            mb = sum(len(t.encode()) for t in texts) / 1e6
            counts = dict.fromkeys(NUMBER_TYPES, 0)
            for scan in engine.scan_many(texts, ["en"] * len(texts), ner=False):
                for h in scan.hits:
                    counts[h.entity_type] += 1
            for kind, n in counts.items():
                row[f"{corpus} {kind.split('_')[0].lower()}/MB"] = round(n / mb, 3)
            row[f"{corpus} MB"] = round(mb, 2)
        rows.append(row)
    return rows


def mail_addresses(ours, mail: list[str]) -> dict:
    """The addresses already in the real mail: how many the default scrub leaves."""
    from gristmill.transforms.pii.scrub import Scrubber, operator_config

    scrubber = Scrubber({}, operator_config("replace", {}, b"bench"))
    scans = ours.scan_many(mail, ["en"] * len(mail), ner=False)
    total = left = 0
    for text, scan in zip(mail, scans, strict=True):
        out, _ = scrubber.scrub(text, scan.hits)
        for m in ADDRESS.finditer(text):
            total += 1
            left += m.group().rstrip(".") in out
    return {"addresses": total, "scrubbed": total - left, "recall": round(1 - left / total, 4)}


def _head_path(head: str, tmp: str) -> str:
    """A folder holding a `gristmill` package whose sub-packages are the checkout's folders."""
    pkg = Path(tmp) / "gristmill"
    pkg.mkdir()
    (pkg / "__init__.py").write_text((Path(head) / "gristmill" / "__init__.py").read_text())
    for sub in ("transforms", "schemas", "pipelines", "runners"):
        (pkg / sub).symlink_to(Path(head).resolve() / sub)
    return tmp


def measure_speed(sets: dict[str, list[str]], head: str | None, rounds: int) -> list[dict]:
    """Fast-mode MB per CPU-second, ours and HEAD's, each in its own process, alternated."""
    import os

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "sets.json"
        data.write_text(json.dumps(sets))
        versions = {"ours": None}
        if head:
            versions["HEAD"] = _head_path(head, tempfile.mkdtemp(dir=tmp))
        best: dict[str, dict[str, float]] = {}
        for _ in range(rounds):
            for name, path in versions.items():
                env = dict(os.environ)
                if path:
                    env["PYTHONPATH"] = path
                out = subprocess.run(
                    [sys.executable, "-c", SPEED_PROBE, str(data), "3"],
                    capture_output=True, text=True, env=env, check=True,
                )  # fmt: skip
                got = json.loads(out.stdout.strip().splitlines()[-1])
                for k, v in got.items():
                    best.setdefault(name, {})[k] = max(best.get(name, {}).get(k, 0.0), v)
    return [{"code": k, **{f"{s} MB/cpu-s": v for s, v in vs.items()}} for k, vs in best.items()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--per-type", type=int, default=150, help="prose cases per type")
    parser.add_argument(
        "--presidio-every", type=int, default=4, help="presidio's default engine on every Nth case"
    )
    parser.add_argument("--head", help="a checkout of the previous code, for the speed figure")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(f"bench/pii_recall: {corpus} not found; nothing measured.")
        return {}
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    from gristmill.transforms.pii.engine import EngineSettings, PiiEngine, offline_tldextract

    offline_tldextract()
    started = time.time()
    rng = random.Random(16)
    sotu = read_docs(corpus, "articles", ["articles/sotu.jsonl"])
    books = read_docs(corpus, "books", ["books/pg*.txt"])
    mail = read_docs(corpus, "mail", ["email/spamassassin/*/*.txt"])
    ours = PiiEngine(EngineSettings(), with_ner=False)
    cases = build_cases(sotu + books, mail, args.per_type, rng)
    results: dict = {"cases": len(cases)}
    results["recall"] = measure_recall(ours, presidio_engines()[0], cases, args.presidio_every)
    print(table(results["recall"], title="Recall of inserted values (target >= 0.99 per type)"))
    results["mail_addresses"] = mail_addresses(ours, mail)
    print(f"\nAddresses in the real SpamAssassin mail: {results['mail_addresses']}\n")
    results["false_positives"] = measure_false_positives({"books": books, "sotu": sotu})
    print(table(results["false_positives"], title="Phone and card findings per MB (target <= 0.1)"))
    english = chunks([t for p in zip(sotu[::7], books, strict=False) for t in p], 5000, 2_000_000)
    sets = {"prose": english, "mail": mail[::2]}
    results["speed"] = measure_speed(sets, args.head, rounds=2)
    print(table(results["speed"], title="\nfast mode, MB per CPU-second (best of rounds)"))
    results["seconds"] = round(time.time() - started, 1)
    print(f"\n{results['seconds']} s")
    if args.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
