"""Bytes through GroupByKeys per input byte, for the whole default job (the scale issue's figure).

    python -m bench.shuffle_bytes INPUT_DIR [--baseline REF]

Runs `gristmill run --source articles=INPUT_DIR/*.jsonl` with 1 worker in one process (so the
partitions, phase 2 and the rest all run on this process's in-process runners) and counts the
encoded bytes every GroupByKey (Combine and CoGroupByKey included) receives, as
bench/scaling.py does. `--baseline REF` runs the same on git revision REF's code in the same
session (bench/scale.py's export). Prints one JSON line per code tree.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.scale import ROOT, _env, export_tree


def child(inputs: str) -> None:
    from bench.scaling import shuffle_rows, shuffle_tally
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp, shuffle_tally() as tally:
        cfg = load(None, ["runner.workers=1"], [f"articles={inputs}/*.jsonl"], output=tmp)
        manifest = run_job(cfg)
        rows = shuffle_rows(tally)
    total_in = sum(i["bytes"] for i in manifest["inputs"])
    total = sum(r["bytes"] for r in rows)
    print(
        json.dumps(
            {
                "input_mb": round(total_in / 1e6, 1),
                "shuffle_mb": round(total / 1e6, 1),
                "per_input_byte": round(total / total_in, 3),
                "largest": [(r["gbk"], round(r["bytes"] / 1e6, 2)) for r in rows[:5]],
            }
        )
    )


def _run(inputs: str, tree: Path | None) -> dict:
    cmd = [sys.executable, "-m", "bench.shuffle_bytes", inputs, "--child"]
    env = _env(tree)  # the tree first, then this checkout for bench/; run from the tree's folder
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)]))
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, check=False, cwd=tree or None
    )
    if out.returncode != 0:
        raise SystemExit(f"bench/shuffle_bytes: the job failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m bench.shuffle_bytes")
    parser.add_argument("inputs", help="a folder of .jsonl files (bench/corpus_gen.py)")
    parser.add_argument("--baseline", help="git revision to run beside the current code")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.inputs)
        return []
    got = []
    with tempfile.TemporaryDirectory() as tmp:
        trees = [("current", None)]
        if args.baseline:
            trees.insert(0, (args.baseline, export_tree(args.baseline, Path(tmp))))
        for name, tree in trees:
            row = {"code": name, **_run(args.inputs, tree)}
            print(json.dumps(row), flush=True)
            got.append(row)
    return got


if __name__ == "__main__":
    main()
