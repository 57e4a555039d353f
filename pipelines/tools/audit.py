"""`gristmill audit RELEASE --values FILE`: for an erasure request, where do these values occur?

For each value in FILE (one per line; blank lines are skipped) it reports:

- **documents**: whether the value still occurs in the release's `documents/*.parquet` text, by
  a direct scan (case-insensitive; a value with six or more digits also matches with other
  separators between its digits, so "212 555 0143" finds "(212) 555-0143");
- **findings**: whether the pii stage found it, by the HMAC of its canonical form in
  `pii/findings-*.parquet`; a match means the value was in the input and was scrubbed;
- **shards**: whether it occurs in the masked-LM training shards (`shards/*.arrow`), by its
  token ids under the release's tokenizer (`audit_shards`), and in which shard files. The
  shards are made from the documents, but they are files of their own: a document erased
  after the job still sits in them until they are rebuilt.

Values are never printed: a line is named by its number and a masked form.

The salt: findings hold HMACs, so the audit needs the salt the release was built with. The salt
is never stored in the release (the reports keep only its fingerprint, `salt_fingerprint`); it is
taken from `--salt`, else the environment variable `GRISTMILL_PII_SALT`, else the `pii.salt` of
`--config JOB.yaml` (which may itself say `env:VARNAME`), else the documented default. The audit
checks it against the fingerprint in `reports/privacy.json` (or `reports/run.json`) and refuses
a different one, since every HMAC comparison would then be meaningless.

Exit status: 0 when no value occurs in the documents or the shards, 1 when some value does
(erasure still needed), 2 on a usage error, a salt that does not match, or shards that cannot
be searched (no tokenizer, or not the one they were made with).
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import sys
from dataclasses import dataclass, field

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines import registry
from gristmill.pipelines.tools.audit_shards import ShardSearch, ShardSearchError
from gristmill.transforms.pii.engine import PATTERN_ENTITIES
from gristmill.transforms.pii.hashing import (
    DEFAULT_SALT,
    canonical,
    resolve_salt,
    salt_fingerprint,
    value_hash,
)

SALT_ENV = "GRISTMILL_PII_SALT"
HASHED_TYPES = (*PATTERN_ENTITIES, "PERSON")  # the types whose values have canonical forms
MAX_IDS = 5
SEPARATORS = r"[\s\-.()/]{0,3}"


class AuditError(Exception):
    """A problem with the arguments or the release, phrased for the person running the audit."""


@dataclass
class Result:
    line: int
    masked: str
    doc_ids: set[str] = field(default_factory=set)
    finding_docs: set[str] = field(default_factory=set)
    finding_types: dict[str, int] = field(default_factory=dict)
    shard_files: set[str] = field(default_factory=set)
    shard_matches: int = 0

    @property
    def present(self) -> bool:
        """Still somewhere in the release: erasure needed."""
        return bool(self.doc_ids or self.shard_files)

    def as_json(self) -> dict:
        return {
            "line": self.line,
            "masked": self.masked,
            "in_documents": len(self.doc_ids),
            "document_ids": sorted(self.doc_ids)[:MAX_IDS],
            "in_findings": sum(self.finding_types.values()),
            "finding_documents": len(self.finding_docs),
            "finding_types": dict(sorted(self.finding_types.items())),
            "in_shards": len(self.shard_files),
            "shard_files": sorted(self.shard_files),
            "shard_matches": self.shard_matches,
        }

    def describe(self) -> str:
        """One line of the text report (masked value only)."""
        found = f"in {len(self.doc_ids)} documents" if self.doc_ids else "not in the documents"
        if self.doc_ids:
            ids = sorted(self.doc_ids)
            found += f" ({', '.join(ids[:MAX_IDS])}{', …' if len(ids) > MAX_IDS else ''})"
        shards = (
            f"in {len(self.shard_files)} shard files ({', '.join(sorted(self.shard_files))})"
            if self.shard_files
            else "not in the shards"
        )
        scrubbed = (
            f"found and scrubbed {sum(self.finding_types.values())} times in "
            f"{len(self.finding_docs)} documents ({', '.join(sorted(self.finding_types))})"
            if self.finding_types
            else "no finding"
        )
        return f"  line {self.line:>4}  {self.masked:<28}  {found}; {shards}; {scrubbed}"


def mask(value: str) -> str:
    """A masked form that identifies a line to its owner without showing the value."""
    chars = [c for c in value]
    alnum = [i for i, c in enumerate(chars) if c.isalnum()]
    keep = set()
    if sum(c.isdigit() for c in value) >= 6:
        keep = set(alnum[-2:])  # like a card receipt: the last two digits
    elif len(alnum) >= 8:
        keep = {alnum[0]}
    out = "".join(c if (i in keep or not c.isalnum()) else "*" for i, c in enumerate(chars))
    return f"{out} ({len(value)} chars)"


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


def _parquet_batches(path: str, columns: list[str]):
    import pyarrow.parquet as pq

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        for batch in pq.ParquetFile(fh).iter_batches(columns=columns, batch_size=4096):
            yield batch.to_pydict()


def release_fingerprint(root: str) -> str | None:
    """The salt fingerprint the release recorded, if any."""
    for rel, path in (
        ("reports/privacy.json", ("config", "salt", "fingerprint")),
        *(
            ("reports/run.json", ("stage_reports", stage.name, "config", "salt", "fingerprint"))
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
        if isinstance(node, str):
            return node
    return None


def choose_salt(args: argparse.Namespace) -> tuple[bytes, str]:
    """(salt, where it came from)."""
    if args.salt:
        return resolve_salt(args.salt), "--salt"
    if os.environ.get(SALT_ENV):
        return os.environ[SALT_ENV].encode("utf-8"), f"${SALT_ENV}"
    if args.config:
        import yaml

        try:
            with open(args.config, encoding="utf-8") as fh:
                raw = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as err:
            raise AuditError(f"--config {args.config}: {type(err).__name__}") from None
        section = registry.with_report("privacy")[0].section
        salt = ((raw.get(section) or {}) if isinstance(raw, dict) else {}).get("salt", DEFAULT_SALT)
        try:
            return resolve_salt(str(salt)), f"{section}.salt of {args.config}"
        except ValueError as err:
            raise AuditError(str(err)) from None
    return resolve_salt(DEFAULT_SALT), "the default salt"


def read_values(path: str) -> list[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as err:
        raise AuditError(f"--values {path}: {err.strerror or type(err).__name__}") from None
    return [(i, line.strip()) for i, line in enumerate(lines, 1) if line.strip()]


def audit(
    root: str, values: list[tuple[int, str]], key: bytes, shards: ShardSearch | None = None
) -> list[Result]:
    results = [Result(line, mask(v)) for line, v in values]
    patterns = [value_pattern(v) for _, v in values]
    hashes: dict[str, list[int]] = {}
    for i, (_, v) in enumerate(values):
        forms = {canonical(t, v): t for t in HASHED_TYPES}
        for form, kind in forms.items():
            if form:
                hashes.setdefault(value_hash(key, kind, v), []).append(i)
    for path in _match(root, "documents/*.parquet"):
        for batch in _parquet_batches(path, ["id", "text"]):
            for doc_id, text in zip(batch["id"], batch["text"], strict=True):
                for i, pattern in enumerate(patterns):
                    if pattern.search(text):
                        results[i].doc_ids.add(doc_id)
    for path in _match(root, "pii/findings-*.parquet"):
        for batch in _parquet_batches(path, ["doc_id", "entity_type", "value_hash"]):
            for doc_id, kind, digest in zip(
                batch["doc_id"], batch["entity_type"], batch["value_hash"], strict=True
            ):
                for i in set(hashes.get(digest, ())):
                    results[i].finding_docs.add(doc_id)
                    results[i].finding_types[kind] = results[i].finding_types.get(kind, 0) + 1
    if shards is not None:
        for result, hits in zip(results, shards.search([v for _, v in values]), strict=True):
            result.shard_files, result.shard_matches = hits.files, hits.matches
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gristmill audit",
        description="Report where the listed values occur in a release, without printing them.",
        epilog="exit status: 0 no value occurs in the documents or shards, 1 some value does "
        "(erasure still needed), 2 usage error, wrong salt or shards that cannot be searched",
    )
    parser.add_argument("release", help="release directory (any Beam filesystem path)")
    parser.add_argument("--values", required=True, help="file with one value per line")
    parser.add_argument("--salt", help="the pii salt the release was built with (or env:VARNAME)")
    parser.add_argument("--config", help="job file whose pii.salt to use")
    parser.add_argument(
        "--tokenizer", help="the tokenizer.json the shards were made with (default: the release's)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        root = args.release.rstrip("/")
        if not FileSystems.exists(posixpath.join(root, "manifest.json")):
            raise AuditError(f"{root}: not a complete release (no manifest.json)")
        values = read_values(args.values)
        key, origin = choose_salt(args)
        recorded = release_fingerprint(root)
        if recorded is not None and recorded != salt_fingerprint(key):
            raise AuditError(
                f"the salt from {origin} is not the one this release was built with "
                f"(fingerprint {salt_fingerprint(key)}, release {recorded}); give it with --salt, "
                f"${SALT_ENV} or --config"
            )
        if recorded is None:
            print(
                "audit: the release records no salt fingerprint; HMAC matches are unchecked",
                file=sys.stderr,
            )
        if origin == "the default salt":
            print("audit: using the default salt (the release was built with it)", file=sys.stderr)
        shards = ShardSearch(root, args.tokenizer)
        if not shards.paths:
            print("audit: the release has no shards; documents and findings only", file=sys.stderr)
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
