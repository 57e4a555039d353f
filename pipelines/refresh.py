"""`gristmill refresh`: the next release from a previous one and new inputs.

A refresh is the corpus job with `refresh.parent` set, on the parent's configuration: the
config loader starts from the config the parent's manifest records (sources aside; see
recorded.py), and every setting that still differs from the parent's is listed in the log before
any work and recorded in the manifest (`refresh.config_changes`). A parent named through a
`latest` link is recorded as the folder it points to. Before any work starts:
- the parent, and every release it was refreshed from, must be finished (manifest.json) and the
  parent's tokenizer must be the one its manifest and its shards name;
- inputs an earlier release already read (same path, size and sha256) are skipped: only a file
  whose path and size match is hashed, so an unchanged crawl costs one read per candidate file.
  A release built with the pii stage records each input by its scrubbed path and `path_hmac`;
  those are matched by the HMAC of this run's path under the pii key (refresh.py `Refresh.key`),
  the others by path. Skipped inputs are listed with their paths scrubbed the same way;
- the parent's tokenizer.json is reused (`refresh.tokenizer: reuse`, the default), so the new
  shards' token ids mean what the parent's mean; `retrain` trains one on the new documents.
In the job, the dedup_parent stage (transforms/dedup/parent.py) drops what the lineage already
holds, and the new documents are then deduplicated among themselves as in any run. The release
holds only what is new; its manifest's `refresh` section says where the rest lives.
"""

from __future__ import annotations

import logging
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

from gristmill.pipelines import recorded
from gristmill.pipelines.config import ConfigError, JobConfig
from gristmill.pipelines.release.manifest import pii_section
from gristmill.pipelines.tools.validate import training_problems
from gristmill.transforms.dedup.parent import EXACT_REASON, NAME, NEAR_REASON
from gristmill.transforms.dedup.parent_index import (
    ParentIndexError,
    load_lineage,
)
from gristmill.transforms.pii.outside import path_hmac
from gristmill.transforms.sources.paths import shown_path
from gristmill.transforms.sources.read import MatchedFile, file_sha256

log = logging.getLogger("gristmill")
Seen = tuple[str, str]  # ("path", normalized path) or ("hmac", path_hmac)


def _norm(path: str) -> str:
    """Local paths compare by absolute path; URLs as written."""
    return path if "://" in path else os.path.normpath(os.path.abspath(path))


@dataclass
class Refresh:
    parent: str
    manifest: dict[str, Any]
    lineage: list[str]
    consumed: dict[Seen, tuple[int, str, int]]  # ("path"|"hmac", key) -> (bytes, sha256, release)
    tokenizer: str  # reused | retrained | none
    skipped: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)  # settings unlike the parent's
    key: bytes | None = None  # the pii key, when an earlier release records paths by HMAC
    pii: dict[str, Any] | None = None  # this run's pii section when it runs (scrubs paths)

    def _seen(self, path: str) -> tuple[int, str, int] | None:
        shown = shown_path(path)
        seen = self.consumed.get(("path", _norm(shown)))
        if seen is None and self.key is not None:
            seen = self.consumed.get(("hmac", path_hmac(self.key, shown)))
        return seen

    def skip_consumed(self, files: dict[str, list[MatchedFile]]) -> dict[str, list[MatchedFile]]:
        """The input files minus those an earlier release read; records what it left out."""
        kept: dict[str, list[MatchedFile]] = {}
        for source, group in files.items():
            kept[source] = []
            for f in group:
                seen = self._seen(f.path)
                if seen is not None and seen[0] == f.size:
                    size, sha = file_sha256(f.path)
                    if (size, sha) == seen[:2]:
                        skip = {"source": source, "path": f.path, "bytes": size, "sha256": sha}
                        self.skipped.append({**skip, "release": seen[2]})
                        continue
                kept[source].append(f)
        return kept

    def manifest_section(self, manifest: dict[str, Any]) -> dict[str, Any]:
        stage = next((s for s in manifest["stages"] if s["name"] == NAME), None)
        dropped = stage["dropped"] if stage else {}
        return {
            "parent": self.parent,
            "parent_config_sha256": self.manifest.get("config_sha256"),
            "parent_created_at": self.manifest.get("created_at"),
            "lineage": self.lineage,
            "tokenizer": self.tokenizer,
            "config_changes": self.changes,
            "inputs_read": len(manifest["inputs"]),
            "inputs_skipped": self._skipped_shown(),
            "documents_added": manifest["counts"]["documents"],
            "already_present": {
                "exact": dropped.get(EXACT_REASON, 0),
                "near": dropped.get(NEAR_REASON, 0),
            },
        }

    def _skipped_shown(self) -> list[dict[str, Any]]:
        """The skipped inputs as the manifest lists them: paths scrubbed when pii runs."""
        skipped = sorted(self.skipped, key=lambda s: (s["source"], s["path"]))
        if self.pii is None or not skipped:
            return skipped
        from gristmill.transforms.pii.outside import path_records

        records = path_records(self.pii, [s["path"] for s in skipped])
        return [{**s, **r} for s, r in zip(skipped, records, strict=True)]


def _consumed(manifests: tuple[dict[str, Any], ...]) -> dict[Seen, tuple[int, str, int]]:
    """What the lineage read: by HMAC where a release recorded one, else by path."""
    found: dict[Seen, tuple[int, str, int]] = {}
    for k, manifest in enumerate(manifests):
        for i in manifest.get("inputs", []):
            if i.get("sha256"):
                seen = (
                    ("hmac", i["path_hmac"]) if i.get("path_hmac") else ("path", _norm(i["path"]))
                )
                found.setdefault(seen, (i["bytes"], i["sha256"], k))
    return found


def _key(cfg: JobConfig, consumed: dict[Seen, Any]) -> bytes | None:
    """The pii key to match paths recorded by HMAC with; None when none is (or when it cannot
    be read: then those inputs are read again, and dedup_parent drops what they repeat)."""
    if not any(kind == "hmac" for kind, _ in consumed):
        return None
    from gristmill.pipelines import registry
    from gristmill.transforms.pii.hashing import SALT_FILE, resolve_salt

    section = next((cfg.section(s.section) for s in registry.with_report("privacy")), {})
    try:
        return resolve_salt(str(section.get("salt") or ""), section.get("salt_file") or SALT_FILE)
    except ValueError as err:
        log.warning("refresh: inputs recorded by HMAC cannot be matched (%s); read again", err)
        return None


def _reuse_tokenizer(cfg: JobConfig, parent: str, manifest: dict[str, Any]) -> str:
    """Points tokenizer.path at the parent's tokenizer when training data is made; says which."""
    from gristmill.pipelines.graph import enabled_steps

    tok = cfg.section("tokenizer")
    if not enabled_steps(cfg):  # no training data is made
        return "none"
    if tok.get("path") and tok["path"] == _parent_tokenizer(parent, manifest):
        cfg.replace("tokenizer", path=None)  # a replayed refresh: the parent's, reused
        tok = cfg.section("tokenizer")
    if cfg.section("refresh")["tokenizer"] == "retrain" or tok.get("path"):
        return "retrained" if tok.get("path") is None else "given"
    if not manifest.get("tokenizer"):
        raise ConfigError(
            f"refresh.tokenizer: {parent} has no tokenizer to reuse; "
            "set refresh.tokenizer: retrain to train one on the new documents"
        )
    cfg.replace("tokenizer", path=_parent_tokenizer(parent, manifest))
    return "reused"


def _parent_tokenizer(parent: str, manifest: dict[str, Any]) -> str | None:
    if not manifest.get("tokenizer"):
        return None
    return posixpath.join(parent, manifest["tokenizer"].get("path", "tokenizer.json"))


def _changes(cfg: JobConfig, parent: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings unlike the parent's, before the tokenizer is settled (reusing the parent's
    tokenizer is no change); listed in the log before any work."""
    own = _parent_tokenizer(parent, manifest)
    found = [
        c
        for c in recorded.changes(manifest.get("config") or {}, cfg.recorded())
        if not (c["key"] == "tokenizer.path" and c["now"] in (None, own))
    ]
    log.info("%s", recorded.describe(found, f"the parent {parent}"))
    return found


def prepare(cfg: JobConfig) -> Refresh | None:
    """Checks the parent and its lineage and settles the tokenizer; None when not a refresh."""
    section = cfg.section("refresh")
    parent = section.get("parent")
    if parent is None:
        return None
    parent = recorded.resolve_link(parent.rstrip("/") or parent)
    if _norm(parent) == _norm(cfg.output):
        raise ConfigError("refresh.parent: must not be the output directory of the refresh")
    try:  # every release of the lineage finished, and an index to meet
        found = load_lineage(parent)
    except ParentIndexError as err:
        raise ConfigError(f"refresh.parent: {err}") from None
    manifest = found.manifests[0]
    consumed = _consumed(found.manifests) if section["skip_consumed_inputs"] else {}
    problems = training_problems(parent, manifest)
    if problems:
        raise ConfigError(f"refresh.parent: {parent}: {problems[0]}")
    cfg.replace("refresh", parent=parent)
    changes = _changes(cfg, parent, manifest)
    tokenizer = _reuse_tokenizer(cfg, parent, manifest)
    return Refresh(
        parent, manifest, list(found.roots), consumed, tokenizer, changes=changes,
        key=_key(cfg, consumed), pii=pii_section(cfg),
    )  # fmt: skip
