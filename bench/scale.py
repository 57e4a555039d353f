"""The local run at scale: memory, speed and resume on generated corpora (the scale issue).

    python -m bench.scale [--sizes 200,2000] [--workers 1,2] [--baseline REF] [--gen DIR]
                          [--corpus ../shared/corpus] [--kill-at 0.6]

Inputs are JSON lines made by bench/corpus_gen.py from the real corpus (copies and edited
copies, so dedup has work), generated once into `--gen` and reused. Each run is the whole
default job (`gristmill run --source articles=DIR`) in its own process tree; measured from
outside: wall seconds, CPU seconds of every process (the kernel's count of the tree's
children), and the peak of the summed resident memory of all its processes, sampled every
0.2 s. `--baseline REF` runs the same job on the code of git revision REF (its `pipelines`,
`transforms`, `runners`, `schemas` exported and put first on PYTHONPATH) in the same
session, for before/after figures. `--kill-at F` also kills the largest run with SIGKILL at
F of its uninterrupted wall time, reruns it, and compares the two releases byte for byte.
`main(argv)` returns the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.proc_memory import tree_pids

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_S = 0.2


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and every process under it, now."""
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class TotalRss(threading.Thread):
    """The largest sum of resident memory over a process tree, sampled from outside."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.peak, self._halt = root, 0, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(SAMPLE_S):
            self.peak = max(self.peak, _tree_rss(self.root))

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return round(self.peak / 1e6, 1)


def _env(tree: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


def run_job(
    inputs: Path,
    out: Path,
    workers: int,
    tree: Path | None,
    kill_after: float = 0,
    extra: tuple[str, ...] = (),
):
    """One whole job in its own process tree (`extra`: more command-line arguments): its
    figures (or None if killed)."""
    cmd = [
        sys.executable,
        "-c",
        "import sys; from gristmill.pipelines.cli import main; sys.exit(main())",
    ]
    cmd += ["run", "--source", f"articles={inputs}/*.jsonl", "--output", str(out), "--quiet"]
    cmd += ["--workers", str(workers), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    # in the tree's folder: `python -c` puts the working folder first on sys.path, and this
    # checkout's own gristmill/ would shadow the baseline's
    proc = subprocess.Popen(
        cmd, env=_env(tree), stderr=subprocess.PIPE, text=True, cwd=tree or None
    )
    sampler = TotalRss(proc.pid)
    sampler.start()
    try:
        if kill_after:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                _kill_tree(proc.pid)
                proc.wait()
                sampler.stop()
                return None
        err = proc.communicate()[1]
    finally:
        peak = sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"bench/scale: the job failed ({proc.returncode}): {err[-2000:]}")
    wall = time.monotonic() - started
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    mb = sum(p.stat().st_size for p in inputs.glob("*.jsonl")) / 1e6
    timings = json.loads((out / "reports" / "run.json").read_text()).get("timings", {})
    return {
        "input_mb": round(mb, 1),
        "workers": workers,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "mb_per_cpu_s": round(mb / cpu, 3),
        "mb_per_wall_s": round(mb / wall, 3),
        "peak_rss_mb": peak,
        "phases_s": timings.get("phases"),
        "phase_peak_mb": timings.get("phase_peak_mb"),
    }


def _kill_tree(pid: int) -> None:
    """SIGKILL to a process and everything under it, children first seen."""
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for kid in kids:
        _kill_tree(int(kid))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def release_digest(out: Path) -> str:
    """Every file of a release but the reports and the manifest's created_at, hashed."""
    h = hashlib.sha256()
    for path in sorted(p for p in out.rglob("*") if p.is_file() and "reports" not in p.parts):
        data = path.read_bytes()
        if path.name == "manifest.json":
            manifest = json.loads(data)
            manifest.pop("created_at", None)
            data = json.dumps(manifest, sort_keys=True).encode()
        h.update(str(path.relative_to(out)).encode() + b"\0" + data)
    return h.hexdigest()


def export_tree(ref: str, dest: Path) -> Path:
    """REF's code as an importable `gristmill` package under dest."""
    src = dest / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    pkg = dest / "tree" / "gristmill"
    shutil.copytree(src / "gristmill", pkg)
    for name in ("pipelines", "transforms", "runners", "schemas"):
        shutil.copytree(src / name, pkg / name)
    return dest / "tree"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--sizes", default="200,2000", help="input MB, comma-separated")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--baseline", help="git revision to run beside the current code")
    parser.add_argument("--baseline-sizes", default="200", help="sizes the baseline runs")
    parser.add_argument("--gen", default=str(ROOT / "bench" / "results" / "gen"))
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--kill-at", type=float, default=0.0)
    parser.add_argument("--baseline-only", action="store_true", help="skip the current code")
    parser.add_argument(
        "--current",
        help="run the current code from this git revision's exported tree (the working tree "
        "may then change while the bench runs)",
    )
    return parser


def _inputs(args, size: int) -> Path:
    from bench.corpus_gen import generate

    folder = Path(args.gen) / f"{size}mb"
    if not (folder / "_done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        generate(folder, size, Path(args.corpus))
        (folder / "_done").write_text("ok")
    return folder


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    if not Path(args.corpus).is_dir():
        print(f"bench/scale: {args.corpus} not found; it needs the real corpus. Nothing measured.")
        return {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = {} if args.baseline_only else {"current": None}
        if args.current and not args.baseline_only:
            trees["current"] = export_tree(args.current, Path(tmp) / "current")
        if args.baseline:
            trees[args.baseline] = export_tree(args.baseline, Path(tmp) / "baseline")
        for size in [int(s) for s in args.sizes.split(",")]:
            inputs = _inputs(args, size)
            for name, tree in trees.items():
                if name != "current" and str(size) not in args.baseline_sizes.split(","):
                    continue
                for workers in [int(w) for w in args.workers.split(",")]:
                    out = Path(tmp) / f"out-{name}-{size}-{workers}"
                    got = run_job(inputs, out, workers, tree)
                    rows.append({"code": name, **got})
                    print(json.dumps(rows[-1]), flush=True)
                    if (
                        args.kill_at
                        and name == "current"
                        and workers == max(int(w) for w in args.workers.split(","))
                    ):
                        rows[-1]["resume"] = _resume(
                            inputs, out, workers, got["wall_s"], args.kill_at, Path(tmp), tree
                        )
                        print(json.dumps(rows[-1]["resume"]), flush=True)
                    shutil.rmtree(out, ignore_errors=True)
    return {"runs": rows}


def _resume(inputs: Path, whole: Path, workers: int, wall: float, at: float, tmp: Path, tree=None):
    out = tmp / "resumed"
    assert run_job(inputs, out, workers, tree, kill_after=wall * at) is None
    again = run_job(inputs, out, workers, tree)
    same = release_digest(out) == release_digest(whole)
    shutil.rmtree(out, ignore_errors=True)
    return {
        "killed_at_s": round(wall * at, 1),
        "rerun_wall_s": again["wall_s"],
        "rerun_share": round(again["wall_s"] / wall, 3),
        "byte_identical": same,
    }


if __name__ == "__main__":
    main()
