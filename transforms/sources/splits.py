"""Large files read in pieces: byte ranges whose records a reader finds by itself.

A piece is a byte range [start, end) of one file; its reader takes the records that start in
it (JSON lines: the lines that begin there; Parquet: the row groups whose first byte is there),
so the pieces of a file read each record once, whatever the cut points, and offsets (document
ids) stay the file's. Only formats with records at known boundaries and no compression split:
a compressed stream can only be read from its start.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from gristmill.transforms.sources.read import MatchedFile
from gristmill.transforms.sources.streams import file_head, sniff_compression

SPLITTABLE_KINDS = ("articles",)  # JSON lines and Parquet


def splittable(kind: str, options: dict[str, Any], f: MatchedFile) -> bool:
    """Whether a regular file of this source can be read in pieces (it is opened for its
    first bytes: a compressed file cannot)."""
    if kind not in SPLITTABLE_KINDS or f.kind != "file" or f.is_piece:
        return False
    try:
        head = file_head(f.path)
    except Exception:  # unreadable: read whole, where it becomes a dead letter
        return False
    return sniff_compression(head) == "none"


def pieces(f: MatchedFile, target_bytes: int) -> list[MatchedFile]:
    """The file cut into the fewest pieces of at most `target_bytes`, equal but for the last."""
    count = math.ceil(f.size / max(target_bytes, 1))
    if count <= 1:
        return [f]
    step = math.ceil(f.size / count)
    return [replace(f, start=s, end=min(s + step, f.size)) for s in range(0, f.size, step)]
