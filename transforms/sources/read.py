"""ReadSource: input files in; documents, drops, dead letters and per-input stats out."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from gristmill.schemas.records import DeadLetter, Document, Drop, InputStat, make_doc_id
from gristmill.transforms.sources.limits import ReadLimits
from gristmill.transforms.sources.reader_api import (
    BadRecord,
    RawRecord,
    ReadContext,
    Reader,
    Skipped,
)
from gristmill.transforms.sources.streams import InputFile, classify_error

READ_STAGE = "read"
GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class MatchedFile:
    path: str
    relpath: str
    size: int


class NoMatch(ValueError):
    pass


def _static_prefix(pattern: str) -> str:
    """The directory part of a glob before its first wildcard."""
    m = GLOB_CHARS.search(pattern)
    if not m:
        return posixpath.dirname(pattern.rstrip("/"))
    return posixpath.dirname(pattern[: m.start()])


def _is_local_dir(pattern: str) -> bool:
    return "://" not in pattern and os.path.isdir(pattern)


def _common_dir(prefixes: list[str]) -> str:
    common = os.path.commonprefix(prefixes)
    if all(p == common for p in prefixes):
        return common
    return common[: common.rfind("/") + 1] if "/" in common else ""


def match_inputs(patterns: Iterable[str]) -> list[MatchedFile]:
    """Expand paths, directories (recursively) and globs on any Beam filesystem.

    Relative paths are taken from the directory all of a source's patterns share, so two files
    of one source never get the same relative path (and so never the same document ids).
    Raises NoMatch naming the first pattern that matches no file.
    """
    found: dict[str, int] = {}
    prefixes = []
    for given in patterns:
        pattern = given
        if _is_local_dir(pattern):
            pattern = pattern.rstrip("/") + "/**"
        files = [
            m for m in FileSystems.match([pattern])[0].metadata_list if not m.path.endswith("/")
        ]
        if not files and not GLOB_CHARS.search(pattern):  # a directory on an object store
            pattern = pattern.rstrip("/") + "/**"
            files = [
                m for m in FileSystems.match([pattern])[0].metadata_list if not m.path.endswith("/")
            ]
        if not files:
            raise NoMatch(given)
        prefixes.append(_static_prefix(pattern))
        for meta in files:
            found.setdefault(meta.path, meta.size_in_bytes)
    root = _common_dir(prefixes)
    matched = []
    for path, size in sorted(found.items()):
        rel = path[len(root) :].lstrip("/") if root and path.startswith(root) else path
        matched.append(MatchedFile(path, rel or posixpath.basename(path), size))
    return matched


class ReadFiles(beam.DoFn):
    """Reads whole files with a format reader; nothing a reader raises stops the job."""

    def __init__(self, source: str, reader: Reader, options: dict[str, Any], limits: ReadLimits):
        self.source = source
        self.reader = reader
        self.options = options
        self.limits = limits

    def setup(self) -> None:
        ns = f"{READ_STAGE}.{self.source}"
        self.c_files = Metrics.counter(ns, "files")
        self.c_bytes = Metrics.counter(ns, "bytes")
        self.c_records = Metrics.counter(ns, "records")
        self.c_docs = Metrics.counter(ns, "documents")
        self.c_dead = Metrics.counter(ns, "dead_letters")
        self.c_drop = Metrics.counter(ns, "dropped")

    def process(self, matched: MatchedFile):
        ctx = ReadContext(
            source=self.source,
            path=matched.path,
            relpath=matched.relpath,
            options=self.options,
            max_record_bytes=self.limits.max_record_bytes,
            on_invalid_utf8=self.limits.on_invalid_utf8,
        )
        records = 0
        dead = 0
        skipped: Counter[str] = Counter()
        f: InputFile | None = None
        try:
            f = InputFile(matched.path, self.limits.max_decompressed_bytes)
            for out in self.reader(f, ctx):
                if isinstance(out, Skipped):
                    skipped[out.kind] += 1
                elif isinstance(out, BadRecord):
                    dead += 1
                    yield beam.pvalue.TaggedOutput("dead", self._dead(matched, out))
                else:
                    records += 1
                    yield from self._emit(matched, out)
        except Exception as err:  # the reader stops here; what it read so far is kept
            dead += 1
            offset = _safe_tell(f)
            yield beam.pvalue.TaggedOutput(
                "dead", self._dead(matched, BadRecord(offset, classify_error(err), str(err)[:500]))
            )
        size, digest = _finish(f, matched)
        self.c_files.inc()
        self.c_bytes.inc(size)
        self.c_dead.inc(dead)
        yield beam.pvalue.TaggedOutput(
            "inputs",
            InputStat(
                source=self.source,
                path=matched.path,
                bytes=size,
                sha256=digest,
                records=records,
                skipped=tuple(sorted(skipped.items())),
                dead_letters=dead,
            ),
        )

    def _emit(self, matched: MatchedFile, rec: RawRecord):
        self.c_records.inc()
        doc_id = make_doc_id(self.source, matched.relpath, rec.offset)
        if rec.drop:
            self.c_drop.inc()
            yield beam.pvalue.TaggedOutput(
                "drops", Drop(doc_id, self.source, READ_STAGE, rec.drop, rec.detail)
            )
            return
        self.c_docs.inc()
        meta = dict(rec.meta)
        meta.setdefault("offset", rec.offset)
        if rec.record_id:
            meta["record_id"] = rec.record_id
        yield Document(
            id=doc_id,
            source=self.source,
            url_or_path=rec.url_or_path or matched.relpath,
            text=rec.text,
            meta=meta,
        )

    def _dead(self, matched: MatchedFile, bad: BadRecord) -> DeadLetter:
        return DeadLetter(self.source, matched.path, bad.offset, bad.error, bad.detail)


def _safe_tell(f: InputFile | None) -> int:
    if f is None:
        return 0
    try:
        return f.tell()
    except Exception:
        return -1


def _finish(f: InputFile | None, matched: MatchedFile) -> tuple[int, str]:
    if f is not None:
        try:
            return f.finish()
        except Exception:
            pass
    try:
        return file_sha256(matched.path)
    except Exception:
        return matched.size, ""


def file_sha256(path: str) -> tuple[int, str]:
    """(bytes, sha256 hex) of a file's stored bytes, on any Beam filesystem."""
    digest = hashlib.sha256()
    size = 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        while chunk := raw.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
