"""Command-line conventions: every subcommand answers --help, tools keep their exit codes,
`python -m gristmill` is the same command; --dry-run plans and writes nothing, Beam's own options
after `--` reach the runner, --json summarises, --latest points at the newest complete release,
and `run --config-from RELEASE` replays a recorded config to the same bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

from gristmill import __version__
from gristmill.pipelines import cli

COMMANDS = ("run", "refresh", *cli.TOOLS)


def _exit_code(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as done:
        return int(done.code or 0)


@pytest.mark.unit
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_subcommand_answers_help(command, flag, capsys):
    assert _exit_code([command, flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gristmill {command}")


@pytest.mark.unit
def test_top_level_help_lists_every_subcommand(capsys):
    assert _exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


@pytest.mark.unit
def test_tools_keep_their_exit_codes(tmp_path, capsys):
    assert _exit_code(["validate", str(tmp_path)]) == 1  # no manifest: not a release
    assert _exit_code(["report", str(tmp_path)]) == 2
    assert _exit_code(["inspect", str(tmp_path / "none.arrow")]) == 2
    assert _exit_code(["validate"]) == 2  # argparse's usage error
    assert _exit_code(["audit", str(tmp_path)]) == 2  # --values is required
    err = capsys.readouterr().err
    assert "usage: gristmill validate" in err and "usage: gristmill audit" in err


def _module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.unit
def test_python_dash_m_gristmill():
    version = _module("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"gristmill {__version__}"
    helped = _module("validate", "--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: gristmill validate")
    assert _module().returncode == 2  # no command: argparse's usage error


# ---- --dry-run, Beam options after --, --json, --latest, --config-from ----------------------

MAIL = "mail=sample/mail/easy*.txt"


def _main(argv: list[str], monkeypatch) -> int:
    monkeypatch.chdir(REPO)  # the sample's paths are relative to the repository root
    return _exit_code(argv)


@pytest.mark.unit
def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from gristmill.pipelines.phases.plan import staging_bytes

    out = tmp_path / "dated" / "2026-12-02"
    argv = ["run", "--source", MAIL, "--output", str(out), "--dry-run", "--set", "mlm.enabled=true"]
    argv += ["--set", "tokenizer.enabled=true"]
    assert _main([*argv, "--workers", "2"], monkeypatch) == 0
    text = capsys.readouterr().out
    for words in ("12 files", "read > normalize", "then:       tokenizer > mlm", "2 worker(s)"):
        assert words in text, (words, text)
    assert "partitions: 1 of at most" in text and "staging:" in text and "estimate:" in text
    assert not (tmp_path / "dated").exists()

    assert _main([*argv, "--json"], monkeypatch) == 0
    captured = capsys.readouterr()
    plan = json.loads(captured.out)
    assert "dry run" in captured.err  # the lines go to stderr when stdout carries the JSON
    assert plan["inputs"]["files"] == 12 and plan["partitions"]["count"] == 1
    assert plan["staging"]["bytes_needed"] == staging_bytes(plan["inputs"]["bytes"])
    assert plan["staging"]["fits"] is True and plan["estimate"]["seconds"] > 0
    assert not (tmp_path / "dated").exists()


@pytest.mark.unit
def test_dry_run_refuses_what_the_run_would_refuse(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.txt").write_text("a user's file")
    argv = ["run", "--source", MAIL, "--output", str(tmp_path), "--dry-run"]
    assert _main(argv, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty and not a gristmill release" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


@pytest.mark.unit
def test_beam_options_after_double_dash_reach_the_runner(tmp_path, monkeypatch, capsys):
    from apache_beam.options.pipeline_options import GoogleCloudOptions, WorkerOptions

    from gristmill.pipelines.cli import _load, _parser, _split_beam
    from gristmill.runners import runner_for

    beam = ["--runner", "DataflowRunner", "--project", "p", "--region=europe-west1"]
    beam += ["--temp_location", "gs://b/tmp", "--num_workers", "7", "--use_public_ips"]
    argv = ["run", "--source", MAIL, "--output", "gs://b/out", "--set", "runner.package=none"]
    assert _main([*argv, "--dry-run", "--json", "--", *beam], monkeypatch) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["runner"]["profile"] == "dataflow"
    assert plan["runner"]["beam_args"] == ["--num_workers", "7", "--use_public_ips"]

    own, rest = _split_beam([*argv, "--", *beam])
    cfg = _load(_parser().parse_args(own), rest)
    runner, options = runner_for(cfg.section("runner"))
    gcp = options.view_as(GoogleCloudOptions)
    assert (gcp.project, gcp.region, gcp.temp_location) == ("p", "europe-west1", "gs://b/tmp")
    assert options.view_as(WorkerOptions).num_workers == 7
    assert options.get_all_options()["use_public_ips"] is True


@pytest.mark.unit
@pytest.mark.parametrize(
    ("beam", "named"),
    [
        (["--runner", "PrismRunner"], "--runner PrismRunner"),
        (["project=p"], "not a Beam option"),
        (["--runner", "DataflowRunner", "--project", "p"], "runner.region"),
    ],
)
def test_bad_beam_options_are_one_line_exit_2(beam, named, tmp_path, monkeypatch, capsys):
    argv = ["run", "--source", MAIL, "--output", str(tmp_path / "o"), "--dry-run", "--", *beam]
    assert _main(argv, monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0], err


@pytest.fixture(scope="module")
def small_release(tmp_path_factory):
    """A small real release (12 mails, tokenizer and shards, a salt by env reference) made
    through the CLI with --json and --latest, in a folder of dated releases."""
    mp = pytest.MonkeyPatch()
    mp.chdir(REPO)
    mp.setenv("GM_CLI_SALT", "cli-test-salt")
    root = tmp_path_factory.mktemp("dated")
    out, summary = root / "2026-12-02", root / "summary.json"
    sets = ["pii.salt=env:GM_CLI_SALT", "tokenizer.enabled=true", "mlm.enabled=true"]
    sets += ["tokenizer.vocab_size=2000", "dedup.threshold=0.7"]
    argv = ["run", "--source", MAIL, "--output", str(out), "--quiet", "--latest"]
    argv += ["--json", str(summary), *(a for s in sets for a in ("--set", s))]
    yield _exit_code(argv), out, summary
    mp.undo()


@pytest.mark.job
def test_json_summary_and_latest_pointer(small_release):
    code, out, summary = small_release
    assert code == 0
    data = json.loads(summary.read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert data["status"] == "ok" and data["release"] == str(out)
    assert (
        data["counts"] == manifest["counts"] and data["config_sha256"] == manifest["config_sha256"]
    )
    assert data["outputs"]["shards"] >= 2 and data["tokenizer"]["sha256"]
    latest = out.parent / "latest"
    assert latest.is_symlink() and os.readlink(latest) == out.name  # relative: the tree can move
    assert data["latest"] == str(latest)
    assert (latest / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()


@pytest.mark.job
def test_replayed_config_gives_the_same_release(small_release, monkeypatch):
    """`run --config-from latest` on the same inputs: the same bytes, created_at aside."""
    code, out, _ = small_release
    assert code == 0
    monkeypatch.setenv("GM_CLI_SALT", "cli-test-salt")
    again = out.parent / "replayed"
    argv = ["run", "--config-from", str(out.parent / "latest"), "--output", str(again), "--quiet"]
    assert _main(argv, monkeypatch) == 0
    first = json.loads((out / "manifest.json").read_text())
    second = json.loads((again / "manifest.json").read_text())
    assert first.pop("created_at") != "" and second.pop("created_at") != ""
    assert first == second
    for entry in first["outputs"]:  # listed with sha256 above; read the bytes too
        assert (out / entry["path"]).read_bytes() == (again / entry["path"]).read_bytes()
    assert os.readlink(out.parent / "latest") == out.name  # moved only when asked


@pytest.mark.job
def test_latest_refuses_a_users_folder_before_any_work(tmp_path, monkeypatch, capsys):
    (tmp_path / "latest").mkdir()
    argv = ["run", "--source", MAIL, "--output", str(tmp_path / "r1"), "--latest"]
    assert _main(argv, monkeypatch) == 2
    assert "is not a link" in capsys.readouterr().err
    assert not (tmp_path / "r1").exists()


@pytest.mark.unit
def test_beam_options_reach_the_local_runner_too(monkeypatch):
    from apache_beam.options.pipeline_options import DebugOptions

    from gristmill.pipelines.cli import _load, _parser, _split_beam
    from gristmill.runners import runner_for

    monkeypatch.chdir(REPO)
    argv = ["run", "--source", MAIL, "--output", "out/x", "--", "--experiments=gm_test_flag"]
    own, rest = _split_beam(argv)
    cfg = _load(_parser().parse_args(own), rest)
    assert cfg.section("runner")["profile"] == "local"
    _, options = runner_for(cfg.section("runner"))
    assert "gm_test_flag" in options.view_as(DebugOptions).experiments
