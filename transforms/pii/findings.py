"""The findings table of the pii stage (record and schema in schemas/: PiiFinding,
PII_FINDING_SCHEMA): one row per personal-data finding, never the value itself."""

from __future__ import annotations

from gristmill.schemas.records import PiiFinding
from gristmill.schemas.tables import PII_FINDING_SCHEMA, findings_table
from gristmill.transforms.sorted_runs import ShardSpec

FINDINGS_PREFIX = "pii/findings"
FINDINGS_SCHEMA = PII_FINDING_SCHEMA

__all__ = [
    "FINDINGS_PREFIX",
    "FINDINGS_SCHEMA",
    "PiiFinding",
    "findings_spec",
    "findings_table",
    "finding_key",
]


def finding_key(f: PiiFinding) -> tuple:
    """Rows in document, field and offset order; the recognizer last, so the order is total."""
    return (f.doc_id, f.field, f.start, f.end, f.entity_type, f.recognizer)


def finding_doc(f: PiiFinding) -> str:
    return f.doc_id


def finding_from_row(row: dict) -> PiiFinding:
    return PiiFinding(**{name: row[name] for name in FINDINGS_SCHEMA.names})


def findings_spec(shards: int) -> ShardSpec:
    """The findings table: shards by document id, rows in document and offset order."""
    return ShardSpec(
        FINDINGS_PREFIX, shards, findings_table, finding_from_row, finding_doc, finding_key
    )
