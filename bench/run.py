"""`make bench`: throughput per stage and quality figures on the real corpus in ../shared/corpus.

Everything is measured in this one run, side by side; nothing here is asserted. Results are
printed as tables and saved to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.stages import measure_stages
from bench.tables import table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _job_throughput(corpus: Path, workers: int) -> dict:
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load(
            None, [f"runner.workers={workers}"], cli_sources=_cli_sources(corpus), output=tmp
        )
        started = time.perf_counter()
        manifest = run_job(cfg)
        elapsed = time.perf_counter() - started
    mb = sum(i["bytes"] for i in manifest["inputs"]) / 1e6
    return {
        "workers": workers,
        "input_mb": round(mb, 2),
        "seconds": round(elapsed, 2),
        "mb_per_s": round(mb / elapsed, 3),
        "mb_per_s_per_core": round(mb / elapsed / workers, 3),
        "documents": manifest["counts"]["documents"],
        "drops": manifest["counts"]["drops"],
        "dead_letters": manifest["counts"]["dead_letters"],
        "inputs": len(manifest["inputs"]),
    }


def _cli_sources(corpus: Path) -> list[str]:
    return [
        f"books={corpus}/books/*.txt",
        f"books={corpus}/books/shakespeare/*.txt",
        f"articles={corpus}/articles/sotu.jsonl",
        f"wiki={corpus}/articles/enwiki-sample.xml.bz2",
        f"web={corpus}/web/*.warc*",
        f"mail={corpus}/email/spamassassin/*/*.txt",
    ]


JOB_COLUMNS = [
    "workers",
    "inputs",
    "input_mb",
    "seconds",
    "mb_per_s",
    "mb_per_s_per_core",
    "documents",
    "drops",
    "dead_letters",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--skip-job", action="store_true", help="skip the whole-job Beam runs")
    return parser


def _stages(corpus: Path, results: dict) -> None:
    """Each stage alone, in this process: where a job's time would go."""
    stages = measure_stages(corpus)
    results["stages"] = stages
    print(
        table(
            stages,
            ["stage", "input", "docs", "mb", "seconds", "mb_per_s_per_core", "note"],
            "Per-stage throughput, one core, in-process (MB of stage input text per second)",
        )
    )
    print()


def _whole_job(corpus: Path, results: dict) -> None:
    """The whole job on Beam: throughput at 1 and 2 workers, scaling with input size, and the
    live progress display's update gaps and ETA error."""
    jobs = [_job_throughput(corpus, w) for w in (1, 2)]
    results["job"] = jobs
    print(
        table(
            jobs,
            JOB_COLUMNS,
            "Whole corpus job on Beam's FnApiRunner (all sources, every stage the defaults enable)",
        )
    )
    print()

    from bench import scaling

    results["scaling"] = scaling.main(["--corpus", str(corpus)])
    print()

    from bench import progress as progress_bench  # the live display's update gaps and ETA error

    runs = progress_bench.main(["--corpus", str(corpus), "--full", "--workers", "1,2"])
    results["progress"] = [
        {"workers": r["workers"], "pipeline_s": r["pipeline_s"], **r["score"]}
        for r in runs.get("runs", [])
    ]
    print()


def _beside_others(corpus: Path, results: dict) -> None:
    """The stages' quality and speed beside other tools: extraction, langid, dedup, pii, mlm."""
    from bench import extraction

    results["extraction"] = extraction.main(["--corpus", str(corpus)])
    print()

    from bench import langid as langid_bench

    results["langid"] = langid_bench.main(["--corpus", str(corpus)])
    print()

    from bench import dedup as dedup_bench

    results["dedup"] = dedup_bench.main(["--corpus", str(corpus)])
    print()

    from bench import pii as pii_bench

    results["pii"] = pii_bench.main(["--corpus", str(corpus)])
    print()

    from bench import training_data as mlm_bench

    results["mlm"] = mlm_bench.main(["--corpus", str(corpus)])
    print()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(
            f"bench: {corpus} not found; the benchmarks read the real corpus there. Nothing measured."
        )
        return 0
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    results: dict = {"corpus": str(corpus), "cpu_count": os.cpu_count()}
    _stages(corpus, results)
    if not args.skip_job:
        _whole_job(corpus, results)
    _beside_others(corpus, results)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
