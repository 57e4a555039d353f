"""FineWeb rules beside datatrove, decontamination recall and cost, and the whole job with the
new filters on and off. Run by hand (not part of `make bench`):

    .venv/bin/python -m bench.filters [--corpus ../shared/corpus] [--dt-venv /tmp/dt-venv]

1. FineWeb: our `fineweb()` and datatrove's FineWebQualityFilter (installed from PyPI into a
   scratch venv outside the repository; skipped with a message when that fails) on the same
   documents of the shared corpus: the share of equal keep/drop decisions (target >= 99%).
2. C4's bad-words rule on every kind: the share of documents it would drop, and its speed.
3. Decontamination, with the article bodies of extraction/aeb-ground-truth.json as the
   evaluation set (the rest of the corpus does not contain them): recall on passages planted
   verbatim, with whitespace changes and with case changes; drops on the unplanted corpus;
   index build time and lookup cost per MB.
4. The whole job on a small corpus, FineWeb + bad words + decontam + repeated paragraphs on
   vs off, in one run:
   input MB per CPU-second (this process and its children).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.stages import SETS, _read
from bench.tables import table
from gristmill.schemas.records import Document
from gristmill.transforms.decontam.index import load_index
from gristmill.transforms.decontam.params import DecontamParams, EvalSet
from gristmill.transforms.decontam.stage import decide
from gristmill.transforms.quality.badwords import bad_words
from gristmill.transforms.quality.fineweb import fineweb
from gristmill.transforms.quality.params import BadWordsParams, FineWebParams

ROOT = Path(__file__).resolve().parent.parent

# run inside the datatrove venv: JSON lines {id, text} in, {id, reason} out ("" = kept)
DATATROVE_SCRIPT = """
import json, sys, time
from datatrove.data import Document
from datatrove.pipeline.filters import FineWebQualityFilter
f = FineWebQualityFilter()
started, out = time.process_time(), []
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    r = f.filter(Document(text=d["text"], id=d["id"]))
    out.append({"id": d["id"], "reason": "" if r is True else r[1]})
with open(sys.argv[2], "w") as fh:
    for row in out:
        fh.write(json.dumps(row) + "\\n")
print(time.process_time() - started)
"""


def documents(corpus: Path) -> list[tuple[str, Document]]:
    """(kind, document) for every document the corpus's readers give (bench.stages.SETS)."""
    out = []
    for name, kind, patterns in SETS:
        _, docs = _read(corpus, name, kind, patterns)
        out += [(kind, d) for d in docs]
    return out


def datatrove_python(venv: Path) -> Path | None:
    """The venv's python with datatrove (and spaCy, its English word tokenizer) importable,
    installed from PyPI when missing; None (and a message) when that cannot be done."""
    py = venv / "bin" / "python"
    check = [str(py), "-c", "import datatrove.pipeline.filters, spacy, regex"]
    if py.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return py
    print(f"filters: installing datatrove into {venv} (from PyPI) ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(py), "-m", "pip", "install", "-q", "datatrove", "spacy", "regex"]
        subprocess.run(pip, check=True, capture_output=True, timeout=900)
        subprocess.run(check, check=True, capture_output=True)
    except (subprocess.SubprocessError, OSError) as err:
        print(f"filters: datatrove cannot be installed ({err}); FineWeb comparison skipped")
        return None
    return py


def compare_fineweb(docs: list[tuple[str, Document]], py: Path | None) -> list[dict]:
    """Per kind: documents, drops by each, and the share of equal decisions and reasons."""
    p = FineWebParams()
    started = time.process_time()
    ours = {d.id: (fineweb(d.text, p) or ("", ""))[0] for _, d in docs}
    our_s = time.process_time() - started
    mb = sum(len(d.text.encode("utf-8")) for _, d in docs) / 1e6
    if py is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.jsonl"), Path(tmp, "out.jsonl")
        with src.open("w", encoding="utf-8") as fh:
            for _, d in docs:
                fh.write(json.dumps({"id": d.id, "text": d.text}) + "\n")
        run = subprocess.run(
            [str(py), "-c", DATATROVE_SCRIPT, str(src), str(dst)], capture_output=True, text=True
        )
        if run.returncode:
            print(f"filters: datatrove failed: {run.stderr[-2000:]}")
            return []
        dt_s = float(run.stdout.strip().splitlines()[-1])
        theirs = {r["id"]: r["reason"] for r in map(json.loads, dst.open(encoding="utf-8"))}
    rows = []
    for kind in [*dict.fromkeys(k for k, _ in docs), "all"]:
        ids = [d.id for k, d in docs if kind in ("all", k)]
        same = sum(bool(ours[i]) == bool(theirs[i]) for i in ids)
        rows.append(
            {
                "kind": kind,
                "docs": len(ids),
                "ours_dropped": sum(bool(ours[i]) for i in ids),
                "datatrove_dropped": sum(bool(theirs[i]) for i in ids),
                "same_decision_%": round(100 * same / len(ids), 2),
                "same_reason_%": round(
                    100 * sum(_same_reason(ours[i], theirs[i]) for i in ids) / len(ids), 2
                ),
            }
        )
    rows[-1]["ours_mb_per_cpu_s"] = round(mb / our_s, 1)
    rows[-1]["datatrove_mb_per_cpu_s"] = round(mb / dt_s, 1)
    differ = Counter(
        (ours[i], theirs[i]) for _, d in docs if bool(ours[(i := d.id)]) != bool(theirs[i])
    )
    if differ:
        print(f"filters: differing decisions (ours, datatrove): {dict(differ)}")
    return rows


REASONS = {
    "fineweb_line_punct": "line_punct_ratio",
    "fineweb_short_lines": "short_line_ratio",
    "fineweb_dup_line_chars": "char_dup_ratio",
    "fineweb_list_ratio": "list_ratio",
    "fineweb_empty": "empty",
    "": "",
}


def _same_reason(ours: str, theirs: str) -> bool:
    return REASONS.get(ours) == theirs


def bad_words_bench(docs: list[tuple[str, Document]]) -> list[dict]:
    """C4's bad-words rule (English list) per kind: the share it would drop, and its speed."""
    p = BadWordsParams(kinds=("web",))
    rows = []
    for kind in [*dict.fromkeys(k for k, _ in docs), "all"]:
        texts = [d.text for k, d in docs if kind in ("all", k)]
        started = time.process_time()
        dropped = sum(bad_words(t, "en", p)[0] is not None for t in texts)
        spent = time.process_time() - started
        mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
        row = {"kind": kind, "docs": len(texts), "dropped": dropped}
        row["dropped_%"] = round(100 * dropped / len(texts), 1)
        rows.append(row | {"mb_per_cpu_s": round(mb / spent, 1)})
    return rows


# ---- decontamination ---------------------------------------------------------------------------


def _eval_set(corpus: Path, folder: str) -> tuple[EvalSet, list[str]]:
    truth = json.loads((corpus / "extraction" / "aeb-ground-truth.json").read_text("utf-8"))
    bodies = [v["articleBody"] for _, v in sorted(truth.items()) if v.get("articleBody")]
    path = Path(folder, "aeb.jsonl")
    with path.open("w", encoding="utf-8") as fh:
        for body in bodies:
            fh.write(json.dumps({"text": body}) + "\n")
    return EvalSet("aeb", (str(path),)), bodies


def _variant(words: list[str], how: str, rng: random.Random) -> str:
    if how == "whitespace":
        return "".join(w + rng.choice(["  ", "\n", "\t", "\n\n", " \r\n "]) for w in words)
    text = " ".join(words)
    return {"verbatim": text, "case": text.swapcase(), "upper": text.upper()}[how]


def decontam_bench(corpus: Path, docs: list[tuple[str, Document]], plants: int = 300) -> dict:
    rng = random.Random(19)
    with tempfile.TemporaryDirectory() as tmp:
        s, bodies = _eval_set(corpus, tmp)
        params = DecontamParams(enabled=True, sets=(s,))
        started = time.process_time()
        index = load_index(params.sets, params.ngram)
        build_s = time.process_time() - started
    mb = sum(len(d.text.encode("utf-8")) for _, d in docs) / 1e6
    started = time.process_time()
    dropped = [d.id for _, d in docs if decide(d.text, index, params).verdict is not None]
    scan_s = time.process_time() - started
    found = Counter()
    long_bodies = [b.split() for b in bodies if len(b.split()) >= 40]
    hows = ("verbatim", "whitespace", "case", "upper")
    for k in range(plants):
        words = rng.choice(long_bodies)
        at = rng.randrange(len(words) - 20)
        passage = _variant(words[at : at + rng.randint(20, 40)], hows[k % 4], rng)
        text = rng.choice(docs)[1].text
        cut = text.find(" ", rng.randrange(max(1, len(text))))
        planted = f"{text[: max(cut, 0)]} {passage} {text[max(cut, 0) :]}"
        verdict = decide(planted, index, params).verdict
        found[hows[k % 4]] += verdict is not None and verdict[1].startswith("aeb:")
    return {
        "eval_passages": len(bodies),
        "eval_ngrams": len(index.keys),
        "index_build_cpu_s": round(build_s, 2),
        "corpus_docs": len(docs),
        "corpus_mb": round(mb, 1),
        "dropped_unplanted": len(dropped),
        "dropped_ids": dropped[:10],
        "lookup_ms_per_mb": round(1000 * scan_s / mb, 1),
        "recall": {h: f"{found[h]}/{plants // 4}" for h in hows},
    }


# ---- the whole job -----------------------------------------------------------------------------


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _job(sources: list[str], overrides: list[str]) -> tuple[dict, float, float]:
    """(manifest, CPU seconds, wall seconds) of one job in this process (1 worker)."""
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load(None, ["runner.workers=1", *overrides], cli_sources=sources, output=tmp)
        cpu, wall = _cpu(), time.perf_counter()
        manifest = run_job(cfg, show="off")
        return manifest, _cpu() - cpu, time.perf_counter() - wall


def job_bench(corpus: Path, eval_set: EvalSet) -> list[dict]:
    """The job on a small corpus (~15 MB), the new filters off then on, after a warm-up run
    (models and imports load once per process); input MB per CPU-second."""
    sources = [
        f"books={corpus}/books/shakespeare/*.txt",
        f"wiki={corpus}/articles/enwiki-sample.xml.bz2",
        f"web={corpus}/web/*.warc*",
        f"mail={corpus}/email/spamassassin/hard-ham-1/*.txt",
    ]
    sets = f"decontam.sets=[{{name: aeb, paths: ['{eval_set.paths[0]}']}}]"
    off = [
        "quality.fineweb.kinds=[]",
        "quality.bad_words.kinds=[]",
        "decontam.enabled=false",
        "paragraphs.enabled=false",
    ]
    on = [
        "quality.fineweb.kinds=[web]",
        "quality.bad_words.kinds=[web]",
        "decontam.enabled=true",
        "paragraphs.enabled=true",
    ]
    _job([f"books={corpus}/books/shakespeare/sonnets_gut.txt"], [*on, sets])  # warm-up
    rows = []
    for label, overrides in [("off", off), ("on", [*on, sets])]:
        manifest, cpu, wall = _job(sources, overrides)
        mb = sum(i["bytes"] for i in manifest["inputs"]) / 1e6
        stages = {s["name"]: s for s in manifest["stages"]}
        rows.append(
            {
                "filters": label,
                "input_mb": round(mb, 1),
                "cpu_s": round(cpu, 1),
                "wall_s": round(wall, 1),
                "mb_per_cpu_s": round(mb / cpu, 3),
                "documents": manifest["counts"]["documents"],
                "quality_dropped": sum(stages["quality"]["dropped"].values()),
                "decontam_dropped": sum(stages.get("decontam", {}).get("dropped", {}).values()),
                "paragraphs_dropped": sum(
                    stages.get("dedup_paragraphs", {}).get("dropped", {}).values()
                ),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--dt-venv", type=Path, default=Path("/tmp/dt-venv"))
    parts = "fineweb,badwords,decontam,job"
    parser.add_argument("--parts", default=parts, help=f"which parts to run (of {parts})")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"filters: no corpus at {args.corpus}; nothing measured")
        return 0
    parts = set(args.parts.split(","))
    docs = documents(args.corpus) if parts - {"job"} else []
    results: dict = {}
    if "fineweb" in parts:
        results["fineweb"] = compare_fineweb(docs, datatrove_python(args.dt_venv))
    if results.get("fineweb"):
        print(table(results["fineweb"], title="FineWeb rules: ours beside datatrove's filter"))
        print()
    if "badwords" in parts:
        results["bad_words"] = bad_words_bench(docs)
        print(table(results["bad_words"], title="C4 bad words (English list) on every kind"))
        print()
    if "decontam" in parts:
        results["decontam"] = decontam_bench(args.corpus, docs)
        print("Decontamination (evaluation set: the AEB article bodies)")
        print(json.dumps(results["decontam"], indent=1))
        print()
    if "job" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            eval_set, _ = _eval_set(args.corpus, tmp)
            results["job"] = job_bench(args.corpus, eval_set)
        print(table(results["job"], title="Whole job (1 worker), FineWeb + bad words + decontam"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
