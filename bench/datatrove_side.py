"""The default job beside datatrove with equivalent stages, on the same JSON lines input.

    python -m bench.datatrove_side DIR [--workers 1,2] [--dt-venv /tmp/dt-venv] [--baseline REF]

DIR holds `*.jsonl` files from bench/corpus_gen.py (`{"id", "text", "source"}` a line). For each
worker count N, two runs, each in its own process tree and measured the same way from outside
(bench/scale.py): wall seconds, CPU seconds of every process of the tree (the kernel's count of
reaped children), and the peak of the summed resident memory of all its processes, sampled
every 0.2 s. datatrove's worker pool forks from a forkserver that outlives its main process, so
its tree runs under a small child-subreaper process (Linux prctl) that reaps those orphans:
without it the pool's CPU seconds would be lost (measured: 0.9 instead of 22 s). Its few MB of
memory count on datatrove's side. The first tree reaps all its processes itself.

1. gristmill: `gristmill run --source articles=DIR/*.jsonl --output OUT --quiet --workers N`,
   the default job; then the same with `--set pii.residual.enabled=false` ("no NER audit"):
   the stage's pattern scrub without its spaCy re-scan of a 1% sample, which datatrove's
   regular-expression PIIFormatter has no counterpart for.
2. datatrove (installed from PyPI with its `processing` extra into the scratch venv `--dt-venv`,
   outside the repository; skipped with one line when that fails), one script running these
   LocalPipelineExecutor stages one after another, tasks = workers = N unless said:
   - read + filters: JsonlReader -> FTFYFormatter (mojibake and controls, NFC) ->
     LanguageFilter (every language, score > 0.65; fastText lid.176, the same local model file
     as the job's langid, placed in datatrove's asset cache so nothing is downloaded) ->
     GopherRepetitionFilter -> GopherQualityFilter (max 2,000,000 words, as the job) ->
     JsonlWriter -> ExactDedupSignature (xxhash64 of the whitespace-collapsed text);
   - ExactFindDedups; then ExactDedupFilter -> JsonlWriter -> MinhashDedupSignature (word
     5-grams, the job's bands x rows for threshold 0.8 over 128 permutations);
   - MinhashDedupBuckets (tasks = bands, workers = N); MinhashDedupCluster (1 task);
   - MinhashDedupFilter -> PIIFormatter (e-mail and public IP addresses) -> JsonlWriter (gzip);
   every stage's run counts into the one tree's figures.
   No C4 or FineWeb filters: the job applies them to `web` sources only, and this input is
   `articles`. Intermediate files are uncompressed JSON lines.

`--baseline REF` also runs the default job on the code of git revision REF (bench.scale's
exported tree), right after the current code's, so a change shows before and after in one run.

One JSON row per (tool, workers): input MB, wall s, CPU s, input MB per CPU-second, peak RSS MB,
documents out; then per worker count two ratio rows (the default job, the one without the audit):
gristmill's MB per CPU-second over datatrove's and its peak RSS over datatrove's. `main(argv)`
returns the rows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.filters import datatrove_python
from bench.scale import TotalRss, export_tree, run_job
from gristmill.transforms.dedup.params import DedupSettings, NearSettings, lsh_bands
from gristmill.transforms.langid import LangIdParams, default_model_path

# beyond datatrove[processing]: orjson (JsonlReader; its `io` extra) and aiohttp (LanguageFilter
# resolves its model's https URL through fsspec even when the file is cached)
PACKAGES = ("datatrove[processing]", "orjson", "aiohttp")
EXTRAS = "import fasttext, ftfy, xxhash, fasteners, orjson, aiohttp, datatrove.pipeline.dedup"

# run inside the datatrove venv before the measured run: the local fastText model where
# datatrove's cached_asset_path_or_download looks first (HF_ASSETS_CACHE from the environment)
PLANT_SCRIPT = """
import os, sys
from fsspec.core import strip_protocol
from huggingface_hub import cached_assets_path
from datatrove.utils.lid import FT176LID
folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder="ft176")
local = os.path.join(folder, strip_protocol(FT176LID.MODEL_URL).replace("/", "_"))
if not os.path.exists(local):
    os.symlink(sys.argv[1], local)
open(local + ".completed", "a").close()
"""

# the measured tree's root: a child subreaper that runs the command, then reaps what it orphaned
# (datatrove's pool workers are children of a forkserver that outlives the main process, so
# without it their CPU seconds never reach RUSAGE_CHILDREN)
REAP_SCRIPT = """
import ctypes, os, sys, time
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0):  # PR_SET_CHILD_SUBREAPER
    sys.exit("datatrove_side: prctl(PR_SET_CHILD_SUBREAPER) failed")
child = os.fork()
if child == 0:
    os.execv(sys.argv[1], sys.argv[1:])
status = os.waitpid(child, 0)[1]
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        if os.waitpid(-1, os.WNOHANG)[0] == 0:
            time.sleep(0.05)
    except ChildProcessError:
        break
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""

# the measured datatrove run: argv = INPUT WORK OUT WORKERS BANDS ROWS NGRAM MIN_SCORE; the
# `__main__` guard matters: the forkserver of datatrove's worker pool imports this file again
JOB_SCRIPT = """
import sys
from pathlib import Path
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (
    ExactDedupFilter, ExactDedupSignature, ExactFindDedups, MinhashDedupBuckets,
    MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature,
)
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter, LanguageFilter
from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter


def collapsed(doc) -> str:
    return " ".join(doc.text.split())


def main(inp, work, out, n, bands, rows, ngram, min_score):
    exact = ExactDedupConfig(content_getter=collapsed)
    minhash = MinhashConfig(n_grams=ngram, num_buckets=bands, hashes_per_bucket=rows)

    def run(name, steps, tasks=n):
        logs = str(work / "logs" / name)
        LocalPipelineExecutor(steps, tasks=tasks, workers=min(n, tasks), logging_dir=logs).run()

    def pad(folder):  # a rank that kept nothing writes no file; readers shard by file order
        (work / folder).mkdir(parents=True, exist_ok=True)
        for rank in range(n):
            (work / folder / f"{rank:05d}.jsonl").touch()

    def stage(folder):
        return JsonlWriter(str(work / folder), output_filename="${rank}.jsonl", compression=None)

    run("filter", [
        JsonlReader(inp, glob_pattern="*.jsonl"),
        FTFYFormatter(unescape_html=False, normalization="NFC"),
        LanguageFilter(languages=None, language_threshold=min_score),
        GopherRepetitionFilter(),
        GopherQualityFilter(max_doc_words=2_000_000),
        stage("filtered"),
        ExactDedupSignature(str(work / "exact_sigs"), config=exact, finder_workers=n),
    ])
    pad("filtered")
    run("exact_find", [
        ExactFindDedups(str(work / "exact_sigs"), str(work / "exact_dups"), config=exact)
    ])
    run("exact_filter", [
        JsonlReader(str(work / "filtered")),
        ExactDedupFilter(str(work / "exact_dups"), config=exact),
        stage("exact"),
        MinhashDedupSignature(str(work / "mh_sigs"), config=minhash),
    ])
    pad("exact")
    sigs, buckets, ids = (str(work / f) for f in ("mh_sigs", "mh_buckets", "mh_ids"))
    run("mh_buckets", [MinhashDedupBuckets(sigs, buckets, config=minhash)], tasks=bands)
    run("mh_cluster", [MinhashDedupCluster(buckets, ids, config=minhash)], tasks=1)
    run("mh_filter", [
        JsonlReader(str(work / "exact")),
        MinhashDedupFilter(ids),
        PIIFormatter(),
        JsonlWriter(out),
    ])


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], Path(a[1]), a[2], *(int(x) for x in a[3:7]), float(a[7]))
"""


def datatrove_ready(venv: Path) -> Path | None:
    """The venv's python with datatrove and what these stages import (fastText, ftfy, aiohttp),
    installed from PyPI when missing; None (and a message) when that cannot be done."""
    py = datatrove_python(venv)
    if py is None:
        return None
    check = [str(py), "-c", EXTRAS]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return py
    print(f"datatrove_side: installing {', '.join(PACKAGES)} into {venv} ...", file=sys.stderr)
    try:
        pip = [str(py), "-m", "pip", "install", "-q", *PACKAGES]
        subprocess.run(pip, check=True, capture_output=True, timeout=900)
        subprocess.run(check, check=True, capture_output=True)
    except (subprocess.SubprocessError, OSError) as err:
        print(f"datatrove_side: datatrove cannot be installed ({err}); nothing measured")
        return None
    return py


def measured(cmd: list[str], env: dict[str, str]) -> dict:
    """Wall s, CPU s of the whole tree and its summed-RSS peak for one command, as bench.scale."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, text=True)
        sampler = TotalRss(proc.pid)
        sampler.start()
        try:
            proc.wait()
        finally:
            peak = sampler.stop()
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            log.seek(0)
            last = [line for line in log.read().splitlines() if line.strip()][-1:]
            raise RuntimeError(f"exit {proc.returncode}: {' '.join(last)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_mb": peak}


def dedup_config() -> tuple[int, int, int, float]:
    """(bands, rows, word n-gram, threshold): the job's defaults, bands x rows as it picks them."""
    near, threshold = NearSettings(), DedupSettings().threshold
    if near.bands is not None and near.rows is not None:
        return near.bands, near.rows, near.ngram, threshold
    bands, rows = lsh_bands(threshold, near.num_perm, near.false_negative_weight)
    return bands, rows, near.ngram, threshold


def run_datatrove(py: Path, inputs: Path, tmp: Path, workers: int) -> dict:
    """The datatrove stages over `inputs` in one measured process tree, and the documents out."""
    work, out = tmp / f"dt-work-{workers}", tmp / f"dt-out-{workers}"
    script = tmp / "dt_job.py"
    script.write_text(JOB_SCRIPT)
    env = dict(os.environ, HF_ASSETS_CACHE=str(tmp / "hf-assets"), HF_HUB_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    plant = [str(py), "-c", PLANT_SCRIPT, LangIdParams().model_path or default_model_path()]
    subprocess.run(plant, env=env, check=True, capture_output=True)
    bands, rows, ngram, _ = dedup_config()
    args = [str(inputs), str(work), str(out), str(workers), str(bands), str(rows), str(ngram)]
    args.append(str(LangIdParams().min_score))
    got = measured([str(py), "-c", REAP_SCRIPT, str(py), str(script), *args], env)
    docs = 0
    for path in sorted(out.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            docs += sum(1 for _ in fh)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return {**got, "documents": docs}


# datatrove's PII step is two regular expressions; the job's pii stage also re-scans a 1% sample
# of its output with spaCy NER (the residual audit), a model in every process that scrubs
NO_AUDIT = ("--set", "pii.residual.enabled=false")


def run_gristmill(
    inputs: Path, tmp: Path, workers: int, extra: tuple[str, ...] = (), tree: Path | None = None
) -> dict:
    """The default job over `inputs` (bench.scale.run_job; `extra`: more arguments; `tree`: other
    code), and the documents it released."""
    out = tmp / f"gm-out-{workers}"
    got = run_job(inputs, out, workers, tree, extra=extra)
    docs = json.loads((out / "manifest.json").read_text())["counts"]["documents"]
    shutil.rmtree(out, ignore_errors=True)
    keep = ("wall_s", "cpu_s", "peak_rss_mb")
    return {key: got[key] for key in keep} | {"documents": docs}


def row(tool: str, workers: int, mb: float, got: dict) -> dict:
    return {
        "tool": tool,
        "workers": workers,
        "input_mb": round(mb, 1),
        "wall_s": got["wall_s"],
        "cpu_s": got["cpu_s"],
        "mb_per_cpu_s": round(mb / got["cpu_s"], 3),
        "peak_rss_mb": got["peak_rss_mb"],
        "documents": got["documents"],
    }


def ratio(ours: dict, theirs: dict) -> dict:
    return {
        "ratio": f"{ours['tool']} / datatrove",
        "workers": ours["workers"],
        "mb_per_cpu_s": round(ours["mb_per_cpu_s"] / theirs["mb_per_cpu_s"], 2),
        "peak_rss": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 2),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.datatrove_side")
    parser.add_argument("inputs", type=Path, help="a folder of *.jsonl from bench/corpus_gen.py")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--dt-venv", type=Path, default=Path("/tmp/dt-venv"))
    parser.add_argument("--baseline", help="git revision whose default job also runs")
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    args = _parser().parse_args(argv)
    inputs = args.inputs.resolve()
    files = sorted(inputs.glob("*.jsonl"))
    if not files:
        print(f"datatrove_side: no *.jsonl in {inputs}; nothing measured")
        return []
    py = datatrove_ready(args.dt_venv)
    if py is None:
        return []
    mb = sum(p.stat().st_size for p in files) / 1e6
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dt-side-") as tmp:
        tree = export_tree(args.baseline, Path(tmp) / "baseline") if args.baseline else None
        for workers in [int(w) for w in args.workers.split(",")]:
            ours = row("gristmill", workers, mb, run_gristmill(inputs, Path(tmp), workers))
            print(json.dumps(ours), flush=True)
            if tree is not None:
                old = run_gristmill(inputs, Path(tmp), workers, tree=tree)
                before = row(f"gristmill at {args.baseline}", workers, mb, old)
                print(json.dumps(before), flush=True)
            bare = run_gristmill(inputs, Path(tmp), workers, NO_AUDIT)
            no_audit = row("gristmill, no NER audit", workers, mb, bare)
            print(json.dumps(no_audit), flush=True)
            try:
                got = run_datatrove(py, inputs, Path(tmp), workers)
            except (RuntimeError, subprocess.SubprocessError, OSError) as err:
                print(f"datatrove_side: datatrove did not run ({err}); nothing more measured")
                return rows
            theirs = row("datatrove", workers, mb, got)
            print(json.dumps(theirs), flush=True)
            ratios = [ratio(ours, theirs), ratio(no_audit, theirs)]
            if tree is not None:
                rows.append(before)
                ratios.append(ratio(before, theirs))
            rows += [ours, no_audit, theirs, *ratios]
            for line in ratios:
                print(json.dumps(line), flush=True)
    return rows


if __name__ == "__main__":
    main()
