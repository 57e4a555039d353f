"""Runner profiles, and the demo job on Beam's portable job service with an external worker pool.

The portable path is the one every distributed runner takes: the pipeline is serialised, sent to
a job service, and run by SDK workers in other processes. Byte-identical outputs against the
in-process run show that every DoFn survives pickling and no stage leans on the driver.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO

from gristmill.pipelines.config import ConfigError, load
from gristmill.pipelines.job import run_job
from gristmill.runners.profiles import beam_args

ROOT = REPO
DEMO = str(ROOT / "sample" / "demo.yaml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _load(tmp_path: Path, *overrides: str):
    return load(DEMO, list(overrides), output=str(tmp_path / "out"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["runner.profile=nonesuch"], "runner.profile: must be one of"),
        (["runner.profile=dataflow"], "runner.project: the dataflow profile needs it"),
        (
            ["runner.profile=dataflow", "runner.project=p", "runner.region=europe-west1"],
            "runner.temp_location: the dataflow profile needs it",
        ),
        (
            [
                "runner.profile=dataflow",
                "runner.project=p",
                "runner.region=r",
                "runner.temp_location=/tmp/x",
            ],
            "runner.temp_location: Dataflow needs a gs:// location",
        ),
        (["runner.profile=portable"], "runner.job_endpoint: the portable profile needs it"),
        (["runner.profile=flink"], "runner.flink_master: the flink profile needs it"),
        (["runner.profile=spark"], "runner.spark_master_url: the spark profile needs it"),
        (["runner.environment_type=SSH"], "runner.environment_type: must be one of"),
    ],
)
def test_bad_profiles_fail_before_work(tmp_path, monkeypatch, overrides, message):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, *overrides)
    assert str(err.value).startswith(message), str(err.value)


def test_unreachable_endpoint_fails_fast(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    port = _free_port()  # nobody listens there
    cfg = _load(
        tmp_path,
        "runner.profile=portable",
        f"runner.job_endpoint=localhost:{port}",
        "runner.package=none",
    )
    started = time.monotonic()
    with pytest.raises(ConfigError, match=f"localhost:{port} does not answer"):
        run_job(cfg)
    assert time.monotonic() - started < 10
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_profiles_map_to_beam_options():
    dataflow = {
        "profile": "dataflow",
        "project": "p",
        "region": "europe-west1",
        "temp_location": "gs://b/tmp",
        "max_num_workers": 8,
        "args": ["--experiments=use_runner_v2"],
    }
    args = beam_args(dataflow, ["/tmp/gristmill-0.1.0-py3-none-any.whl"])
    assert args[:4] == [
        "--runner=DataflowRunner",
        "--project=p",
        "--region=europe-west1",
        "--temp_location=gs://b/tmp",
    ]
    assert "--max_num_workers=8" in args
    assert "--extra_package=/tmp/gristmill-0.1.0-py3-none-any.whl" in args
    assert args[-1] == "--experiments=use_runner_v2"
    flink = beam_args(
        {"profile": "flink", "flink_master": "localhost:8081", "environment_type": "LOOPBACK"}, []
    )
    assert flink == [
        "--runner=FlinkRunner",
        "--flink_master=localhost:8081",
        "--environment_type=LOOPBACK",
    ]


@pytest.fixture(scope="module")
def job_service(tmp_path_factory):
    """Beam's own job service and an external worker pool, as separate processes on loopback."""
    tmp = tmp_path_factory.mktemp("portable")
    env = dict(
        os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    port_file = tmp / "job.port"
    pool_port = _free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "apache_beam.runners.portability.local_job_service_main",
                "--port",
                "0",
                "--port_file",
                str(port_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "job_service.log", "w"),  # noqa: SIM115
            env=env,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "apache_beam.runners.worker.worker_pool_main",
                f"--service_port={pool_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / "worker_pool.log", "w"),  # noqa: SIM115
            env=env,
        ),
    ]
    try:
        deadline = time.monotonic() + 90
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                pytest.fail(
                    "the Beam job service did not start: "
                    + (tmp / "job_service.log").read_text()[-2000:]
                )
            time.sleep(0.5)
        yield f"localhost:{port_file.read_text().strip()}", f"localhost:{pool_port}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.job
def test_portable_runner_matches_in_process(tmp_path, monkeypatch, job_service, demo_run):
    monkeypatch.chdir(ROOT)
    endpoint, pool = job_service
    local_out, portable_out = demo_run[0], tmp_path / "portable"
    run_job(
        load(
            DEMO,
            [
                "runner.profile=portable",
                f"runner.job_endpoint={endpoint}",
                "runner.environment_type=EXTERNAL",
                f"runner.environment_config={pool}",
                "runner.package=none",
            ],
            output=str(portable_out),
        )
    )
    local_files = sorted(
        p.relative_to(local_out)
        for p in local_out.rglob("*")
        if p.is_file() and "reports" not in p.parts
    )
    portable_files = sorted(
        p.relative_to(portable_out)
        for p in portable_out.rglob("*")
        if p.is_file() and "reports" not in p.parts
    )
    assert local_files == portable_files
    for rel in local_files:
        a, b = (local_out / rel).read_bytes(), (portable_out / rel).read_bytes()
        if rel.name == "manifest.json":
            a, b = (
                b"\n".join(x for x in m.splitlines() if b'"created_at"' not in x) for m in (a, b)
            )
        assert a == b, rel
