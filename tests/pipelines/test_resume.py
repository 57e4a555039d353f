"""A job killed midway never leaves a release that looks finished but is not; run again, it ends
with the bytes of an uninterrupted run. Replacing a release (--overwrite), the old one stays
whole until the new one is complete."""

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
        if p.is_file() and "reports" not in p.parts and p.name != ".gristmill.lock":
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
        "--overwrite",
    ]


@pytest.mark.job
def test_a_killed_overwrite_leaves_the_old_release_whole_and_a_rerun_matches(tmp_path, demo_run):
    whole = demo_run[0]  # the uninterrupted run
    assert (whole / "manifest.json").exists()

    resumed = tmp_path / "resumed"
    beside = tmp_path / "resumed.gristmill-next"
    shutil.copytree(whole, resumed)  # a finished release, to be replaced
    proc = subprocess.Popen(
        _cmd(resumed), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300  # generous: start-up is slow on a loaded machine
    while not (beside / "_staging").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the new release is built beside the old one
    assert (beside / "_staging").exists(), "the run never started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (beside / "manifest.json").exists(), "a killed run must not look complete"
    assert _files(resumed) == _files(whole), "the old release must stay whole"

    subprocess.run(_cmd(resumed), cwd=ROOT, check=True, capture_output=True)
    assert _files(resumed) == _files(whole)
    assert not beside.exists()
