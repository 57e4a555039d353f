"""A release's recorded config, run again: `gristmill run --config-from RELEASE`, and the
configuration a refresh inherits from its parent.

The manifest records the config less `output` and `runner`, each secret by its fingerprint
(a stage's `recorded`). A secret given by reference (`env:NAME`) is also recorded by that
reference, so a recorded config can be run again without the secret ever being written; a
secret given by value must be given again (`--set SECTION.KEY=env:NAME`), and its default is
restored only when the record says it was the default. A refresh starts from its parent's
recorded config: what the job file, `--source` and `--set` give replaces it, sources aside
(sources given replace the parent's; none given: the parent's, whose files already read are
skipped). Every setting that differs from the parent's is listed before work and recorded.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import posixpath
from typing import Any

log = logging.getLogger("gristmill")

SECRET_REF = "env:"  # a secret given as env:NAME names where it lives, not its value
REF = "ref"  # the recorded secret's key holding that reference
NOT_COMPARED = ("sources", "refresh")  # what a refresh never takes from its parent


class ReplayError(ValueError):
    """A recorded config that cannot be run again as it stands (the CLI exits 2)."""


def with_refs(plain: dict[str, Any], recorded: dict[str, Any]) -> dict[str, Any]:
    """A stage's recorded section, each secret that was given by reference also naming it."""
    out = dict(recorded)
    for key, value in recorded.items():
        given = plain.get(key)
        if isinstance(value, dict) and isinstance(given, str) and given.startswith(SECRET_REF):
            out[key] = {**value, REF: given}
    return out


def _string_fields(cls: type) -> dict[str, str]:
    """Fields of a parameters class whose default is a string: where a secret can be."""
    return {
        f.name: f.default for f in dataclasses.fields(cls) if isinstance(f.default, str) and f.init
    }


def replayable(recorded: dict[str, Any]) -> dict[str, Any]:
    """Job data from a manifest's `config`: each secret recorded by fingerprint back to its
    reference (or its default); one recorded by value stays a mapping, which `unresolved`
    then names."""
    from gristmill.pipelines.config import JOB_SECTIONS
    from gristmill.pipelines.registry import sections

    raw = copy.deepcopy(recorded)
    for section, cls in {**JOB_SECTIONS, **sections()}.items():
        given = raw.get(section)
        if not isinstance(given, dict):
            continue
        for key, default in _string_fields(cls).items():
            value = given.get(key)
            if not isinstance(value, dict):
                continue
            if value.get(REF):
                given[key] = value[REF]
            elif value.get("default") is True:
                given[key] = default
    return raw


def unresolved(raw: dict[str, Any], where: str) -> None:
    """Raises ReplayError naming a secret a recorded config holds by fingerprint only."""
    from gristmill.pipelines.config import JOB_SECTIONS
    from gristmill.pipelines.registry import sections

    for section, cls in {**JOB_SECTIONS, **sections()}.items():
        given = raw.get(section)
        for key in _string_fields(cls):
            if isinstance(given, dict) and isinstance(given.get(key), dict):
                raise ReplayError(
                    f"{section}.{key}: {where} recorded this secret by its fingerprint only; "
                    f"give it again, e.g. --set {section}.{key}=env:VARNAME"
                )


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`: mappings merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_manifest(release: str) -> dict[str, Any] | None:
    """A release's manifest, or None when it has none (the caller says what that means)."""
    from gristmill.pipelines.release.manifest import read_json

    path = posixpath.join(release, "manifest.json")
    if "://" not in release and not os.path.isfile(path):
        return None
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def resolve_link(release: str) -> str:
    """A release named through a `latest` link, as the folder it points to: a lineage must
    not move when the link does."""
    if "://" in release or not os.path.islink(release.rstrip("/")):
        return release
    link = release.rstrip("/")
    return os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))


def inherit(given: dict[str, Any]) -> dict[str, Any]:
    """A refresh's job data on top of its parent's recorded config (sources aside)."""
    section = given.get("refresh")
    parent = section.get("parent") if isinstance(section, dict) else None
    if not isinstance(parent, str) or not parent:
        return given
    manifest = read_manifest(resolve_link(parent))
    if manifest is None or not isinstance(manifest.get("config"), dict):
        return given  # refresh.prepare says what is wrong with the parent
    base = replayable(manifest["config"])
    base.pop("refresh", None)
    if given.get("sources"):
        base.pop("sources", None)
    if manifest.get("tokenizer") and isinstance(base.get("tokenizer"), dict):
        base["tokenizer"]["path"] = None  # the parent's own tokenizer.json is reused
    raw = merge(base, given)
    unresolved(raw, parent)
    return raw


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value; lists are values."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Every setting that differs between two recorded configs, sources and refresh aside."""
    old = flatten({k: v for k, v in before.items() if k not in NOT_COMPARED})
    new = flatten({k: v for k, v in after.items() if k not in NOT_COMPARED})
    found = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            change = {"key": key, "was": old.get(key), "now": new.get(key)}
            if key not in old:  # a setting gristmill did not have when `before` was recorded
                change["new_setting"] = True
            found.append(change)
    return found


def describe(found: list[dict[str, Any]], what: str) -> str:
    """One log paragraph: the settings that differ from `what`'s."""
    if not found:
        return f"gristmill: the configuration of {what}, unchanged (sources aside)"
    lines = [f"gristmill: {len(found)} setting(s) differ from {what}:"]
    lines += [
        f"  {c['key']}: {c['now']!r} (a setting {what} did not have)"
        if c.get("new_setting")
        else f"  {c['key']}: {c['was']!r} -> {c['now']!r}"
        for c in found
    ]
    return "\n".join(lines)
