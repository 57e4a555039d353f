"""Scaling of the local runner (issue 7; the README's "scale on paper").

    python -m bench.scaling [--corpus ../shared/corpus] [--fraction 0.1]

The whole job (every stage the defaults enable, on bench/run.py's `--source` inputs) runs three
times, each in its own subprocess on the FnApiRunner through gristmill's local profile: 1x with 1
worker and with 2 (throughput), 10x with 2 (memory). 1x is `--fraction` of each source kind, all
distinct real text (copies would only feed dedup): every 10th Shakespeare file, mail message,
SOTU line and Wikipedia page, and of the few big Gutenberg books and WARC files the one nearest a
tenth of its group's bytes. 10x is ten times the fraction: by default the bench corpus itself.

- throughput: input MB per wall second, per worker, and per CPU-second of driver + workers (the
  kernel's count: the 2 cores are shared with other jobs); 1x to 10x gives the marginal rate, past
  the fixed cost of start-up, model loads and the job's tail;
- peak memory (VmHWM from /proc, Linux only) of the driver, which as the runner holds every
  shuffled PCollection, and of each SDK worker process, read every 0.2 s from outside. With
  `runner.workers=1` the runner is in_memory: the driver is the worker;
- each stage's execution seconds (the job's own timings, summed over workers) as job-input MB
  per core-second: the rates that "scale on paper" multiplies out;
- shuffle: the encoded bytes the runner's grouping buffers receive (exact: what would cross a
  shuffle) per GroupByKey (CoGroupByKey and Combine included), beside Beam's estimate from its
  monitoring infos (sampled mean element size x element count).
`main(argv)` returns the figures.
"""

from __future__ import annotations

import argparse
import bz2
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.proc_memory import TreeSampler, role

HERE = Path(__file__).resolve().parent


__all__ = ["TreeSampler", "role"]

RUNS = [("1x", 1), ("1x", 2), ("10x", 2)]  # (input, workers)

# ---- inputs ------------------------------------------------------------------------------------


def closest(sizes: dict[str, int], fraction: float) -> str:
    """The name whose size is nearest `fraction` of the total: big files can't be cut."""
    target = fraction * sum(sizes.values())
    return min(sorted(sizes), key=lambda n: abs(sizes[n] - target))


def split_wiki(xml: str) -> tuple[str, list[str], str]:
    """(head, pages, tail) of a MediaWiki export, so that a subset stays a valid export."""
    start, end = xml.index("  <page>"), xml.rindex("</page>") + len("</page>\n")
    pages = [p + "</page>\n" for p in xml[start:end].split("</page>\n") if p.strip()]
    return xml[:start], pages, xml[end:]


def write_inputs(corpus: Path, fraction: float, out: Path) -> Path:
    """A tree shaped like the corpus holding `fraction` of each source kind (see the docstring)."""
    if fraction >= 1:
        return corpus
    step = round(1 / fraction)
    for group in ("books/*.txt", "web/*.warc*"):
        sizes = {p.name: p.stat().st_size for p in corpus.glob(group)}
        dest = out / group.split("/")[0]
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(corpus / group.split("/")[0] / closest(sizes, fraction), dest)
    for folder in [corpus / "books/shakespeare", *sorted(corpus.glob("email/spamassassin/*"))]:
        dest = out / folder.relative_to(corpus)
        dest.mkdir(parents=True)
        for p in sorted(folder.glob("*.txt"))[::step]:
            shutil.copy(p, dest)
    (out / "articles").mkdir(exist_ok=True)
    lines = (corpus / "articles/sotu.jsonl").read_text(encoding="utf-8").splitlines(True)
    (out / "articles/sotu.jsonl").write_text("".join(lines[::step]), encoding="utf-8")
    head, pages, tail = split_wiki(
        bz2.decompress((corpus / "articles/enwiki-sample.xml.bz2").read_bytes()).decode("utf-8")
    )
    wiki = head + "".join(pages[::step]) + tail
    (out / "articles/enwiki-sample.xml.bz2").write_bytes(bz2.compress(wiki.encode("utf-8")))
    return out


# ---- memory: the process tree under the driver -------------------------------------------------


# ---- shuffle: what the runner's grouping buffers receive ---------------------------------------


@contextmanager
def shuffle_tally() -> Iterator[dict[str, Any]]:
    """Counts the encoded bytes each GroupByKey receives (Beam's private FnApiRunner classes,
    checked against apache-beam 2.77), and keeps the RunnerResult for its monitoring infos."""
    from apache_beam.runners.portability.fn_api_runner import execution, fn_runner

    tally: dict[str, Any] = {"bytes": {}, "gbks": {}, "results": []}
    lock = threading.Lock()
    base_get, base_append = (
        execution.BundleContextManager.get_buffer,
        execution.GroupingBuffer.append,
    )
    base_run = fn_runner.FnApiRunner.run_stages

    def get_buffer(self, buffer_id, transform_id):
        buf = base_get(self, buffer_id, transform_id)
        kind, name = execution.split_buffer_id(buffer_id)
        if kind == "group":
            buf._scaling_gbk = name
            comps = self.execution_context.pipeline_components
            gbk = comps.transforms[name]
            tally["gbks"].setdefault(
                name, (gbk.unique_name, next(iter(gbk.inputs.values())), comps)
            )
        return buf

    def append(self, elements_data: bytes) -> None:
        with lock:
            key = getattr(self, "_scaling_gbk", "?")
            tally["bytes"][key] = tally["bytes"].get(key, 0) + len(elements_data)
        base_append(self, elements_data)

    def run_stages(self, *args, **kwargs):
        result = base_run(self, *args, **kwargs)
        tally["results"].append(result)
        return result

    execution.BundleContextManager.get_buffer = get_buffer
    execution.GroupingBuffer.append = append
    fn_runner.FnApiRunner.run_stages = run_stages
    try:
        yield tally
    finally:
        execution.BundleContextManager.get_buffer = base_get
        execution.GroupingBuffer.append = base_append
        fn_runner.FnApiRunner.run_stages = base_run


def feeding(pcoll: str, comps: Any) -> list[str]:
    """The PCollections whose elements reach a GBK input: it, or a Flatten's inputs."""
    for t in comps.transforms.values():
        if pcoll in t.outputs.values() and t.spec.urn == "beam:transform:flatten:v1":
            return [p for i in t.inputs.values() for p in feeding(i, comps)]
    return [pcoll]


def sampled_bytes(infos: list, pcolls: set[str]) -> dict[str, tuple[int, float]]:
    """pcoll -> (elements, estimated bytes = sampled mean size x elements). The distribution's
    sum covers only the sampled elements (10 at first, then ever sparser), not all of them."""
    from apache_beam.metrics import monitoring_infos as mi

    counts: dict[str, int] = {}
    dists: dict[str, list[int]] = {}
    for info in infos:
        pcoll = info.labels.get("PCOLLECTION")
        if pcoll not in pcolls:
            continue
        if info.urn == mi.ELEMENT_COUNT_URN:
            counts[pcoll] = counts.get(pcoll, 0) + mi.extract_counter_value(info)
        elif info.urn == mi.SAMPLED_BYTE_SIZE_URN:
            n, total, _, _ = mi.extract_distribution(info)
            acc = dists.setdefault(pcoll, [0, 0])
            acc[0], acc[1] = acc[0] + n, acc[1] + total
    return {
        p: (counts.get(p, 0), dists[p][1] / dists[p][0] * counts.get(p, 0))
        for p in dists
        if dists[p][0]
    }


def shuffle_rows(tally: dict[str, Any]) -> list[dict]:
    """One row per GroupByKey, most bytes first."""
    infos = [i for r in tally["results"] for i in r.monitoring_infos()]
    feeds = {tid: feeding(pcoll, comps) for tid, (_, pcoll, comps) in tally["gbks"].items()}
    est = sampled_bytes(infos, {p for ps in feeds.values() for p in ps})
    rows = []
    for tid, (name, _, _) in tally["gbks"].items():
        got = [est[p] for p in feeds[tid] if p in est]
        rows.append(
            {
                "gbk": name,
                "elements": sum(n for n, _ in got) if got else None,
                "bytes": tally["bytes"].get(tid, 0),
                "sampled_estimate": round(sum(b for _, b in got)) if got else None,
            }
        )
    return sorted(rows, key=lambda r: -r["bytes"])


# ---- one run, in a subprocess ------------------------------------------------------------------


def child(inputs: str, workers: int) -> None:
    """Runs the whole job once; prints its figures as one JSON line."""
    from bench.run import _cli_sources
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp, shuffle_tally() as tally:
        cfg = load(None, [f"runner.workers={workers}"], _cli_sources(Path(inputs)), output=tmp)
        started = time.perf_counter()
        manifest = run_job(cfg)
        elapsed = time.perf_counter() - started
        timings = json.loads((Path(tmp) / "reports/run.json").read_text())["timings"]
        rows = shuffle_rows(tally)
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    got = {
        "input_bytes": sum(i["bytes"] for i in manifest["inputs"]),
        "documents": manifest["counts"]["documents"],
        "seconds": elapsed,
        "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
        "stage_seconds": timings.get("stages", {}),
        "driver_peak_mb": me.ru_maxrss * 1024 / 1e6,  # KiB on Linux: its VmHWM
        "shuffle": rows,
    }
    print(json.dumps(got))


def measure(inputs: Path, workers: int) -> dict:
    root = str(HERE.parent)  # the child imports bench.* from this checkout
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.scaling", "--child", str(inputs), "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,  # Beam's worker start-up logging; shown only if the run fails
        text=True,
    )
    load = os.getloadavg()[0]  # the cores are shared: how busy they were as the run began
    sampler = TreeSampler(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    peaks = sampler.stop()
    if proc.returncode:
        print(stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"bench/scaling: the {workers}-worker run on {inputs} failed")
    got = json.loads(stdout.strip().splitlines()[-1])
    got["peaks"], got["load_1m"] = peaks, load
    return got


# ---- report ------------------------------------------------------------------------------------


def _run_row(size: str, workers: int, got: dict) -> dict:
    mb = got["input_bytes"] / 1e6
    return {
        "input": size,
        "workers": workers,
        "input_mb": round(mb, 2),
        "seconds": round(got["seconds"], 1),
        "cpu_s": round(got["cpu_s"], 1),
        "mb_per_s": round(mb / got["seconds"], 3),
        "mb_per_s_per_worker": round(mb / got["seconds"] / workers, 3),
        "mb_per_cpu_s": round(mb / got["cpu_s"], 3),
        "driver_peak_mb": round(got["driver_peak_mb"], 1),
        "worker_peaks_mb": got["peaks"].get("worker", []) if workers > 1 else "in driver",
        "documents": got["documents"],
        "load_1m": round(got["load_1m"], 1),
    }


def _stage_rows(runs: dict[tuple[str, int], dict]) -> list[dict]:
    """Job-input MB per core-second of each stage: input MB / the stage's execution seconds."""
    stages: list[str] = []  # flow order, as the job reports them
    for got in runs.values():
        stages += [s for s in got["stage_seconds"] if s not in stages]
    rows = []
    for stage in stages:
        row: dict[str, Any] = {"stage": stage}
        for (size, workers), got in runs.items():
            secs = got["stage_seconds"].get(stage)
            row[f"{size} {workers}w"] = round(got["input_bytes"] / 1e6 / secs, 2) if secs else ""
        rows.append(row)
    return rows


def _shuffle(got: dict) -> dict:
    rows = got["shuffle"]
    total = sum(r["bytes"] for r in rows)
    return {
        "shuffle_mb": round(total / 1e6, 2),
        "per_input_byte": round(total / got["input_bytes"], 3),
        "sampled_estimate_mb": round(sum(r["sampled_estimate"] or 0 for r in rows) / 1e6, 2),
        "gbks": len(rows),
        "gbks_with_data": sum(1 for r in rows if r["bytes"]),
        "top": rows[:5],
    }


def summarize(runs: dict[tuple[str, int], dict]) -> dict:
    """The figures issue 7 and "scale on paper" ask for, from the raw runs."""
    table = {key: _run_row(*key, got) for key, got in runs.items()}
    one1, one2, ten2 = table[("1x", 1)], table[("1x", 2)], table[("10x", 2)]
    # Between 1x and 10x the fixed cost (start-up, model loads, the job's tail) cancels out.
    d_mb = ten2["input_mb"] - one2["input_mb"]

    def rate(key: str) -> float | None:  # None: other jobs' load swamped the difference
        spent = ten2[key] - one2[key]
        return round(d_mb / spent, 3) if spent > 0 else None

    return {
        "runs": list(table.values()),
        "speedup_2w_over_1w": round(one2["mb_per_s"] / one1["mb_per_s"], 3),
        "marginal_2w": {
            "mb_per_s": rate("seconds"),
            "mb_per_cpu_s": rate("cpu_s"),
        },
        "worker_peak_10x_over_1x": round(
            max(ten2["worker_peaks_mb"]) / max(one2["worker_peaks_mb"]), 3
        ),
        "driver_peak_10x_over_1x": round(ten2["driver_peak_mb"] / one2["driver_peak_mb"], 3),
        "per_stage_mb_per_core_s": _stage_rows(runs),
        "shuffle": {size: _shuffle(got) for (size, w), got in runs.items() if w == 2},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default=str(HERE.parent.parent / "shared" / "corpus"))
    parser.add_argument("--fraction", type=float, default=0.1, help="1x, of each source kind")
    parser.add_argument("--child")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.workers)
        return {}
    corpus = Path(args.corpus)
    if not Path("/proc/self/status").exists():
        print("bench/scaling: reads peak memory from /proc (Linux). Nothing measured.")
        return {}
    if not (corpus / "books").is_dir():
        print(f"bench/scaling: {corpus} not found; it needs the real corpus. Nothing measured.")
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {
            "1x": write_inputs(corpus, args.fraction, Path(tmp) / "1x"),
            "10x": write_inputs(corpus, args.fraction * 10, Path(tmp) / "10x"),
        }
        runs = {(size, w): measure(trees[size], w) for size, w in RUNS}
    out = summarize(runs)
    report(out)
    return out


def report(out: dict) -> None:
    from bench.tables import table

    runs = out["runs"]
    print(table(runs, list(runs[0]), "Local runner scaling: the whole job on the FnApiRunner"))
    m = out["marginal_2w"]
    print(
        f"2 workers / 1 worker, MB/s at 1x: {out['speedup_2w_over_1w']}; 1x to 10x, 2 workers: "
        f"{m['mb_per_s']} MB/s, {m['mb_per_cpu_s']} MB per CPU-second past the fixed cost; "
        f"peak 10x / 1x: worker {out['worker_peak_10x_over_1x']}, "
        f"driver {out['driver_peak_10x_over_1x']}\n"
    )
    stages = out["per_stage_mb_per_core_s"]
    title = "Job-input MB per core-second of each stage (its execution time, summed over workers)"
    print(table(stages, list(stages[0]), title))
    for size, sh in out["shuffle"].items():
        title = (
            f"\nShuffle at {size}, 2 workers: {sh['shuffle_mb']} MB into {sh['gbks_with_data']} "
            f"of {sh['gbks']} GroupByKeys = {sh['per_input_byte']} bytes per input byte (Beam's "
            f"sampled estimate: {sh['sampled_estimate_mb']} MB); the largest five:"
        )
        print(table(sh["top"], list(sh["top"][0]), title))


if __name__ == "__main__":
    main()
