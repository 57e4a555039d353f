"""Processes that run pipelines without pandas, which the job never uses.

pandas is installed (Beam requires it), and two libraries import it when it is there though
no gristmill step needs it: `import apache_beam`, to register pandas types for its DataFrame
API and batched DoFns (`apache_beam.typehints`, in a `try: import pandas ... except
ImportError`), and pyarrow, on the first `pa.array` from Python values (it checks whether the
values are a pandas object). That is +44 MB of resident memory and 0.15 s in every process,
measured with Beam 2.77 and pyarrow 25. Here both happen once while a finder at the head of
`sys.meta_path` answers "no module named pandas" (ModuleNotFoundError, which both treat as
"not installed"; pyarrow remembers the answer for its checks); the finder is removed right
after. Nothing of either library is patched, and code that asks for pandas later gets it
(`import pandas`, pyarrow's `to_pandas`). On a Beam minor version other than the one this was
read from (runners/beam_private.py's TESTED), nothing is hidden.

Called first in every process that runs gristmill's pipelines: the command line's `main` and
a local worker's start (runners/local/pool.py), before anything imports Beam.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
from importlib import metadata

HIDDEN = "pandas"


class QuietImports(logging.Filter):
    """Beam warns at import time about optional GCP client libraries we do not use."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def _beam_minor() -> str | None:
    try:
        return ".".join(metadata.version("apache-beam").split(".")[:2])
    except metadata.PackageNotFoundError:
        return None


def import_beam() -> None:
    """Imports apache_beam and makes pyarrow's pandas check without pandas (see above), and
    Beam without its warnings about GCP libraries; nothing once Beam is imported."""
    if "apache_beam" in sys.modules:
        return
    logging.getLogger().addFilter(QuietImports())
    from gristmill.runners.beam_private import TESTED

    absent = _Absent() if _beam_minor() == TESTED and HIDDEN not in sys.modules else None
    if absent is not None:
        sys.meta_path.insert(0, absent)
    try:
        import apache_beam  # noqa: F401
        import pyarrow as pa

        pa.array([""])  # pyarrow's one look for pandas
    finally:
        if absent is not None:
            sys.meta_path.remove(absent)
