"""Command-line conventions: every subcommand answers --help, tools keep their exit codes, and
`python -m gristmill` is the same command."""

from __future__ import annotations

import subprocess
import sys

import pytest

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
