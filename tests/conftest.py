"""pytest fixtures shared by every test; plain helpers live in helpers.py."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO

# Fixtures that run a whole job: a test that uses one (directly or through another fixture)
# is a `job` test, whatever it does itself.
JOB_FIXTURES = {
    "demo_run",
    "two_runs",
    "stage_run",
    "runs",
    "exact",
    "release",
    "bad_job",
    "joined",
}


def pytest_collection_modifyitems(config, items):
    """`job` for tests that run a job; `unit` for every test not marked `job` or `browser`."""
    for item in items:
        if JOB_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.job)
        if not (item.get_closest_marker("job") or item.get_closest_marker("browser")):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True, scope="session")
def _quiet_beam():
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    yield


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """The demo job (sample/demo.yaml) run once for the whole session: (release, the manifest
    run_job returned). Tests read it as it is; tests that change it work on a copy."""
    from gristmill.pipelines.config import load
    from gristmill.pipelines.job import run_job

    root = tmp_path_factory.mktemp("demo") / "release"
    cwd = os.getcwd()
    os.chdir(REPO)  # the job file's paths are relative to the repository root
    try:
        manifest = run_job(load("sample/demo.yaml", ["runner.workers=1"], output=str(root)))
    finally:
        os.chdir(cwd)
    return root, manifest
