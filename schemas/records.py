"""Typed records that flow between stages and land in the release tables."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


def make_doc_id(source: str, path: str, offset: int) -> str:
    """Stable id from (source name, path relative to the source root, record offset)."""
    key = f"{source}\x00{path}\x00{offset}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


@dataclass(slots=True)
class Document:
    id: str
    source: str
    url_or_path: str
    text: str
    lang: str = ""
    lang_score: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Drop:
    """A document that left the flow, and why; `url_or_path` says where it came from (the
    release's copy is scrubbed like documents' when the pii stage runs)."""

    id: str
    source: str
    stage: str
    reason: str
    detail: str = ""
    url_or_path: str = ""


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """Input that could not be read as a document: where it was and what went wrong."""

    source: str
    file: str
    offset: int
    error: str
    detail: str = ""


@dataclass(slots=True, frozen=True)
class InputStat:
    """What one input file held: its checksum and how its records were used."""

    source: str
    path: str
    bytes: int
    sha256: str
    records: int
    skipped: tuple[tuple[str, int], ...] = ()
    dead_letters: int = 0


@dataclass(slots=True, frozen=True)
class FileInfo:
    """One file a sink wrote, as the manifest lists it."""

    path: str
    rows: int
    bytes: int
    sha256: str


@dataclass(slots=True, frozen=True)
class PiiFinding:
    """One personal-data finding: where and what kind, never the value (`value_hash` is the
    salted HMAC of its canonical form). `field`: what held it (`text`, `url_or_path`,
    `meta.<key>`); offsets are in that field's value as the pii stage received it."""

    doc_id: str
    source: str
    field: str
    entity_type: str
    start: int
    end: int
    score: float
    recognizer: str
    value_hash: str
