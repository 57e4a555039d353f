"""Peak memory of the dedup stages on 1x and 10x the input.

    python bench/dedup_memory.py [--corpus ../shared/corpus] [--docs 2000] [--in-memory]

1x is `--docs` distinct documents of real text cut into 2-5 KB pieces (books, Shakespeare, State
of the Union, Wikipedia: bench/dedup.py's reader). 10x is each of them followed by nine variants
(two exact copies, seven copies with 0.5%..5% of words edited), so the stages also meet ten times
the duplicates. Both are JSON lines. Each (job, size) runs in its own subprocess on Beam's
FnApiRunner in multi_processing mode with one worker: the controller process stands in for the
runner's shuffle service (it holds every shuffled PCollection, as Dataflow's shuffle would on its
own machines); the SDK worker process runs every DoFn, and its peak is "memory per worker".
Jobs:
- `dedup`: read, parse, dedup_exact, dedup_near (defaults, no index files), count;
- `control`: read, parse, a GroupByKey by id, count: what the runner's own buffers (gRPC, data
  channel queues of up to 5 x 10 MB in and 100 MB out per worker) cost at each size.
Peak resident memory comes from the kernel: ru_maxrss of the process and of its waited-for
children (the worker). `--in-memory` adds the single-process mode. `main(argv)` returns the
numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dedup import DEFAULT_CORPUS, chop, edit, read_texts  # noqa: E402

TARGET = 1.3


def write_inputs(corpus: Path, docs: int, out: Path) -> dict[int, Path]:
    rng = random.Random(0)
    pieces = [p for _, name, t in read_texts(corpus) if "moby" not in name for p in chop(t, rng)]
    rng.shuffle(pieces)
    if len(pieces) < docs:
        raise SystemExit(f"bench/dedup_memory: the corpus holds {len(pieces)} pieces, need {docs}")
    vocab = sorted({w for p in pieces[:200] for w in p.split()})
    paths = {1: out / "docs-1x.jsonl", 10: out / "docs-10x.jsonl"}
    with paths[1].open("w", encoding="utf-8") as one, paths[10].open("w", encoding="utf-8") as ten:
        for i, text in enumerate(pieces[:docs]):
            row = {"id": f"d{i:06d}-0", "source": f"s{i % 3}", "text": text}
            one.write(json.dumps(row) + "\n")
            ten.write(json.dumps(row) + "\n")
            for k in range(1, 10):
                words = text.split() if k < 3 else edit(text.split(), 0.005 * (k - 2), vocab, rng)
                row = {"id": f"d{i:06d}-{k}", "source": f"s{i % 3}", "text": " ".join(words)}
                ten.write(json.dumps(row) + "\n")
    return paths


def _peak_kib_self() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(path: str, mode: str, job: str) -> None:
    """Runs the dedup stages on one input; prints peak RSS (KiB) of this process and its workers."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from gristmill.schemas.records import Document
    from gristmill.transforms import dedup_exact, minhash
    from gristmill.transforms.accounting import StageContext
    from gristmill.transforms.dedup_params import defaults

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    section = defaults()
    section["index"]["enabled"] = False
    options = PipelineOptions(
        [
            "--direct_num_workers=1",
            f"--direct_running_mode={mode}",
            "--default_sdk_harness_log_level=ERROR",
        ]
    )
    counts = Path(path).with_suffix(f".{mode}.{job}.counts")

    def parse(line: str) -> Document:
        row = json.loads(line)
        return Document(row["id"], row["source"], "bench", row["text"])

    def save(n: int) -> None:
        counts.write_text(str(n))

    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        beam.Pipeline(runner=FnApiRunner(), options=options) as p,
    ):
        docs = p | beam.io.ReadFromText(path) | beam.Map(parse)
        if job == "control":
            kept = docs | beam.Map(lambda d: (d.id, d)) | beam.GroupByKey() | beam.Values()
        else:
            ctx = StageContext("dedup_exact", tmp, 0, {})
            kept, _, _ = docs | "Exact" >> dedup_exact.build(section, ctx)
            ctx = StageContext("dedup_near", tmp, 0, {})
            kept, _, _ = kept | "Near" >> minhash.build(section, ctx)
        kept | beam.combiners.Count.Globally() | beam.Map(save)
    print(
        json.dumps(
            {
                "controller_kib": _peak_kib_self(),
                "worker_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                "seconds": round(time.perf_counter() - started, 1),
                "kept": int(counts.read_text()),
            }
        )
    )


def measure(path: Path, mode: str, job: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--mode", mode, "--job", job],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--in-memory", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--mode", default="multi_processing")
    parser.add_argument("--job", default="dedup")
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.mode, args.job)
        return {}
    corpus = Path(args.corpus)
    if not (corpus / "books").is_dir():
        print(
            f"bench/dedup_memory: {corpus} not found; it needs the real corpus. Nothing measured."
        )
        return {}
    modes = ["multi_processing"] + (["in_memory"] if args.in_memory else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_inputs(corpus, args.docs, Path(tmp))
        for mode in modes:
            for job in ("dedup", "control"):
                for scale in (1, 10):
                    got = measure(paths[scale], mode, job)
                    worker = got["worker_kib"] / 1024 if mode != "in_memory" else None
                    rows.append(
                        {
                            "mode": mode,
                            "job": job,
                            "input": f"{scale}x",
                            "mb": round(paths[scale].stat().st_size / 1e6, 1),
                            "kept": got["kept"],
                            "worker_peak_mb": round(worker, 1) if worker else "",
                            "controller_peak_mb": round(got["controller_kib"] / 1024, 1),
                            "seconds": got["seconds"],
                        }
                    )
    peak = {(r["job"], r["input"]): r["worker_peak_mb"] for r in rows if r["mode"] == modes[0]}
    ratio = round(peak[("dedup", "10x")] / peak[("dedup", "1x")], 3)
    control = round(peak[("control", "10x")] / peak[("control", "1x")], 3)
    cols = list(rows[0])
    print("Peak RSS, dedup stages vs a GroupByKey-only control (other jobs shared the 2 cores)")
    print("  ".join(cols))
    for r in rows:
        print("  ".join(str(r[c]) for c in cols))
    print(
        f"worker peak 10x / 1x: dedup {ratio} (target <= {TARGET}), control {control}; "
        f"dedup minus control at 10x: {peak[('dedup', '10x')] - peak[('control', '10x')]:.1f} MB, "
        f"at 1x: {peak[('dedup', '1x')] - peak[('control', '1x')]:.1f} MB"
    )
    return {"rows": rows, "worker_ratio_10x_1x": ratio, "control_ratio": control, "target": TARGET}


if __name__ == "__main__":
    main()
