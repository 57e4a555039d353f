"""The live progress display on a ~100 MB run: how often it updates and how good its ETA is.

    python -m bench.progress [--corpus ../shared/corpus] [--mb 100] [--workers 1,2]
                             [--input corpus|replicated] [--full] [--save FILE]
    python -m bench.progress --replay FILE      # the current estimator on recorded runs

Builds a ~100 MB input in a temp dir, then runs the real corpus job once per worker count
exactly as `gristmill run` does (with `--full`, tokenizer training and MLM shards too, as the
demo job), with the progress tracker around the pipeline, and records every update: its time,
the ETA, the done fraction, the metrics snapshot it was computed from.

Inputs: `corpus` (the default) takes every kind of real text the corpus has, once, stored
uncompressed (books and Shakespeare, SOTU articles, the Wikipedia dump, WARC files, news and
UDHR HTML pages, the SpamAssassin mail, the lingua sentences as books): ~106 MB, with only the
duplicates the corpus itself holds. `replicated` repeats `articles/sotu.jsonl` and the books
until the target: 4 in 5 documents are exact duplicates, so dedup leaves ~20 MB for the stages
after it, which no estimate can know before dedup has grouped the documents.

Reported per run: the largest gap between updates (target: at most 2 s); at the half-way point
(the first update at or after half the pipeline's actual time T) the ETA against the actual time
left and the predicted total (elapsed + ETA) against T (target: within 30%); the worst such
errors over every later update; the execution ms per input MB of each phase; and the wall ms
charged to each phase per MB that reached it (bench/progress_fit.py fits the priors from saved
runs). Anything else running on the machine slows phases unevenly and is in the numbers.
`--replay` re-scores saved runs with the estimator as it is now, on the very snapshots the live
run saw. `main(argv)` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.tables import table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
FULL = ["tokenizer.enabled=true", "mlm.enabled=true"]  # the training data too, as the demo job


def build_input(corpus: Path, dest: Path, target_mb: float) -> list[str]:
    """Copies of articles and books, alternating, until `target_mb`; CLI sources."""
    sotu = corpus / "articles" / "sotu.jsonl"
    books = sorted((corpus / "books").glob("*.txt")) + sorted(
        (corpus / "books" / "shakespeare").glob("*.txt")
    )
    total = 0
    copy = 0
    while total < target_mb * 1e6:
        art = dest / "articles" / f"sotu-{copy:03d}.jsonl"
        art.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sotu, art)
        total += art.stat().st_size
        book_dir = dest / "books" / f"copy{copy:03d}"
        book_dir.mkdir(parents=True, exist_ok=True)
        for book in books:
            if total >= target_mb * 1e6:
                break
            shutil.copyfile(book, book_dir / book.name)
            total += book.stat().st_size
        copy += 1
    return [f"articles={dest / 'articles'}", f"books={dest / 'books'}"]


# kind -> the corpus files of that kind (globs under the corpus), for the `corpus` input
KINDS = {
    "books": ["books/*.txt", "books/shakespeare/*.txt", "multilingual/lingua-sentences/*.txt"],
    "articles": ["articles/sotu.jsonl"],
    "wiki": ["articles/enwiki-sample.xml.bz2"],
    "web": ["web/*.warc*", "extraction/aeb-html/*.html.gz", "multilingual/udhr/*.html"],
    "mail": ["email/spamassassin/*/*.txt"],
}


def _copy_plain(src: Path, out: Path) -> int:
    """Copies `src`, decompressed (gzip, bz2), so its text counts in full; returns bytes."""
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(src.suffix)
    if opener is None:
        shutil.copyfile(src, out)
    else:
        out = out.with_suffix("")  # page.html.gz -> page.html
        with opener(src, "rb") as fin, open(out, "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return out.stat().st_size


def build_corpus_input(corpus: Path, dest: Path, target_mb: float) -> list[str]:
    """Every kind of text in the corpus once, stored uncompressed (~106 MB); topped up to
    `target_mb` with copies of the articles only if that is still short of it."""
    total = 0
    for kind, globs in KINDS.items():
        for pattern in globs:
            for src in sorted(corpus.glob(pattern)):
                out = dest / kind / src.relative_to(corpus)
                out.parent.mkdir(parents=True, exist_ok=True)
                total += _copy_plain(src, out)
    sotu = corpus / "articles" / "sotu.jsonl"
    copy = 0
    while total < target_mb * 1e6:
        shutil.copyfile(sotu, dest / "articles" / f"sotu-copy{copy:03d}.jsonl")
        total += sotu.stat().st_size
        copy += 1
    return [f"{kind}={dest / kind}" for kind in KINDS]


def _snapshot_row(snap: Any) -> dict[str, Any]:
    """A metrics snapshot as JSON, all that `replay` needs to make the estimate again."""
    return {
        "counters": {f"{ns}|{n}": v for (ns, n), v in snap.counters.items()},
        "msecs": snap.msecs,
        "planned": snap.plan is not None,
        "pending": snap.pending,
        "running": snap.running,
        "durations": snap.durations,
    }


def _update_rows(
    stamps: list[float], estimates: list[Any], snaps: list[dict[str, Any]], start: float
) -> list[dict[str, Any]]:
    """Each display update: its time from `start`, what it showed and the snapshot it saw."""
    return [
        {
            "t": round(s - start, 2),
            "eta": e.eta_s,
            "fraction": round(e.fraction, 4),
            "phases": {k: round(v, 4) for k, v in e.phases.items()},
            "ms": e.ms,
            "elapsed": e.elapsed_s,
            "speed": e.speed,
            "cost": e.cost,
            "snapshot": snap,
        }
        for s, e, snap in zip(stamps, estimates, snaps, strict=False)
    ]


def run_tracked(
    sources: list[str], output: str, workers: int, overrides: list[str] = ()
) -> dict[str, Any]:
    """The job as pipelines/job.py runs it, with progress.track around the pipeline."""
    import apache_beam as beam

    from gristmill.pipelines import graph as corpus
    from gristmill.pipelines.config import load
    from gristmill.pipelines.progress import track as progress
    from gristmill.pipelines.release import manifest as release
    from gristmill.runners import runner_for

    cfg = load(None, [*overrides, f"runner.workers={workers}"], cli_sources=sources, output=output)
    started = time.monotonic()
    job = corpus.plan(cfg)
    runner, options = runner_for(cfg.section("runner"))
    release.clear(cfg.output)
    per_source = {name: sum(f.size for f in files) for name, files in job.files.items()}
    stamps: list[float] = []
    snaps: list[dict[str, Any]] = []
    plan: dict[str, Any] = {}

    def record(_est: Any) -> None:
        stamps.append(time.monotonic())
        snap = tracker.last_snapshot  # what the estimate saw: kept to replay estimators
        snaps.append(_snapshot_row(snap))
        if snap.plan is not None:
            plan["plan"] = snap.plan

    with progress.track(job.stages, per_source, runner, "off", workers=workers) as tracker:
        tracker.on_update = record
        track_start = time.monotonic()
        with beam.Pipeline(runner=runner, options=options) as p:
            parts = corpus.build(p, cfg, job)
            release.write_summary(p, cfg.output, parts)
        pipeline_end = time.monotonic()
        final = tracker.update()  # charges the last second; not one of the display's updates
        del tracker.updates[-1], stamps[-1], snaps[-1]
    elapsed = time.monotonic() - started
    manifest = release.finish(cfg, job.stages, {"elapsed_s": round(elapsed, 3)})
    actual = pipeline_end - track_start
    return {
        "workers": workers,
        "stages": job.stages,
        "source_bytes": per_source,
        "overrides": list(overrides),
        "input_mb": round(job.input_bytes / 1e6, 1),
        "documents": manifest["counts"]["documents"],
        "pipeline_s": round(actual, 2),
        "job_s": round(elapsed, 2),
        "hooked": tracker.hooked,
        "updates": _update_rows(stamps, tracker.updates, snaps, track_start),
        "plan": plan.get("plan"),
        "ms_per_mb": _ms_per_mb(tracker.stage_seconds(), job.input_bytes),
        "work_ms_per_mb": work_per_mb(tracker.shape, final, tracker.last_snapshot),
        "overhead_s": final.overhead_s,
    }


def _ms_per_mb(stage_seconds: dict[str, float], input_bytes: int) -> dict[str, float]:
    """Execution ms of each phase per MB of job input."""
    return {p: round(s * 1000 / (input_bytes / 1e6), 1) for p, s in stage_seconds.items()}


def work_per_mb(shape: Any, final: Any, snap: Any) -> dict[str, float]:
    """Wall ms of work (less the runner's per-stage overhead) per MB reaching each phase: the
    priors' unit."""
    from gristmill.pipelines.progress.estimate import flow

    mb = flow(shape, snap.counters).mb
    return {p: round(w * 1000 / mb[p], 1) for p, w in final.work.items() if mb.get(p)}


def replay(run: dict[str, Any]) -> dict[str, Any]:
    """The run's updates as the current estimator makes them from the same snapshots."""
    from gristmill.pipelines.progress.estimate import Estimator, JobShape
    from gristmill.pipelines.progress.metrics import Snapshot

    estimator = Estimator(JobShape(run["stages"], run["source_bytes"], run["workers"]))
    plan = tuple(tuple(stage) for stage in run["plan"]) if run.get("plan") else None
    updates = []
    for u in run["updates"]:
        raw = u["snapshot"]
        known = plan if raw.get("planned") else None
        snap = Snapshot(
            {tuple(k.split("|", 1)): v for k, v in raw["counters"].items()},  # type: ignore[misc]
            raw["msecs"],
            known,
            tuple(raw.get("pending", ())),
            tuple(raw.get("running", ())),
            tuple(raw.get("durations", ())),
        )
        est = estimator.update(snap, u["elapsed"])
        updates.append({**u, "eta": est.eta_s, "fraction": est.fraction, "cost": est.cost})
    return {**run, "updates": updates}


def score(run: dict[str, Any]) -> dict[str, Any]:
    """Update gaps and ETA errors of one run."""
    ups = run["updates"]
    total = run["pipeline_s"]
    times = [0.0] + [u["t"] for u in ups] + [total]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    after = [u for u in ups if u["t"] >= total / 2 and u["eta"] is not None and u["t"] < total]
    out: dict[str, Any] = {
        "updates": len(ups),
        "max_gap_s": round(max(gaps), 2),
        "first_eta_s": next((u["t"] for u in ups if u["eta"] is not None), None),
    }
    if after:
        half = after[0]
        left = total - half["t"]
        out["half_t_s"] = half["t"]
        out["half_eta_s"] = round(half["eta"], 1)
        out["half_actual_left_s"] = round(left, 1)
        out["half_eta_err"] = round((half["eta"] - left) / left, 3)
        out["half_total_err"] = round((half["t"] + half["eta"] - total) / total, 3)
        out["worst_total_err_after_half"] = round(
            max(abs(u["t"] + u["eta"] - total) / total for u in after), 3
        )
        # ETA vs time left, over the second half while at least 10% of T remains
        lefts = [(u["eta"], total - u["t"]) for u in after if total - u["t"] >= 0.1 * total]
        out["worst_eta_err_after_half"] = (
            round(max(abs(e - lft) / lft for e, lft in lefts), 3) if lefts else None
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--mb", type=float, default=100.0, help="input size to build")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--save", help="write the runs (every update) to this JSON file")
    parser.add_argument(
        "--full",
        action="store_true",
        help="the full job, as sample/demo.yaml: tokenizer training and MLM shards too",
    )
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument(
        "--input", choices=("corpus", "replicated"), default="corpus", help="see the module doc"
    )
    parser.add_argument("--replay", help="re-score the runs saved in this JSON file; run nothing")
    args = parser.parse_args(argv)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    if args.replay:
        results = json.loads(Path(args.replay).read_text())
        results["runs"] = [replay(r) for r in results["runs"]]
    else:
        results = measure(args)
        if not results:
            return {}
    for run in results["runs"]:
        run["score"] = score(run)
    report(results["runs"])
    if args.save:
        Path(args.save).write_text(json.dumps(results))
    return results


def measure(args: argparse.Namespace) -> dict[str, Any]:
    corpus = Path(args.corpus)
    if not (corpus / "articles" / "sotu.jsonl").is_file():
        print(
            f"bench/progress: no corpus at {corpus} (needs articles/sotu.jsonl); nothing measured"
        )
        return {}
    results: dict[str, Any] = {"input": args.input, "runs": []}
    build = build_corpus_input if args.input == "corpus" else build_input
    with tempfile.TemporaryDirectory(prefix="gristmill-progress-") as tmp:
        sources = build(corpus, Path(tmp) / "in", args.mb)
        for workers in (int(w) for w in args.workers.split(",")):
            overrides = [*FULL, *args.set] if args.full else list(args.set)
            out = str(Path(tmp) / f"out-{workers}")
            results["runs"].append(run_tracked(sources, out, workers, overrides))
    return results


def report(runs: list[dict[str, Any]]) -> None:
    rows = [
        {"workers": r["workers"], "input_mb": r["input_mb"], "pipeline_s": r["pipeline_s"]}
        | r["score"]
        for r in runs
    ]
    print("progress display on a real run (whatever else loads the machine is in the numbers)")
    print(table(rows, list(rows[0])))
    for title, key in (
        ("execution ms per input MB, per phase (summed over workers)", "ms_per_mb"),
        ("wall ms of work per MB reaching the phase (the priors' unit)", "work_ms_per_mb"),
    ):
        phases = sorted({p for r in runs for p in r.get(key, {})})
        print(f"\n{title}")
        print(
            table([{"workers": r["workers"], **r.get(key, {})} for r in runs], ["workers", *phases])
        )


if __name__ == "__main__":
    main()
