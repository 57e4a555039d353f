"""The live progress display on a ~100 MB run: how often it updates and how good its ETA is.

    python bench/progress.py [--corpus ../shared/corpus] [--mb 100] [--workers 1,2]

Builds a ~100 MB input by repeating real text from the corpus in a temp dir (copies of
`articles/sotu.jsonl` and of the books, `books/*.txt` + `books/shakespeare/*.txt`), then runs the
real corpus job once per worker count exactly as `gristmill run` does, with the progress tracker
around the pipeline, and records every update: its time, the ETA, the done fraction.

Reported per run: the largest gap between updates (target: at most 2 s); at the half-way point
(the first update at or after half the pipeline's actual time T) the ETA against the actual time
left and the predicted total (elapsed + ETA) against T (target: within 30%); the worst such
errors over every later update; and the execution ms per input MB of each phase (what the
tracker's priors are calibrated from). Other helpers run CPU-heavy work on this 2-core machine
at the same time: the numbers are taken under that contention.
`main(argv)` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"


def build_input(corpus: Path, dest: Path, target_mb: float) -> list[str]:
    """Copies of real files, alternating articles and books, until `target_mb`; CLI sources."""
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


def run_tracked(sources: list[str], output: str, workers: int) -> dict[str, Any]:
    """The job as pipelines/job.py runs it, with progress.track around the pipeline."""
    import apache_beam as beam

    from gristmill.pipelines import corpus, progress, release
    from gristmill.pipelines.config import load
    from gristmill.runners import runner_for

    cfg = load(None, [f"runner.workers={workers}"], cli_sources=sources, output=output)
    started = time.monotonic()
    job = corpus.plan(cfg)
    runner, options = runner_for(cfg.section("runner"))
    release.clear(cfg.output)
    per_source = {name: sum(f.size for f in files) for name, files in job.files.items()}
    stamps: list[float] = []
    with progress.track(job.stages, per_source, runner, "off", workers=workers) as tracker:
        tracker.on_update = lambda _est: stamps.append(time.monotonic())
        track_start = time.monotonic()
        with beam.Pipeline(runner=runner, options=options) as p:
            parts = corpus.build(p, cfg, job)
            release.write_summary(p, cfg.output, parts)
        pipeline_end = time.monotonic()
    elapsed = time.monotonic() - started
    manifest = release.finish(cfg, job.stages, {"elapsed_s": round(elapsed, 3)})
    actual = pipeline_end - track_start
    updates = [
        {
            "t": round(s - track_start, 2),
            "eta": e.eta_s,
            "fraction": round(e.fraction, 4),
            "phases": {k: round(v, 4) for k, v in e.phases.items()},
            "ms": e.ms,
        }
        for s, e in zip(stamps, tracker.updates, strict=False)
    ]
    return {
        "workers": workers,
        "input_mb": round(job.input_bytes / 1e6, 1),
        "documents": manifest["counts"]["documents"],
        "pipeline_s": round(actual, 2),
        "job_s": round(elapsed, 2),
        "hooked": tracker.hooked,
        "updates": updates,
        "ms_per_mb": {
            p: round(s * 1000 / (job.input_bytes / 1e6), 1)
            for p, s in tracker.stage_seconds().items()
        },
    }


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


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines.extend("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--mb", type=float, default=100.0, help="input size to build")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--save", help="write the runs (every update) to this JSON file")
    args = parser.parse_args(argv)
    corpus = Path(args.corpus)
    if not (corpus / "articles" / "sotu.jsonl").is_file():
        print(
            f"bench/progress: no corpus at {corpus} (needs articles/sotu.jsonl); nothing measured"
        )
        return {}
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    results: dict[str, Any] = {"runs": []}
    with tempfile.TemporaryDirectory(prefix="gristmill-progress-") as tmp:
        sources = build_input(corpus, Path(tmp) / "in", args.mb)
        for workers in (int(w) for w in args.workers.split(",")):
            run = run_tracked(sources, str(Path(tmp) / f"out-{workers}"), workers)
            run["score"] = score(run)
            results["runs"].append(run)
    rows = [
        {"workers": r["workers"], "input_mb": r["input_mb"], **r["score"]} for r in results["runs"]
    ]
    rows = [
        {**row, "pipeline_s": r["pipeline_s"]} for row, r in zip(rows, results["runs"], strict=True)
    ]
    print("progress display on a real run (taken under contention from other helpers' work)")
    print(
        _table(
            rows,
            [
                "workers",
                "input_mb",
                "pipeline_s",
                "updates",
                "max_gap_s",
                "first_eta_s",
                "half_t_s",
                "half_eta_s",
                "half_actual_left_s",
                "half_eta_err",
                "half_total_err",
                "worst_eta_err_after_half",
                "worst_total_err_after_half",
            ],
        )
    )
    phases = sorted({p for r in results["runs"] for p in r["ms_per_mb"]})
    print("\nexecution ms per input MB, per phase (summed over workers)")
    print(
        _table(
            [{"workers": r["workers"], **r["ms_per_mb"]} for r in results["runs"]],
            ["workers", *phases],
        )
    )
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
