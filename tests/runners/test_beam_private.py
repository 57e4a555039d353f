"""Apache Beam's private internals: used in one module, on the tested version only."""

from __future__ import annotations

import ast
import re

import apache_beam
import pytest
from helpers import REPO

from gristmill.runners import beam_private

pytestmark = pytest.mark.unit

PRIVATE = re.compile(
    r"apache_beam\.(runners\.(portability|worker|direct)|transforms\.environments)"
)


def test_the_installed_beam_is_the_tested_one():
    """Fails on any other apache-beam: runners/beam_private.py must be re-read against it."""
    minor = ".".join(apache_beam.__version__.split(".")[:2])
    assert minor == beam_private.TESTED, (
        f"apache-beam {apache_beam.__version__} installed; beam_private.py is written for "
        f"{beam_private.TESTED}: check each patch against this version, then move TESTED and "
        "the pin in pyproject.toml together"
    )
    pin = re.search(r'"apache-beam>=([\d.]+),<([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert pin and pin.group(1).startswith(beam_private.TESTED + ".")


def test_no_other_module_patches_beam_internals():
    """Beam's private runner and worker classes are touched in beam_private.py alone.
    The local runner imports Beam's FnApiRunner (its public class) without touching its
    internals."""
    allowed = {"runners/beam_private.py", "runners/local/runner.py"}
    paths = [
        p
        for top in ("pipelines", "transforms", "runners", "schemas")
        for p in (REPO / top).rglob("*.py")
    ]
    for path in sorted(paths):
        rel = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and PRIVATE.match(node.module):
                assert rel in allowed, f"{rel} imports {node.module}"
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                value = ast.unparse(node.value)
                if value in ("fn_runner", "data_plane", "execution", "runner"):
                    assert rel == "runners/beam_private.py", f"{rel}: {ast.unparse(node)}"


def test_another_beam_gets_no_patch(monkeypatch):
    monkeypatch.setattr(apache_beam, "__version__", "2.99.0")
    with pytest.raises(beam_private.BeamInternalsError, match=r"apache-beam 2\.99 is installed"):
        beam_private.check_version()
    assert beam_private.install_progress_hooks(lambda *a: None) is False
