"""The findings table of the pii stage (record and schema in schemas/: PiiFinding,
PII_FINDING_SCHEMA): one row per personal-data finding, never the value itself."""

from __future__ import annotations

from gristmill.schemas.records import PiiFinding
from gristmill.schemas.tables import PII_FINDING_SCHEMA, findings_table

FINDINGS_PREFIX = "pii/findings"
FINDINGS_SCHEMA = PII_FINDING_SCHEMA

__all__ = ["FINDINGS_PREFIX", "FINDINGS_SCHEMA", "PiiFinding", "findings_table", "finding_key"]


def finding_key(f: PiiFinding) -> tuple:
    return (f.doc_id, f.start, f.end, f.entity_type)
