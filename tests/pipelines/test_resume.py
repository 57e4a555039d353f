"""A job killed midway leaves no manifest; run again, it ends with the bytes of an uninterrupted run."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO

ROOT = REPO
DEMO = str(ROOT / "sample" / "demo.yaml")


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and "reports" not in p.parts:
            data = p.read_bytes()
            if p.name == "manifest.json":
                manifest = json.loads(data)
                manifest.pop("created_at")
                data = json.dumps(manifest, sort_keys=True).encode()
            out[str(p.relative_to(root))] = data
    return out


def _cmd(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gristmill.pipelines.cli",
        "run",
        DEMO,
        "--output",
        str(out),
        "--quiet",
    ]


@pytest.mark.job
def test_killed_job_leaves_no_manifest_and_rerun_matches(tmp_path, demo_run):
    whole = demo_run[0]  # the uninterrupted run
    assert (whole / "manifest.json").exists()

    resumed = tmp_path / "resumed"
    # a finished release first, so the killed run starts from complete-looking outputs
    shutil.copytree(whole, resumed)
    proc = subprocess.Popen(
        _cmd(resumed), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300  # generous: start-up is slow on a loaded machine
    while (resumed / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the run removes the old manifest before it writes anything
    assert not (resumed / "manifest.json").exists(), "the run never started over"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (resumed / "manifest.json").exists(), "a killed run must not look complete"

    subprocess.run(_cmd(resumed), cwd=ROOT, check=True, capture_output=True)
    assert _files(resumed) == _files(whole)
