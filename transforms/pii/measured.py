"""The precision and recall of each entity type as the bench measured them, for the reports.

`measured.json` beside this module is written by `python -m bench.pii_precision --write`: per
mode and entity type, the recall and precision on a labelled sample (real text whose personal
data is all known), the sample's size, and the commit and date measured. The privacy report
quotes the figures of its run's mode, labelled as the bench's: they are not measured on the
run's own data, which has no labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MEASURED = Path(__file__).with_name("measured.json")
NOTE = (
    "measured by bench/pii_precision.py on a labelled sample (real text with inserted values "
    "of known type), not on this run's data"
)
FIGURES = ("precision", "recall", "values", "findings", "false_per_mb")
HEADERS = ("entity type", "precision", "recall", "values", "findings", "false per MB")


def load(path: Path = MEASURED) -> dict[str, Any]:
    """The bench's figures, or {} when the file is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def for_run(mode: str, entities: list[str], path: Path = MEASURED) -> dict[str, Any]:
    """The figures for a run's mode and entity types (all measured types when `entities` is
    empty), with where they come from; `by_type` is empty when that mode was not measured."""
    data = load(path)
    measured = (data.get("modes") or {}).get(mode) or {}
    wanted = [t for t in measured if not entities or t in entities]
    return {
        "note": NOTE,
        "mode": mode,
        "measured_by": data.get("measured_by", ""),
        "commit": data.get("commit", ""),
        "date": data.get("date", ""),
        "sample": data.get("sample", {}),
        "by_type": {t: {k: measured[t].get(k) for k in FIGURES} for t in wanted},
    }


def table_rows(measured: dict[str, Any]) -> list[list[Any]]:
    """Rows of the report's table: type, precision, recall, values, findings, false per MB."""
    blank = lambda v: "n/a" if v is None else v  # noqa: E731
    return [[t, *(blank(f.get(k)) for k in FIGURES)] for t, f in measured["by_type"].items()]
