"""`gristmill audit RELEASE --values FILE`: for an erasure request, where do these values occur?

Every file of the release is searched, every field of it (`audit` prints where, never what):

- **documents**: each column of `documents/*.parquet` apart: `text`, `url_or_path`, `meta` (as
  JSON), and the rest, by a direct scan (case-insensitive; a value with six or more digits also
  matches with other separators between its digits, so "212 555 0143" finds "(212) 555-0143");
- **drops**, **dead_letters**, **index** and any other Parquet file: every column, the same way;
- **findings**: whether the pii stage found and scrubbed the value, by the HMAC of its canonical
  form in `pii/findings-*.parquet`, and from which field (`text`, `url_or_path`, `meta.KEY`);
- **shards**: its token ids under the release's tokenizer in `shards/*.arrow` (`audit_shards`);
- **every other file** (manifest, reports, dataset card, tokenizer files): as text.

Values are never printed, not even in part: a line of FILE is named by its number and length.

The salt: findings hold HMACs, so the audit needs the key the release was built with (never
stored in it; the reports keep its fingerprint). It is taken from `--salt`, else
`$GRISTMILL_PII_SALT`, else the `pii.salt` / `pii.salt_file` of `--config JOB.yaml`, else
`--salt-file`, else the release's declared public demo salt, else the key file that jobs make by
default (`~/.config/gristmill/pii-salt`). It is checked against the release's fingerprint and a
different one refused, since every HMAC comparison would then be meaningless.

Exit status: 0 when no value occurs anywhere in the release (findings aside: a finding is a
value that was scrubbed), 1 when some value does (erasure still needed), 2 on a usage error, a
salt that does not match, or shards that cannot be searched.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines import registry
from gristmill.pipelines.tools.audit_shards import ShardSearch, ShardSearchError
from gristmill.schemas.tables import FINDINGS_DIR
from gristmill.transforms.pii.engine import PATTERN_ENTITIES
from gristmill.transforms.pii.hashing import (
    DEMO_PREFIX,
    SALT_FILE,
    canonical,
    key_from_file,
    resolve_salt,
    salt_fingerprint,
    value_hash,
)
from gristmill.transforms.sinks import parquet_file

SALT_ENV = "GRISTMILL_PII_SALT"
HASHED_TYPES = (*PATTERN_ENTITIES, "PERSON")  # the types whose values have canonical forms
MAX_IDS = 5
SEPARATORS = r"[\s\-.()/]{0,3}"
DOCUMENTS = "documents"
FINDINGS = FINDINGS_DIR
SHARDS = "shards"
TEXT_CHUNK = 1 << 24  # other files are read as text in chunks this long (with overlap)


class AuditError(Exception):
    """A problem with the arguments or the release, phrased for the person running the audit."""


@dataclass
class Result:
    line: int
    length: int
    where: dict[str, int] = field(default_factory=dict)  # location -> rows or files holding it
    doc_ids: set[str] = field(default_factory=set)
    finding_docs: set[str] = field(default_factory=set)
    finding_types: dict[str, int] = field(default_factory=dict)
    scrubbed_from: dict[str, int] = field(default_factory=dict)  # field -> findings
    shard_files: set[str] = field(default_factory=set)
    shard_matches: int = 0

    @property
    def masked(self) -> str:
        return f"({self.length} chars)"

    @property
    def present(self) -> bool:
        """Still somewhere in the release: erasure needed."""
        return bool(self.where or self.shard_files)

    def seen(self, location: str) -> None:
        self.where[location] = self.where.get(location, 0) + 1

    def as_json(self) -> dict:
        docs = {k: v for k, v in self.where.items() if k.startswith(DOCUMENTS + ".")}
        return {
            "line": self.line,
            "masked": self.masked,
            "in_documents": len(self.doc_ids),
            "document_fields": dict(sorted(docs.items())),
            "document_ids": sorted(self.doc_ids)[:MAX_IDS],
            "elsewhere": {k: v for k, v in sorted(self.where.items()) if k not in docs},
            "in_findings": sum(self.finding_types.values()),
            "finding_documents": len(self.finding_docs),
            "finding_types": dict(sorted(self.finding_types.items())),
            "scrubbed_from": dict(sorted(self.scrubbed_from.items())),
            "in_shards": len(self.shard_files),
            "shard_files": sorted(self.shard_files),
            "shard_matches": self.shard_matches,
        }

    def describe(self) -> str:
        """One line of the text report: where, never what."""
        found = ", ".join(f"{k} ({v})" for k, v in sorted(self.where.items()))
        found = f"in {found}" if found else "not in any file"
        if self.doc_ids:
            ids = sorted(self.doc_ids)
            found += f"; documents {', '.join(ids[:MAX_IDS])}{', …' if len(ids) > MAX_IDS else ''}"
        shards = (
            f"in {len(self.shard_files)} shard files ({', '.join(sorted(self.shard_files))})"
            if self.shard_files
            else "not in the shards"
        )
        scrubbed = (
            f"found and scrubbed {sum(self.finding_types.values())} times in "
            f"{len(self.finding_docs)} documents ({', '.join(sorted(self.finding_types))}; "
            f"from {', '.join(sorted(self.scrubbed_from))})"
            if self.finding_types
            else "no finding"
        )
        return f"  line {self.line:>4}  {self.masked:<12}  {found}; {shards}; {scrubbed}"


def value_pattern(value: str) -> re.Pattern:
    """How the direct scan looks for a value: as written, any case; digits with any separators."""
    digits = [c for c in value if c.isdecimal()]
    alternatives = [re.escape(value)]
    if len(digits) >= 6 and len(digits) >= 0.6 * len(value.replace(" ", "")):
        alternatives.append(r"(?<!\d)" + SEPARATORS.join(digits) + r"(?!\d)")
    return re.compile("|".join(alternatives), re.IGNORECASE)


def _match(root: str, pattern: str) -> list[str]:
    try:
        found = FileSystems.match([posixpath.join(root, pattern)])[0].metadata_list
    except Exception:
        return []
    return sorted(m.path for m in found)


def _parquet_batches(path: str, columns: list[str] | None = None):
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        for batch in parquet_file(fh).iter_batches(columns=columns, batch_size=4096):
            yield batch.to_pydict()


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


def _location(rel: str, column: str) -> str:
    """documents.<column> for document files; the top folder (or the file) otherwise."""
    top = rel.split("/", 1)[0]
    if top == DOCUMENTS:
        return f"{DOCUMENTS}.{column}"
    return top if "/" in rel else rel


def release_salt(root: str) -> dict[str, Any]:
    """What the release recorded of its salt (fingerprint, source, a demo salt's reference)."""
    for rel, path in (
        ("reports/privacy.json", ("config", "salt")),
        *(
            ("reports/run.json", ("stage_reports", stage.name, "config", "salt"))
            for stage in registry.with_report("privacy")
        ),
    ):
        full = posixpath.join(root, rel)
        if not FileSystems.exists(full):
            continue
        with FileSystems.open(full, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            node = json.loads(fh.read().decode("utf-8"))
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get("fingerprint"), str):
            return node
    return {}


def _from_config(path: str) -> tuple[bytes, str]:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as err:
        raise AuditError(f"--config {path}: {type(err).__name__}") from None
    section = registry.with_report("privacy")[0].section
    given = (raw.get(section) or {}) if isinstance(raw, dict) else {}
    salt, salt_file = str(given.get("salt") or ""), str(given.get("salt_file") or SALT_FILE)
    origin = f"{section}.salt of {path}" if salt else f"{section}.salt_file of {path}"
    return resolve_salt(salt, salt_file), origin


def choose_salt(args: argparse.Namespace, recorded: dict[str, Any]) -> tuple[bytes, str]:
    """(key, where it came from); never a value built into the code."""
    try:
        if args.salt:
            return resolve_salt(args.salt), "--salt"
        if os.environ.get(SALT_ENV):
            return os.environ[SALT_ENV].encode("utf-8"), f"${SALT_ENV}"
        if args.config:
            return _from_config(args.config)
        if args.salt_file:
            return key_from_file(args.salt_file), "--salt-file"
        ref = str(recorded.get("ref") or "")
        if ref.startswith(DEMO_PREFIX):
            return resolve_salt(ref), "the release's public demo salt"
        return key_from_file(SALT_FILE), f"the key file {SALT_FILE}"
    except ValueError as err:
        raise AuditError(
            f"{err}; give the salt with --salt, --salt-file, ${SALT_ENV} or --config"
        ) from None


def read_values(path: str) -> list[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as err:
        raise AuditError(f"--values {path}: {err.strerror or type(err).__name__}") from None
    return [(i, line.strip()) for i, line in enumerate(lines, 1) if line.strip()]


class Scanner:
    """The direct scan of every file: one combined pattern first, then each value's own."""

    def __init__(self, values: list[str], results: list[Result]):
        self.patterns = [value_pattern(v) for v in values]
        self.any = re.compile("|".join(f"(?:{p.pattern})" for p in self.patterns), re.IGNORECASE)
        self.results = results

    def cell(self, text: str, location: str, doc_id: str | None = None) -> None:
        if not text or not self.any.search(text):
            return
        for i, pattern in enumerate(self.patterns):
            if pattern.search(text):
                self.results[i].seen(location)
                if doc_id is not None:
                    self.results[i].doc_ids.add(doc_id)

    def parquet(self, root: str, path: str) -> None:
        rel = posixpath.relpath(path, root)
        documents = rel.startswith(DOCUMENTS + "/")
        for batch in _parquet_batches(path):
            ids = batch.get("id") if documents else None
            for column, cells in batch.items():
                location = _location(rel, column)
                for row, value in enumerate(cells):
                    self.cell(_cell(value), location, ids[row] if ids else None)

    def text_file(self, root: str, path: str) -> None:
        rel = posixpath.relpath(path, root)
        location = _location(rel, "")
        found: set[int] = set()
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            tail = ""
            while chunk := fh.read(TEXT_CHUNK):
                text = tail + chunk.decode("utf-8", errors="replace")
                for i, pattern in enumerate(self.patterns):
                    if i not in found and pattern.search(text):
                        found.add(i)
                tail = text[-1024:]
        for i in sorted(found):
            self.results[i].seen(location)


def _findings(root: str, path: str, hashes: dict[str, list[int]], results: list[Result]) -> None:
    columns = ["doc_id", "entity_type", "recognizer", "value_hash"]
    for batch in _parquet_batches(path):
        rows = zip(*(batch[c] for c in columns), strict=True)
        fields = batch.get("field") or [None] * len(batch["doc_id"])
        for (doc_id, kind, recognizer, digest), named in zip(rows, fields, strict=True):
            # releases before the `field` column named it in the recognizer: `meta.x/Email...`
            where = named or (recognizer.split("/", 1)[0] if "/" in recognizer else "text")
            for i in set(hashes.get(digest, ())):
                r = results[i]
                r.finding_docs.add(doc_id)
                r.finding_types[kind] = r.finding_types.get(kind, 0) + 1
                r.scrubbed_from[where] = r.scrubbed_from.get(where, 0) + 1


def audit(
    root: str, values: list[tuple[int, str]], key: bytes, shards: ShardSearch | None = None
) -> list[Result]:
    results = [Result(line, len(v)) for line, v in values]
    hashes: dict[str, list[int]] = {}
    for i, (_, v) in enumerate(values):
        forms = {canonical(t, v): t for t in HASHED_TYPES}
        for form, kind in forms.items():
            if form:
                hashes.setdefault(value_hash(key, kind, v), []).append(i)
    scanner = Scanner([v for _, v in values], results)
    for path in _match(root, "**"):
        rel = posixpath.relpath(path, root)
        if rel.startswith(SHARDS + "/") and rel.endswith(".arrow"):
            continue  # token ids: searched by ShardSearch
        if rel.endswith(".parquet"):
            scanner.parquet(root, path)
            if rel.startswith(FINDINGS + "/findings-"):
                _findings(root, path, hashes, results)
        else:
            scanner.text_file(root, path)
    if shards is not None:
        for result, hits in zip(results, shards.search([v for _, v in values]), strict=True):
            result.shard_files, result.shard_matches = hits.files, hits.matches
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gristmill audit",
        description="Report where the listed values occur in a release, without printing them.",
        epilog="exit status: 0 no value occurs in any file of the release, 1 some value does "
        "(erasure still needed), 2 usage error, wrong salt or shards that cannot be searched",
    )
    parser.add_argument("release", help="release directory (any Beam filesystem path)")
    parser.add_argument("--values", required=True, help="file with one value per line")
    parser.add_argument("--salt", help="the pii salt the release was built with (or env:VARNAME)")
    parser.add_argument("--salt-file", help="the key file the release was built with")
    parser.add_argument("--config", help="job file whose pii.salt (or pii.salt_file) to use")
    parser.add_argument(
        "--tokenizer", help="the tokenizer.json the shards were made with (default: the release's)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def _checked_salt(args: argparse.Namespace, root: str) -> tuple[bytes, str]:
    recorded = release_salt(root)
    key, origin = choose_salt(args, recorded)
    fingerprint = recorded.get("fingerprint")
    if fingerprint is not None and fingerprint != salt_fingerprint(key):
        raise AuditError(
            f"the salt from {origin} is not the one this release was built with "
            f"(fingerprint {salt_fingerprint(key)}, release {fingerprint}); give it with --salt, "
            f"--salt-file, ${SALT_ENV} or --config"
        )
    if fingerprint is None:
        print(
            "audit: the release records no salt fingerprint; HMAC matches are unchecked",
            file=sys.stderr,
        )
    return key, origin


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        root = args.release.rstrip("/")
        if not FileSystems.exists(posixpath.join(root, "manifest.json")):
            raise AuditError(f"{root}: not a complete release (no manifest.json)")
        values = read_values(args.values)
        key, origin = _checked_salt(args, root)
        shards = ShardSearch(root, args.tokenizer)
        if not shards.paths:
            print("audit: the release has no shards; its other files only", file=sys.stderr)
        results = audit(root, values, key, shards)
    except (AuditError, ShardSearchError, ValueError) as err:
        print(f"gristmill audit: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.as_json() for r in results], indent=2))
    else:
        print(
            f"audit of {root}: {len(results)} values, salt from {origin}, "
            f"{len(shards.paths)} shard files searched"
        )
        for r in results:
            print(r.describe())
    return 1 if any(r.present for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
