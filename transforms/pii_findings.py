"""The findings table: one row per personal-data finding, never the value itself.

`start`/`end` are character offsets in the text the pii stage received (before scrubbing);
`value_hash` is the salted HMAC of the value's canonical form (`pii_hashing.value_hash`).
(This record and schema belong in schemas/ next to Document and Drop; they live here until the
lead moves them.)
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

FINDINGS_PREFIX = "pii/findings"


@dataclass(slots=True, frozen=True)
class PiiFinding:
    doc_id: str
    source: str
    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str
    value_hash: str


FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("entity_type", pa.string(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),
        pa.field("end", pa.int64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("recognizer", pa.string(), nullable=False),
        pa.field("value_hash", pa.string(), nullable=False),
    ]
)


def findings_table(rows: list[PiiFinding]) -> pa.Table:
    cols = {name: [getattr(r, name) for r in rows] for name in FINDINGS_SCHEMA.names}
    return pa.table(cols, schema=FINDINGS_SCHEMA)


def finding_key(f: PiiFinding) -> tuple:
    return (f.doc_id, f.start, f.end, f.entity_type)
