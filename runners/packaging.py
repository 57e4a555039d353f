"""Shipping our code to remote workers the way Beam expects: a wheel passed as --extra_package."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path


def project_root() -> Path | None:
    """The source checkout gristmill runs from, if it runs from one (an editable install)."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else None


def build_wheel(root: Path | None = None) -> str:
    """Builds gristmill's wheel into a temp dir and returns its path."""
    root = root or project_root()
    if root is None:
        raise RuntimeError(
            "runner.package: wheel needs the gristmill source tree; set package: none and use a container image"
        )
    out = tempfile.mkdtemp(prefix="gristmill-wheel-")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, str(root)],
        check=True,
    )
    wheels = sorted(Path(out).glob("gristmill-*.whl"))
    if not wheels:
        raise RuntimeError(f"building the gristmill wheel in {out} produced no wheel")
    return str(wheels[0])
