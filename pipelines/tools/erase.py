"""`gristmill erase RELEASE --values FILE --output NEW`: a new release without listed values.

For an erasure request. Every document that holds a listed value (in its text, url_or_path or
any meta value, matched as `gristmill audit` matches) is removed, or with `--scrub` the value is
replaced in it (by the release's pii operator when its engine recognizes the whole value, else
by `<ERASED>`). Then, in NEW: the document files that changed are rewritten and the others copied
byte for byte; rows of the dedup index and the pii findings that name a removed document go;
any other cell or report text holding a value has it replaced by `[erased]`; the training
shards are made again from the remaining documents with the release's own tokenizer
(erase_shards.py); removed documents are accounted as drops of an `erase` stage
(drops/erased-*.parquet). NEW's manifest names its parent and records the erasure by the HMAC
of each value under the release's pii key (never the values), so `gristmill audit NEW` finds
nothing and a later request can be checked against it. Same release, values and key: the same
bytes (the manifest's `created_at` aside).

RELEASE is only read. NEW must not be inside RELEASE; an existing NEW that is not empty is
refused unless `--overwrite` (and must be a gristmill release, see release/guard.py). The key
is found as `audit` finds it (--salt, --salt-file, $GRISTMILL_PII_SALT, --config, the key file).
Exit status: 0 done, 2 on a usage error (one line).
"""

from __future__ import annotations

import argparse
import hmac
import os
import posixpath
import sys
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines.release import guard
from gristmill.pipelines.release.manifest import (
    MANIFEST,
    _write_text,
    check_accounting,
    clear,
    dumps,
    read_json,
    with_card,
)
from gristmill.pipelines.tools import erase_files as ef
from gristmill.pipelines.tools.audit import AuditError, _checked_salt, read_values
from gristmill.pipelines.tools.erase_shards import is_shard_file, rebuild_shards
from gristmill.schemas.tables import DROP_SCHEMA
from gristmill.transforms.accounting import table_of
from gristmill.transforms.training.tokenizer import CONFIG_FILENAME, SPECIAL_TOKENS_FILENAME

STAGE, REASON = "erase", "erased"
ERASED_DROPS = "drops/erased-00000-of-00001.parquet"
CARD = "README.md"
TOKENIZER_FILES = ("tokenizer.json", CONFIG_FILENAME, SPECIAL_TOKENS_FILENAME)
SKIP = (MANIFEST, guard.LOCK, CARD)  # written anew, or never copied


class EraseError(Exception):
    """A problem with the arguments, phrased for the person running the erasure."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gristmill erase",
        description="Write a new release without the documents that hold the listed values "
        "(RELEASE is never changed); the manifest records the values by HMAC only.",
        epilog="exit status: 0 done, 2 usage error",
    )
    parser.add_argument(
        "release", help="the release to erase from (a directory with manifest.json)"
    )
    parser.add_argument("--values", required=True, help="file with one value per line")
    parser.add_argument("--output", required=True, help="the new release's directory")
    parser.add_argument(
        "--scrub", action="store_true", help="replace the values in the documents, keep them"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a release at --output")
    parser.add_argument("--salt", help="the pii salt the release was built with (or env:VARNAME)")
    parser.add_argument("--salt-file", help="the key file the release was built with")
    parser.add_argument("--config", help="job file whose pii.salt (or pii.salt_file) to use")
    return parser


def _inside(path: str, folder: str) -> bool:
    a, b = os.path.realpath(path), os.path.realpath(folder)
    return a == b or a.startswith(b.rstrip("/") + "/")


def _target(root: str, out: str, overwrite: bool) -> tuple[str, bool]:
    """(where to build NEW, whether to swap it in at the end); refuses what would lose files."""
    if "://" not in out and "://" not in root and _inside(out, root):
        raise EraseError(f"--output {out} is inside the release {root}; name another folder")
    try:
        replace = guard.check_output(out, [root], overwrite)
        if replace:
            guard.check_output(guard.beside(out), [root], overwrite=True)
    except guard.OutputError as err:
        raise EraseError(str(err).replace("output:", "--output", 1)) from None
    if replace:
        clear(guard.beside(out))
        return guard.beside(out), True
    if "://" not in out and os.path.isdir(out) and os.listdir(out):
        if not overwrite:
            raise EraseError(f"--output {out} is not empty; --overwrite replaces it")
        clear(out)
    return out, False


def _replacements(manifest: dict[str, Any], values: list[str], key: bytes, scrub: bool):
    """Per value, what a scrubbed document holds instead: the pii operator's output for the
    value when the release's engine scrubs all of it, else `<ERASED>`."""
    from gristmill.pipelines import registry

    private = registry.with_report("privacy")  # the pii stage: its engine and operators
    config = manifest.get("config") or {}
    section = (config.get(private[0].section) if private else None) or {}
    if not scrub or not section.get("enabled"):
        return [ef.ERASED] * len(values)
    from gristmill.transforms.pii.outside import scrub_strings

    own = {**section, "salt": key.decode("utf-8", errors="surrogateescape")}
    done = scrub_strings(own, values)
    matcher = ef.Matcher(values, done)
    return [
        d if d != v and not matcher.patterns[i].search(d) else ef.ERASED
        for i, (v, d) in enumerate(zip(values, done, strict=True))
    ]


def _erased_drops(out: str, removed: dict[str, str]) -> dict[str, Any] | None:
    if not removed:
        return None
    import pyarrow as pa

    from gristmill.transforms.sorted_runs import write_rows

    # no url_or_path: the erased document's may hold the very value erased
    rows = ({"id": i, "source": removed[i], "stage": STAGE, "reason": REASON, "detail": "",
             "url_or_path": ""} for i in sorted(removed))  # fmt: skip
    to_table = lambda chunk: pa.Table.from_pylist(chunk, schema=DROP_SCHEMA)  # noqa: E731
    count, size, sha = write_rows(posixpath.join(out, ERASED_DROPS), to_table, rows)
    return {"path": ERASED_DROPS, "rows": count, "bytes": size, "sha256": sha}


class _Erasure:
    """The files of NEW, written one at a time; what was removed, scrubbed and rewritten."""

    def __init__(self, root: str, out: str, manifest: dict, matcher: ef.Matcher, scrub: bool):
        self.root, self.out, self.manifest, self.matcher = root, out, manifest, matcher
        self.scrub = scrub
        self.listed = {o["path"]: o for o in manifest["outputs"]}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.removed: dict[str, str] = {}
        self.scrubbed = 0
        self.rewritten: list[str] = []
        self.warnings: list[str] = []

    def run(self) -> None:
        files = [f for f in ef.release_files(self.root) if f not in SKIP]
        documents = [f for f in files if table_of(f) == "documents" and f.endswith(".parquet")]
        for rel in documents:  # first: the other tables drop rows naming removed documents
            self._keep(rel, ef.rewrite_documents(*self._ends(rel), self.matcher, self.scrub))
        for rel in files:
            if rel in documents or (is_shard_file(rel) and self._documents_changed):
                continue
            if rel.endswith(".parquet") and not is_shard_file(rel):
                self._keep(rel, ef.rewrite_table(*self._ends(rel), self.matcher, self.removed))
            elif rel in TOKENIZER_FILES or is_shard_file(rel):
                self._copy(rel)
            else:
                self._text(rel)
        if self._documents_changed and any(is_shard_file(p) for p in self.listed):
            for entry in rebuild_shards(self.out, documents, self.manifest):
                self.outputs[entry["path"]] = entry
        drops = _erased_drops(self.out, self.removed)
        if drops:
            self.outputs[drops["path"]] = drops

    @property
    def _documents_changed(self) -> bool:
        return bool(self.removed or self.scrubbed)

    def _ends(self, rel: str) -> tuple[str, str, dict[str, Any]]:
        entry = self.listed.get(rel, {"path": rel})
        return posixpath.join(self.root, rel), posixpath.join(self.out, rel), entry

    def _keep(self, rel: str, written: ef.Written) -> None:
        self.removed.update(written.removed)
        self.scrubbed += written.scrubbed
        if written.changed:
            self.rewritten.append(rel)
        if rel in self.listed:
            self.outputs[rel] = written.entry

    def _copy(self, rel: str) -> None:
        src, dst, entry = self._ends(rel)
        if rel in TOKENIZER_FILES and ef.text_holds(src, self.matcher):
            self.warnings.append(
                f"{rel} holds a listed value; kept, so that token ids keep meaning"
            )
        size, sha = ef.copy_file(src, dst)
        if rel in self.listed:
            self.outputs[rel] = {**entry, "bytes": size, "sha256": sha}

    def _text(self, rel: str) -> None:
        src, dst, entry = self._ends(rel)
        size, sha, changed = ef.rewrite_text(src, dst, self.matcher)
        if changed:
            self.rewritten.append(rel)
        if rel in self.listed:
            self.outputs[rel] = {**entry, "bytes": size, "sha256": sha}


def _erase_stage(last: dict[str, Any], removed: dict[str, str]) -> dict[str, Any]:
    """The accounting of the removed documents: a stage after the release's last one."""
    by_source = {}
    for source, part in sorted(last.get("by_source", {}).items()):
        gone = sum(1 for s in removed.values() if s == source)
        dropped = {REASON: gone} if gone else {}
        by_source[source] = {"in": part["kept"], "kept": part["kept"] - gone, "dropped": dropped}
    n = len(removed)
    dropped = {REASON: n} if n else {}
    return {"name": STAGE, "in": last["kept"], "kept": last["kept"] - n, "dropped": dropped,
            "by_source": by_source}  # fmt: skip


def _scrubbed(node: Any, matcher: ef.Matcher) -> Any:
    """A manifest part with every listed value in its strings replaced by `[erased]`."""
    if isinstance(node, str):
        return matcher.sub(node, ef.ERASED_TEXT) if matcher.holds(node) else node
    if isinstance(node, list):
        return [_scrubbed(v, matcher) for v in node]
    if isinstance(node, dict):
        return {k: _scrubbed(v, matcher) for k, v in node.items()}
    return node


def _inputs(inputs: list[dict], matcher: ef.Matcher, key: bytes) -> list[dict]:
    """Input paths without the values; one that loses a value keeps its HMAC, so that a
    refresh still knows the file was read (and does not admit its documents again)."""
    from gristmill.transforms.pii.outside import path_hmac

    out = []
    for entry in inputs:
        if matcher.holds(entry["path"]) and not entry.get("path_hmac"):
            entry = {**entry, "path_hmac": path_hmac(key, entry["path"])}
        out.append(_scrubbed(entry, matcher))
    return out


def _manifest(parent: dict, root: str, job: _Erasure, digests: list[str], key: bytes) -> dict:
    from gristmill.transforms.pii.hashing import salt_fingerprint

    manifest = _scrubbed(
        {k: v for k, v in parent.items() if k not in ("created_at", "inputs")}, job.matcher
    )
    manifest["inputs"] = _inputs(parent["inputs"], job.matcher, key)
    if not job.scrub:
        manifest["stages"] = [*parent["stages"], _erase_stage(parent["stages"][-1], job.removed)]
    manifest["outputs"] = sorted(job.outputs.values(), key=lambda o: o["path"])
    counts = manifest["counts"]
    counts["documents"] = manifest["stages"][-1]["kept"]
    counts["drops"] = sum(sum(s["dropped"].values()) for s in manifest["stages"])
    manifest["warnings"] = [*parent.get("warnings", []), *job.warnings]
    manifest["erasure"] = {
        "parent": root,
        "parent_config_sha256": parent.get("config_sha256"),
        "parent_created_at": parent.get("created_at"),
        "action": "scrub" if job.scrub else "drop",
        "values_hmac": digests,
        "salt_fingerprint": salt_fingerprint(key),
        "documents_removed": len(job.removed),
        "documents_scrubbed": job.scrubbed,
        "files_rewritten": sorted(job.rewritten),
        "shards_rebuilt": job._documents_changed and any(is_shard_file(p) for p in job.outputs),
        "warnings": job.warnings,
    }
    check_accounting(manifest["stages"], manifest["inputs"], manifest["outputs"])
    return manifest


def erase(root: str, out: str, values: list[str], key: bytes, scrub: bool = False) -> dict:
    """Writes NEW (`out`, which must be empty or absent) and returns its manifest."""
    parent = read_json(posixpath.join(root, MANIFEST))
    matcher = ef.Matcher(values, _replacements(parent, values, key, scrub))
    job = _Erasure(root, out, parent, matcher, scrub)
    job.run()
    digests = sorted({hmac.new(key, v.encode("utf-8"), sha256).hexdigest() for v in values})
    manifest = _manifest(parent, root, job, digests, key)
    manifest["outputs"] = with_card(out, manifest)
    manifest["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = posixpath.join(out, MANIFEST + ".tmp")
    _write_text(tmp, dumps(manifest))
    FileSystems.rename([tmp], [posixpath.join(out, MANIFEST)])
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root, out = args.release.rstrip("/") or "/", args.output.rstrip("/") or "/"
    try:
        if not FileSystems.exists(posixpath.join(root, MANIFEST)):
            raise EraseError(f"{root}: not a complete release (no {MANIFEST})")
        values = sorted({v for _, v in read_values(args.values)})
        if not values:
            raise EraseError(f"--values {args.values}: no value in it")
        key, _ = _checked_salt(args, root)
        build, swap = _target(root, out, args.overwrite)
        manifest = erase(root, build, values, key, args.scrub)
        if swap:
            guard.swap(build, out)
    except (EraseError, AuditError, ValueError) as err:
        print(f"gristmill erase: {err}", file=sys.stderr)
        return 2
    e = manifest["erasure"]
    print(
        f"erase: {len(values)} values; {e['documents_removed']} documents removed, "
        f"{e['documents_scrubbed']} scrubbed, {len(e['files_rewritten'])} files rewritten"
        f"{', shards made again' if e['shards_rebuilt'] else ''}; the new release: {out}"
    )
    for warning in manifest["erasure"].get("warnings", []):
        print(f"erase: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
