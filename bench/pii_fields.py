"""The cost of scanning the fields outside the text (`pii.scan_fields`) on the real mail.

    python -m bench.pii_fields [--corpus ../shared/corpus] [--every 2] [--head DIR]

SpamAssassin messages read by gristmill's mail reader, with the `url_or_path` and `meta` the
read stage gives them (file path, date, content type, Message-ID as `record_id`, ...). Fast
mode scans each batch of 64 as the pii stage does (`PiiStage._scan`: the texts and every field
value's view in one `scan_many` call), with `scan_fields` off and on, in the same process,
alternated, best of rounds; MB are the texts' bytes. With `--head DIR` (a checkout of another
commit, e.g. `git archive HEAD | tar -x -C DIR`) the same runs of that code, in its own
process, and whether its field findings are the same as ours (a digest of every field
finding's document, field, offsets and type). Counts only: no value is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.pii import DEFAULT_CORPUS
from bench.tables import table

PROBE = """
import glob, hashlib, json, sys, time
from pathlib import Path
from gristmill.transforms.sources import reader_for
from gristmill.transforms.sources.reader_api import RawRecord, ReadContext
from gristmill.transforms.sources.streams import InputFile
from gristmill.transforms.pii.engine import EngineSettings, PiiEngine
from gristmill.transforms.pii.fields import field_values, label, scan_text, shifted
corpus, every, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
reader, docs = reader_for("mail"), []
for path in sorted(glob.glob(str(corpus / "email/spamassassin/*/*.txt")))[::every]:
    for out in reader(InputFile(path, 1 << 33), ReadContext("mail", path, path, {}, 256 << 20, "replace")):
        if isinstance(out, RawRecord) and not out.drop and out.text:
            meta = dict(out.meta)
            meta.setdefault("offset", out.offset)
            if out.record_id:
                meta["record_id"] = out.record_id
            docs.append((out.text, str(Path(path).relative_to(corpus / "email")), meta))
engine = PiiEngine(EngineSettings(), with_ner=False)
def run(on):
    found = []
    for i in range(0, len(docs), 64):
        batch = docs[i : i + 64]
        fields = [field_values(u, m) if on else [] for _, u, m in batch]
        views = [scan_text(s, v)[0] for f in fields for s, v in f]
        scans = engine.scan_many([t for t, _, _ in batch] + views, ["en"] * (len(batch) + len(views)), ner=False)
        pos = len(batch)
        for j, f in enumerate(fields):
            for (steps, value), scan in zip(f, scans[pos : pos + len(f)]):
                for h in shifted(scan.hits, scan_text(steps, value)[1]):
                    found.append((i + j, label(steps) if steps is not None else "url_or_path", h.start, h.end, h.entity_type))
            pos += len(f)
    return found
mb = sum(len(t.encode()) for t, _, _ in docs) / 1e6
best, found = {}, []
for _ in range(rounds):
    for on in (False, True):
        engine.clear_caches()
        t = time.process_time()
        got = run(on)
        rate = mb / (time.process_time() - t)
        best[on] = max(best.get(on, 0.0), rate)
        found = got if on else found
values = sum(len(field_values(u, m)) for _, u, m in docs)
digest = hashlib.sha256(json.dumps(sorted(found)).encode()).hexdigest()[:16]
print(json.dumps({"messages": len(docs), "mb": round(mb, 2), "field_values": values,
    "off": round(best[False], 2), "on": round(best[True], 2), "field_findings": len(found), "digest": digest}))
"""


def probe(corpus: str, every: int, rounds: int, path: str | None) -> dict:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = path
    out = subprocess.run(
        [sys.executable, "-c", PROBE, corpus, str(every), str(rounds)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--every", type=int, default=2, help="every Nth message file")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--head", help="a checkout of other code, measured beside ours")
    args = parser.parse_args(argv)
    if not Path(args.corpus, "email").is_dir():
        print(f"bench/pii_fields: {args.corpus}/email not found; nothing measured.")
        return {}
    from bench.pii_recall import _head_path

    with tempfile.TemporaryDirectory() as tmp:
        versions = {"ours": None}
        if args.head:
            versions["HEAD"] = _head_path(args.head, tempfile.mkdtemp(dir=tmp))
        results = {name: probe(args.corpus, args.every, args.rounds, p) for name, p in versions.items()}  # fmt: skip
    rows = [
        {"code": name, **r, "on / off": round(r["on"] / r["off"], 2)} for name, r in results.items()
    ]
    print(table(rows, title="fast mode on mail, text MB per CPU-second, scan_fields off and on"))
    if args.head:
        same = results["ours"]["digest"] == results["HEAD"]["digest"]
        print(f"field findings the same as HEAD's: {same}")
    return results


if __name__ == "__main__":
    main()
