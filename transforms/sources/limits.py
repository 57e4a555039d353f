"""The `read` section: what one input file and one record may cost (checked before any work)."""

from __future__ import annotations

from dataclasses import dataclass

from gristmill.transforms.params import option
from gristmill.transforms.sources.budget import DEFAULT_RECORD_SECONDS

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class ReadLimits:
    """The `read` section: what one input file and one record may cost."""

    max_decompressed_bytes: int = option(
        8 * GiB, "per file; past it the file is a dead letter (bomb guard)", min=1
    )
    max_record_bytes: int = option(
        256 * MiB, "one document or line; longer ones are dead letters", min=1
    )
    on_invalid_utf8: str = option(
        "replace",
        "replace: keep the text and report the bytes | dead_letter: the record is a dead letter",
        choices=("replace", "dead_letter"),
    )
    record_seconds: float = option(
        DEFAULT_RECORD_SECONDS,
        "time one record may take to parse; past it the record is a dead letter (0: no budget)",
        min=0,
    )
