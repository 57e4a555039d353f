"""Peak memory of the dedup stages on 1x and 10x the input: per worker, and in the runner.

    python -m bench.dedup_memory [--corpus ../shared/corpus] [--docs 2000] [--workers 2]
                                 [--transport stock,bounded] [--malloc stock,trimmed]
                                 [--baseline REF] [--in-memory]

1x is `--docs` distinct documents of real text cut into 2-5 KB pieces (books, Shakespeare, State
of the Union, Wikipedia: bench/dedup.py's reader). 10x is each of them followed by nine variants
(two exact copies, seven copies with 0.5%..5% of words edited), so the stages also meet ten times
the duplicates. Both are JSON lines.

Each (tree, job, size) runs in its own subprocess on Beam's FnApiRunner with `--workers` SDK
worker processes. The two kinds of process hold different things:
- a worker runs every DoFn of ours, and its peak is "memory per worker", the figure the target
  (10x within 1.3x of 1x) is about;
- the runner process holds every shuffled PCollection whole (the local runner's shuffle is a dict
  in memory), so it grows with the input by design; on Dataflow, Flink or Spark the shuffle lives
  in a service or on disk.
Two transports between them (`--transport`):
- `stock`: Beam's multi_processing mode. It ships a stage's input to each worker as one bundle, a
  grouped (GroupByKey) input as a single message of 1/workers of the grouped PCollection, sent
  whole before the bundle starts, and each worker queues up to 100 MB of output in 10 MB
  messages: worker memory that grows with the input however little our code holds;
- `bounded`: what `gristmill run --workers N` uses (runners/local.py): input in 1 MB pieces sent
  while the bundle runs (runners/beam_private.py), workers with 1 MB output messages and
  4 MB queues (runners/beam_private.py), gRPC data messages of about 1 MB both ways, and glibc's
  trimmed allocator; always with `trimmed`.
The `largest_group_msg_mb` column is the largest grouped message; the `control` job (read,
parse, one GroupByKey of the documents by id, count) shows what the transport costs with no
dedup code at all; `--jobs ...,flatten` adds a job whose GroupByKey is fed by a Flatten of two
earlier stages' outputs, as the dedup joins are (`--docs 6000`, 21.7 -> 213 MB of input: it
grew 215.9 -> 302.2 MB while the worker's gRPC messages could reach 10 MB, 195.8 -> 208.2 since).

Peaks come from the kernel: the runner's VmHWM and the largest ru_maxrss of its waited-for
children (the workers). A thread samples every process's RSS every 0.1 s to name the stage
running when a worker peaked. `--baseline REF` runs the dedup job a second time on the git
revision REF of transforms/, schemas/ and runners/ (exported to a temporary directory and put
first on PYTHONPATH, which the workers inherit; on the bounded transport when that is measured),
so one run prints before and after side by side.
`--in-memory` adds the single-process mode. Dedup is deterministic, so every run of a job on one
input must keep the same number of documents: a `kept differs` line names runs that did not
(Beam's own transport at 30x: 19,885 to 23,898 where ours and one process keep 19,641).
`main(argv)` returns the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.dedup_data import DEFAULT_CORPUS, chop, edit, read_texts
from bench.dedup_memory_child import child

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


TARGET = 1.3
# glibc keeps freed memory for reuse: with these, blocks of 64 KiB or more are unmapped when
# freed and the heap is trimmed, so a process's RSS follows what it holds (Dask's workers set the
# trim threshold the same way); two arenas instead of eight per core for the gRPC threads.
TRIMMED = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": "65536",
    "MALLOC_TRIM_THRESHOLD_": "65536",
}
MALLOC = {"stock": {}, "trimmed": TRIMMED}


def write_inputs(corpus: Path, docs: int, out: Path, scales=(1, 10)) -> dict[int, Path]:
    rng = random.Random(0)
    pieces = [p for _, name, t in read_texts(corpus) if "moby" not in name for p in chop(t, rng)]
    rng.shuffle(pieces)
    if len(pieces) < docs:
        raise SystemExit(f"bench/dedup_memory: the corpus holds {len(pieces)} pieces, need {docs}")
    vocab = sorted({w for p in pieces[:200] for w in p.split()})
    paths = {s: out / f"docs-{s}x.jsonl" for s in scales}
    files = {s: path.open("w", encoding="utf-8") for s, path in paths.items()}
    try:
        for i, text in enumerate(pieces[:docs]):
            # copy k of a document: two exact copies, then edits of 0.5% to 3.5% of the words
            for k in range(max(scales)):
                rate = 0.005 * ((k - 3) % 7 + 1)
                words = text.split() if k < 3 else edit(text.split(), rate, vocab, rng)
                row = {"id": f"d{i:06d}-{k}", "source": f"s{i % 3}", "text": " ".join(words)}
                line = json.dumps(row if k else {**row, "text": text}) + "\n"
                for s, fh in files.items():
                    if k < s:
                        fh.write(line)
    finally:
        for fh in files.values():
            fh.close()
    return paths


BASELINE_PARTS = ("transforms", "schemas", "runners")


def baseline_tree(ref: str, out: Path) -> Path:
    """A directory holding the `gristmill` package (transforms, schemas, runners) as of `ref`."""
    src = out / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "gristmill", *BASELINE_PARTS],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pkg = out / "pkg" / "gristmill"
    shutil.copytree(src / "gristmill", pkg)
    for part in BASELINE_PARTS:
        shutil.copytree(src / part, pkg / part)
    return out / "pkg"


# ---- the driver --------------------------------------------------------------------------------


def measure(
    path: Path, job: str, args, tree: Path | None, malloc: str, mode: str, transport: str
) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in TRIMMED}
    env.update(MALLOC[malloc])
    # the child imports bench.* from this checkout, and gristmill from `tree` when given
    paths = [str(tree)] if tree is not None else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(ROOT), env.get("PYTHONPATH", "")]).rstrip(":")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.dedup_memory",
            "--child",
            str(path),
            "--mode",
            mode,
            "--job",
            job,
        ]
        + ["--workers", str(args.workers), "--transport", transport],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=path.parent,  # not the repository: `python -m` workers put their cwd first on sys.path
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if tree is not None and not all(c.startswith(str(tree)) for c in got["code"]):
        raise SystemExit(f"bench/dedup_memory: the baseline ran {got['code']}, not {tree}")
    return got


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", help="a git revision to measure side by side (e.g. HEAD)")
    parser.add_argument("--malloc", default="stock,trimmed", help="allocator settings to run")
    parser.add_argument(
        "--transport",
        default="stock,bounded",
        help="Beam's multi_processing workers (stock) and gristmill's local runner (bounded)",
    )
    parser.add_argument(
        "--scales", default="1,10", help="input sizes, in copies of each document (1 and 10 always)"
    )
    parser.add_argument(
        "--jobs", default="dedup,control", help="dedup, control, flatten (see the module doc)"
    )
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--mode", default="multi_processing")
    parser.add_argument("--job", default="dedup")
    return parser


def _runs(args, transports: list[str], mallocs: list[str], tmp: Path) -> list[tuple]:
    """Every (tree, its path, malloc, mode, job, transport) to measure, the baseline first."""
    runs: list[tuple[str, Path | None, str, str, str, str]] = []
    if args.baseline:
        base = baseline_tree(args.baseline, tmp / "base")
        # on the transport measured now: the local runner's (bounded) when it is asked for
        transport = "bounded" if "bounded" in transports else "stock"
        malloc = "trimmed" if transport == "bounded" else "stock"
        runs.append((args.baseline, base, malloc, "multi_processing", "dedup", transport))
    for job in args.jobs.split(","):
        if "stock" in transports:
            runs += [("current", None, m, "multi_processing", job, "stock") for m in mallocs]
        if "bounded" in transports:  # the local runner sets the trimmed allocator itself
            runs.append(("current", None, "trimmed", "multi_processing", job, "bounded"))
        if args.in_memory:
            runs.append(("current", None, "stock", "in_memory", job, "stock"))
    return runs


def _measure_runs(runs: list[tuple], paths: dict[int, Path], scales: list[int], args) -> list[dict]:
    """Each run on each input size, one subprocess each; a table row per measurement."""
    rows = []
    for name, tree, malloc, mode, job, transport in runs:
        for scale in scales:
            got = measure(paths[scale], job, args, tree, malloc, mode, transport)
            in_memory = mode == "in_memory"
            rows.append(
                {
                    "tree": name,
                    "malloc": malloc,
                    "transport": transport,
                    "mode": mode if in_memory else f"{mode} x{args.workers}",
                    "job": job,
                    "input": f"{scale}x",
                    "mb": round(paths[scale].stat().st_size / 1e6, 1),
                    "kept": got["kept"],
                    "worker_peak_mb": "" if in_memory else round(got["worker_kib"] / 1024, 1),
                    "runner_peak_mb": round(got["runner_kib"] / 1024, 1),
                    "largest_group_msg_mb": round(got["largest_group_msg_kib"] / 1024, 1),
                    "seconds": got["seconds"],
                    "worker_peak_stage": "" if in_memory else got["worker_peak_stage"],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    if args.child:
        child(args.child, args.mode, args.job, args.workers, args.transport)
        return {}
    corpus = Path(args.corpus)
    if not (corpus / "books").is_dir():
        print(
            f"bench/dedup_memory: {corpus} not found; it needs the real corpus. Nothing measured."
        )
        return {}
    mallocs = args.malloc.split(",")
    scales = sorted({1, 10, *(int(x) for x in args.scales.split(","))})
    transports = args.transport.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_inputs(corpus, args.docs, Path(tmp), scales)
        runs = _runs(args, transports, mallocs, Path(tmp))
        rows = _measure_runs(runs, paths, scales, args)
    return report(rows)


def report(rows: list[dict]) -> dict:
    cols = list(rows[0])
    print("Peak RSS of the dedup stages and of a GroupByKey-only control (2 cores, shared)")
    print("  ".join(cols))
    for r in rows:
        print("  ".join(str(r[c]) for c in cols))
    ratios = {}
    peaks: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if r["worker_peak_mb"] != "":
            key = (r["tree"], r["malloc"], r["transport"], r["job"])
            peaks.setdefault(key, {})[r["input"]] = (r["worker_peak_mb"], r["runner_peak_mb"])
    for (tree, malloc, transport, job), got in peaks.items():
        if not {"1x", "10x"} <= set(got):
            continue
        worker = round(got["10x"][0] / got["1x"][0], 3)
        runner = round(got["10x"][1] / got["1x"][1], 3)
        ratios[f"{tree} {malloc} {transport} {job}"] = {"worker": worker, "runner": runner}
        extra = ""
        control = peaks.get(("current", malloc, transport, "control"), {})
        if job == "dedup" and set(control) == set(got):
            extra = ", worker minus control: " + ", ".join(
                f"{s} {got[s][0] - control[s][0]:.0f} MB" for s in got
            )
        larger = "".join(
            f", {s}: worker {got[s][0] / got['1x'][0]:.3f}" for s in got if s not in ("1x", "10x")
        )
        print(
            f"10x / 1x, {tree} tree, {malloc} malloc, {transport} transport, {job}: worker {worker} "
            f"(target <= {TARGET}), runner {runner}{extra}{larger}"
        )
    disagree = _disagreements(rows)
    for line in disagree:
        print(line)
    return {"rows": rows, "ratios_10x_1x": ratios, "target": TARGET, "disagree": disagree}


def _disagreements(rows: list[dict]) -> list[str]:
    """Runs of one job on one input that kept different numbers of documents: dedup is
    deterministic, so one of them lost or duplicated data on its way through the runner."""
    kept: dict[tuple[str, str], dict[int, list[str]]] = {}
    for r in rows:
        run = f"{r['tree']}/{r['malloc']}/{r['transport']}"
        kept.setdefault((r["job"], r["input"]), {}).setdefault(r["kept"], []).append(run)
    return [
        f"kept differs, {job} {size}: "
        + "; ".join(f"{n} by {', '.join(runs)}" for n, runs in sorted(by_count.items()))
        for (job, size), by_count in kept.items()
        if len(by_count) > 1
    ]


if __name__ == "__main__":
    main()
