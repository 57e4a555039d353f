"""ReadSource: input files in; documents, drops, dead letters and per-input stats out."""

from __future__ import annotations

import glob
import hashlib
import logging
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
from gristmill.transforms.sources.budget import Budget
from gristmill.transforms.sources.limits import ReadLimits
from gristmill.transforms.sources.paths import file_kind, shown_path
from gristmill.transforms.sources.reader_api import (
    BadRecord,
    RawRecord,
    ReadContext,
    Reader,
    Skipped,
)
from gristmill.transforms.sources.streams import (
    InputFile,
    NotRegularFile,
    classify_error,
    error_detail,
)

log = logging.getLogger(__name__)

READ_STAGE = "read"
GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class MatchedFile:
    path: str  # as the filesystem gives it (a local name that is not UTF-8 keeps its escapes)
    relpath: str
    size: int
    kind: str = "file"  # what match_inputs found: file, fifo, socket, character_device, ...
    start: int = 0  # a piece of a large file (splits.py): the records starting in [start, end)
    end: int = -1  # -1: the whole file

    @property
    def is_piece(self) -> bool:
        return self.end >= 0

    @property
    def length(self) -> int:
        """The bytes this item reads: the piece's, or the file's."""
        return self.end - self.start if self.is_piece else self.size


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


def _match_url(pattern: str) -> list[tuple[str, int]]:
    metas = FileSystems.match([pattern])[0].metadata_list
    return [(m.path, m.size_in_bytes) for m in metas if not m.path.endswith("/")]


def _match_local(pattern: str) -> list[tuple[str, int]]:
    """Local files by Python's glob: Beam's local `*` silently skips names that hold a
    backslash or bytes that are not UTF-8. Directories are left out, every other kind kept."""
    if GLOB_CHARS.search(pattern):
        names = glob.glob(pattern, recursive=True, include_hidden=True)
    else:
        names = [pattern] if os.path.lexists(pattern) else []
    out = []
    for name in names:
        if os.path.isdir(name):
            continue
        try:
            out.append((name, os.stat(name).st_size))
        except OSError:  # a dangling link: listed, and a dead letter when read
            out.append((name, 0))
    return out


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
        files = _match_local(pattern) if "://" not in pattern else _match_url(pattern)
        if not files and "://" in pattern and not GLOB_CHARS.search(pattern):
            pattern = pattern.rstrip("/") + "/**"  # a directory on an object store
            files = _match_url(pattern)
        if not files:
            raise NoMatch(given)
        prefixes.append(_static_prefix(pattern))
        for path, size in files:
            found.setdefault(path, size)
    root = _common_dir(prefixes)
    matched = []
    for n, (path, size) in enumerate(sorted(found.items()), 1):
        rel = path[len(root) :].lstrip("/") if root and path.startswith(root) else path
        kind = file_kind(path)
        if kind == "missing":  # a dangling link: opening it makes the dead letter
            kind = "file"
        if kind != "file":  # read as a dead letter, never opened: a FIFO would block forever
            # never the name in the log: a file name may hold personal data
            log.warning(
                "input %d of %d is a %s, not a regular file: not read (a dead letter names it)",
                n,
                len(found),
                kind,
            )
            size = 0
        matched.append(MatchedFile(path, rel or posixpath.basename(path), size, kind))
    return matched


class ReadFiles(beam.DoFn):
    """Reads whole files with a format reader; nothing a reader raises stops the job.

    `pii`: the pii stage's section when the job runs it. A dead letter names its input file,
    and a file name may hold personal data, so it is then scrubbed as the stage scrubs
    `url_or_path` (dead letters skip the stage; their `detail` never holds input bytes)."""

    def __init__(
        self,
        source: str,
        reader: Reader,
        options: dict[str, Any],
        limits: ReadLimits,
        pii: dict[str, Any] | None = None,
    ):
        self.source = source
        self.reader = reader
        self.options = options
        self.limits = limits
        self.pii = pii

    def setup(self) -> None:
        ns = f"{READ_STAGE}.{self.source}"
        self.c_files = Metrics.counter(ns, "files")
        self.c_bytes = Metrics.counter(ns, "bytes")
        self.c_records = Metrics.counter(ns, "records")
        self.c_docs = Metrics.counter(ns, "documents")
        self.c_dead = Metrics.counter(ns, "dead_letters")
        self.c_drop = Metrics.counter(ns, "dropped")
        self.c_special = Metrics.counter(ns, "not_regular_files")
        self.c_timeouts = Metrics.counter(ns, "record_timeouts")

    def _context(self, matched: MatchedFile) -> ReadContext:
        return ReadContext(
            source=self.source,
            path=matched.path,
            relpath=shown_path(matched.relpath),
            options=self.options,
            max_record_bytes=self.limits.max_record_bytes,
            on_invalid_utf8=self.limits.on_invalid_utf8,
            max_decompressed_bytes=self.limits.max_decompressed_bytes,
            budget=Budget(self.limits.record_seconds),
            span=(matched.start, matched.end) if matched.is_piece else None,
        )

    def process(self, matched: MatchedFile):
        ctx = self._context(matched)
        records = dead = 0
        skipped: Counter[str] = Counter()
        f: InputFile | None = None
        kind = matched.kind if matched.kind != "file" else file_kind(matched.path)
        if kind == "missing":  # gone since matching: opening it says so (unreadable_file)
            kind = "file"
        try:
            if kind != "file":  # checked again now: never open what could block or never end
                self.c_special.inc()
                raise NotRegularFile(f"a {kind}, not a regular file: not read")
            opened_at = max(matched.start - 1, 0)  # the byte before: is a record cut there?
            f = InputFile(matched.path, self.limits.max_decompressed_bytes, opened_at)
            for out in self.reader(f, ctx):
                if isinstance(out, Skipped):
                    skipped[out.kind] += 1
                elif isinstance(out, BadRecord):
                    dead += 1
                    yield beam.pvalue.TaggedOutput("dead", self._dead(matched, out))
                else:
                    records += 1
                    yield from self._emit(matched, ctx.relpath, out)
        except Exception as err:  # the reader stops here; what it read so far is kept
            dead += 1
            bad = BadRecord(_safe_tell(f), classify_error(err), error_detail(err))
            yield beam.pvalue.TaggedOutput("dead", self._dead(matched, bad))
        self.c_timeouts.inc(ctx.budget.timeouts)
        # a later piece of a file leaves its bytes and checksum to the first (merged per file)
        first = kind == "file" and matched.start == 0
        size, digest = _finish(f, matched) if first else (0, "")
        if matched.start == 0:  # a file counted once, not per piece
            self.c_files.inc()
        self.c_bytes.inc(size)
        self.c_dead.inc(dead)
        yield beam.pvalue.TaggedOutput(
            "inputs",
            InputStat(
                source=self.source,
                path=shown_path(matched.path),
                bytes=size,
                sha256=digest,
                records=records,
                skipped=tuple(sorted(skipped.items())),
                dead_letters=dead,
            ),
        )

    def _emit(self, matched: MatchedFile, relpath: str, rec: RawRecord):
        self.c_records.inc()
        doc_id = make_doc_id(self.source, relpath, rec.offset)
        url_or_path = rec.url_or_path or relpath
        if rec.drop:
            self.c_drop.inc()
            drop = Drop(doc_id, self.source, READ_STAGE, rec.drop, rec.detail, url_or_path)
            yield beam.pvalue.TaggedOutput("drops", drop)
            return
        self.c_docs.inc()
        meta = dict(rec.meta)
        meta.setdefault("offset", rec.offset)
        if rec.record_id:
            meta["record_id"] = rec.record_id
        yield Document(
            id=doc_id,
            source=self.source,
            url_or_path=url_or_path,
            text=rec.text,
            meta=meta,
        )

    def _dead(self, matched: MatchedFile, bad: BadRecord) -> DeadLetter:
        Metrics.counter(f"{READ_STAGE}.{self.source}", f"dead_letters.{bad.error}").inc()
        file = shown_path(matched.path)
        if self.pii is not None:
            from gristmill.transforms.pii.outside import scrub_strings

            file = scrub_strings(self.pii, [file])[0]
        return DeadLetter(self.source, file, bad.offset, bad.error, bad.detail)


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
