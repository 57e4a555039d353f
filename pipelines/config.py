"""The job file: one YAML document, validated in full before any work starts.

Every error names the key (as a dotted path) or the input path at fault, in one line.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from gristmill.runners.profiles import RUNNER_DEFAULTS, ProfileError, check_profile
from gristmill.transforms.params import as_dict, option, type_name, unknown_key
from gristmill.transforms.params import load as load_params
from gristmill.transforms.sources import KINDS
from gristmill.transforms.sources.limits import MiB, ReadLimits

SOURCE_KINDS = tuple(KINDS)


@dataclass(frozen=True)
class OutputShards:
    """The `shards` section: how the documents table is cut into files."""

    documents: int = option(0, "document files; 0 = one per target_bytes of input", min=0)
    target_bytes: int = option(256 * MiB, "input bytes per document file", min=1)


# The job's own sections besides `sources`, `output`, `seed` and `runner`; each stage's section
# comes from the registry.
JOB_SECTIONS: dict[str, type] = {"read": ReadLimits, "shards": OutputShards}


class ConfigError(ValueError):
    """A job file problem, phrased for the person who wrote it."""


@dataclass
class SourceConfig:
    name: str
    kind: str
    paths: list[str]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobConfig:
    raw: dict[str, Any]  # the whole job as plain data, every default filled in
    sources: list[SourceConfig]
    params: dict[str, Any] = field(default_factory=dict)  # section -> its frozen parameters

    def section(self, name: str) -> dict[str, Any]:
        return self.raw[name]

    def enabled(self, section: str) -> bool:
        return bool(self.raw.get(section, {}).get("enabled", False))

    def params_of(self, section: str) -> Any:
        return self.params[section]

    def replace(self, section: str, **changes: Any) -> None:
        """Settles keys of a section after validation (a refresh's parent and tokenizer)."""
        self.params[section] = dataclasses.replace(self.params[section], **changes)
        self.raw[section] = as_dict(self.params[section])

    @property
    def output(self) -> str:
        return self.raw["output"]

    def recorded(self) -> dict[str, Any]:
        """The config as the manifest records it: where it runs and writes are left out, so that
        the same job gives the same manifest whatever the output directory and worker count;
        each stage records its own section (a secret by its fingerprint, never its value)."""
        from gristmill.pipelines import registry  # the stage modules import Beam: not at start
        from gristmill.pipelines.recorded import with_refs

        out = {k: v for k, v in self.raw.items() if k not in ("output", "runner")}
        for stage in registry.stages():
            if stage.section in self.params:
                recorded = stage.recorded(self.params[stage.section])
                out[stage.section] = with_refs(self.raw[stage.section], recorded)
        return out

    def sha256(self) -> str:
        canon = json.dumps(self.recorded(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


def _check_value(path: str, value: Any, default: Any) -> Any:
    """One value of the runner section, typed by its default (profiles.py checks the rest)."""
    if default is None:
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {type_name(value)}")
        return value
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {type_name(value)} {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {type_name(value)} {value!r}")
        least = {"runner.workers": 1, "runner.partition_bytes": 1 << 20, "runner.range_docs": 1}
        least = least.get(path)
        if least is not None and value < least:
            raise ConfigError(f"{path}: must be at least {least}, got {value}")
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {type_name(value)} {value!r}")
    return value


def _merge_section(name: str, given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with what the job file gives, recursively, every value type-checked.

    A default of None accepts any value (the owning module's `validate` checks it)."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{name}: expected a mapping, got {type_name(given)}")
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise ConfigError(str(unknown_key(str(key), f"{name}.", list(defaults))))
        default = defaults[key]
        if isinstance(default, dict) and default:
            merged[key] = _merge_section(f"{name}.{key}", value, default)
        elif isinstance(default, list):
            if not isinstance(value, list):
                raise ConfigError(
                    f"{name}.{key}: expected a list, got {type_name(value)} {value!r}"
                )
            merged[key] = value
        elif default is None or isinstance(default, dict):
            merged[key] = value
        else:
            merged[key] = _check_value(f"{name}.{key}", value, default)
    return merged


def _source(i: int, entry: Any, names: set[str]) -> SourceConfig:
    where = f"sources[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{where}: expected a mapping with kind and paths, got {type_name(entry)}"
        )
    for key in entry:
        if key not in ("name", "kind", "paths", "options"):
            raise _unknown(str(key), f"{where}.", ["name", "kind", "paths", "options"])
    kind = entry.get("kind")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}.kind: must be one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    name = entry.get("name", kind)
    if (
        not isinstance(name, str)
        or not name
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise ConfigError(
            f"{where}.name: expected a short name of letters, digits, - and _, got {name!r}"
        )
    if name in names:
        raise ConfigError(f"{where}.name: source {name!r} is defined twice")
    names.add(name)
    paths = entry.get("paths")
    if isinstance(paths, str):
        paths = [paths]
    if not paths or not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(f"{where}.paths: expected a path, a glob or a list of them")
    options = entry.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.options: expected a mapping, got {type_name(options)}")
    try:
        merged = as_dict(load_params(KINDS[kind].options, options, f"{where}.options"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return SourceConfig(name=name, kind=kind, paths=list(paths), options=merged)


def _unknown(key: str, where: str, known: list[str]) -> ConfigError:
    return ConfigError(str(unknown_key(key, where, known)))


def section_params(section: str, given: Any) -> Any:
    """One section's parameters (a job section or a stage's), or a ConfigError naming the key."""
    from gristmill.pipelines import registry

    cls = {**JOB_SECTIONS, **registry.sections()}[section]
    try:
        return load_params(cls, given, section)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def validate(raw: Any) -> JobConfig:
    """The whole job file, defaults filled in, or a ConfigError naming the first problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"job file: expected a mapping of sections, got {type_name(raw)}")
    from gristmill.pipelines import registry

    sections = {**JOB_SECTIONS, **registry.sections()}
    known = ["sources", "output", "seed", "runner", *sections]
    for key in raw:
        if key not in known:
            raise _unknown(str(key), "", known)
    entries = raw.get("sources")
    if not entries or not isinstance(entries, list):
        raise ConfigError("sources: expected a list of sources (kind and paths), got none")
    names: set[str] = set()
    sources = [_source(i, e, names) for i, e in enumerate(entries)]
    full: dict[str, Any] = {
        "sources": [
            {"name": s.name, "kind": s.kind, "paths": s.paths, "options": s.options}
            for s in sources
        ]
    }
    full["output"] = _check_value("output", raw.get("output"), None)
    full["seed"] = _check_value("seed", raw.get("seed", 0), 0)
    params = {key: section_params(key, raw.get(key)) for key in sections}
    for key in JOB_SECTIONS:
        full[key] = as_dict(params[key])
    full["runner"] = _merge_section("runner", raw.get("runner"), RUNNER_DEFAULTS)
    for key in registry.sections():
        full[key] = as_dict(params[key])
    try:
        check_profile(full["runner"])
    except ProfileError as err:
        raise ConfigError(f"runner.{err}") from None
    if not full["output"]:
        raise ConfigError(
            "output: missing; name the release directory (output: DIR or --output DIR)"
        )
    return JobConfig(raw=full, sources=sources, params=params)


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """`--set a.b.c=VALUE`: VALUE is parsed as YAML, so true/3/[a, b] keep their types."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment}: expected KEY=VALUE, e.g. quality.enabled=false")
    key, text = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment}: empty part in key {key!r}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"--set {key}: value is not valid YAML ({err.__class__.__name__})"
        ) from None
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(
                    f"--set {key}: {'.'.join(parts[: i + 1])} is not an index of the list"
                )
            node = node[int(part)]
            continue
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict | list):
            raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is a value, not a section")
        node = nxt
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(f"--set {key}: {last} is not an index of the list")
        node[int(last)] = value
    else:
        node[last] = value


def _read_job(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: job file not found") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top")
    return raw


def _add_sources(raw: dict[str, Any], cli_sources: list[str]) -> None:
    """`--source KIND=PATH`: a path joins the source named by its kind, or makes it."""
    for spec in cli_sources:
        kind, sep, pattern = spec.partition("=")
        if not sep or not pattern:
            raise ConfigError(
                f"--source {spec}: expected KIND=PATH_OR_GLOB, e.g. books=corpus/*.txt"
            )
        if kind not in SOURCE_KINDS:
            raise ConfigError(f"--source {spec}: kind must be one of {', '.join(SOURCE_KINDS)}")
        entries = raw.setdefault("sources", [])
        existing = next(
            (e for e in entries if isinstance(e, dict) and e.get("name", e.get("kind")) == kind),
            None,
        )
        if existing is None:
            entries.append({"kind": kind, "paths": [pattern]})
        else:
            paths = existing.get("paths", [])
            existing["paths"] = ([paths] if isinstance(paths, str) else list(paths)) + [pattern]


def load(
    path: str | None,
    overrides: list[str] = (),
    cli_sources: list[str] = (),
    output: str | None = None,
    base: dict[str, Any] | None = None,
) -> JobConfig:
    """The job: `base` (a recorded config being replayed), or for a refresh its parent's
    recorded config, under the job file, `--source`, `--output` and `--set` (recorded.py)."""
    from gristmill.pipelines import recorded

    raw = _read_job(path)
    _add_sources(raw, list(cli_sources))
    if output:
        raw["output"] = output
    for assignment in overrides:
        apply_override(raw, assignment)
    try:
        if base is not None:
            raw = recorded.merge(base, raw)  # sources given replace the recorded ones
        raw = recorded.inherit(raw)
        recorded.unresolved(raw, "the recorded config")
    except recorded.ReplayError as err:
        raise ConfigError(str(err)) from None
    return validate(raw)
