"""`python -m gristmill`: the `gristmill` command, for when the script is not on PATH."""

from __future__ import annotations

import sys

from gristmill.pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main())
