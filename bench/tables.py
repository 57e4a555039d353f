"""The plain left-aligned text table the benches print, in one place so they all look alike."""

from __future__ import annotations

from typing import Any


def table(
    rows: list[dict[str, Any]], columns: list[str] | None = None, title: str | None = None
) -> str:
    """`rows` under a header and a rule; `columns` default to every key of the rows, in order
    of first appearance; a missing cell prints empty; `title` (when given) is the first line."""
    if columns is None:
        columns = list(dict.fromkeys(c for r in rows for c in r))
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = [] if title is None else [title]
    lines.append("  ".join(c.ljust(widths[c]) for c in columns))
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
