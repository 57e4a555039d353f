"""The job file: one YAML document, validated in full before any work starts.

Every error names the key (as a dotted path) or the input path at fault, in one line.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from gristmill.runners.profiles import RUNNER_DEFAULTS, ProfileError, check_profile

SOURCE_KINDS = ("books", "articles", "wiki", "web", "mail")

# Options each source kind understands: name -> (type, allowed values or None, default).
SOURCE_OPTIONS: dict[str, dict[str, tuple[type, tuple | None, Any]]] = {
    "books": {"strip_gutenberg": (bool, None, True)},
    "articles": {
        "format": (str, ("auto", "jsonl", "parquet"), "auto"),
        "text_field": (str, None, "text"),
        "id_field": (str, None, "id"),
    },
    "wiki": {},
    "web": {"extractor": (str, ("trafilatura", "resiliparse"), "trafilatura")},
    "mail": {},
}

GiB = 1 << 30
MiB = 1 << 20

# The defaults of the job's own sections; each stage module brings its section's (STAGE_SECTIONS).
DEFAULTS: dict[str, Any] = {
    "output": None,
    "seed": 0,
    "read": {
        "max_decompressed_bytes": 8 * GiB,
        "max_record_bytes": 256 * MiB,
        "on_invalid_utf8": "replace",
    },
    "shards": {"documents": 0, "target_bytes": 256 * MiB},
    "runner": RUNNER_DEFAULTS,
}


def stage_sections() -> dict[str, Any]:
    """Config section -> the stage module that owns it, in flow order."""
    from gristmill.pipelines.corpus import STAGES, TRAINING_SECTIONS, stage_module

    sections: dict[str, Any] = {}
    for _, section, path in STAGES:
        sections.setdefault(section, stage_module(path))
    for section, path in TRAINING_SECTIONS:
        sections.setdefault(section, stage_module(path))
    return sections


CHOICES: dict[str, tuple[str, ...]] = {
    "read.on_invalid_utf8": ("replace", "dead_letter"),
}
MINIMUM: dict[str, int] = {
    "read.max_decompressed_bytes": 1,
    "read.max_record_bytes": 1,
    "shards.documents": 0,
    "shards.target_bytes": 1,
    "runner.workers": 1,
}


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
    raw: dict[str, Any]
    sources: list[SourceConfig]

    def section(self, name: str) -> dict[str, Any]:
        return self.raw[name]

    @property
    def output(self) -> str:
        return self.raw["output"]

    def enabled(self, stage: str) -> bool:
        return bool(self.raw.get(stage, {}).get("enabled", False))

    def recorded(self) -> dict[str, Any]:
        """The config as the manifest records it: where it runs and writes are left out, so that
        the same job gives the same manifest whatever the output directory and worker count."""
        out = {k: v for k, v in self.raw.items() if k not in ("output", "runner")}
        if isinstance(out.get("pii"), dict) and "salt" in out["pii"]:
            from gristmill.transforms.pii_config import recorded_config

            out["pii"] = recorded_config(out["pii"])  # the salt itself never reaches the manifest
        return out

    def sha256(self) -> str:
        canon = json.dumps(self.recorded(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


def _type_name(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)


def _unknown(key: str, where: str, known: list[str]) -> ConfigError:
    hint = difflib.get_close_matches(key, known, n=1)
    suggestion = (
        f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(sorted(known))})"
    )
    return ConfigError(f"{where}{key}: unknown key{suggestion}")


def _check_value(path: str, value: Any, default: Any) -> Any:
    if default is None:
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_type_name(value)}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_type_name(value)} {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_type_name(value)} {value!r}")
        if path in MINIMUM and value < MINIMUM[path]:
            raise ConfigError(f"{path}: must be at least {MINIMUM[path]}, got {value}")
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_type_name(value)} {value!r}")
        if path in CHOICES and value not in CHOICES[path]:
            raise ConfigError(f"{path}: must be one of {', '.join(CHOICES[path])}, got {value!r}")
    return value


def _merge_section(name: str, given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with what the job file gives, recursively, every value type-checked.

    A default of None accepts any value (the owning module's `validate` checks it)."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{name}: expected a mapping, got {_type_name(given)}")
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise _unknown(str(key), f"{name}.", list(defaults))
        default = defaults[key]
        if isinstance(default, dict) and default:
            merged[key] = _merge_section(f"{name}.{key}", value, default)
        elif isinstance(default, list):
            if not isinstance(value, list):
                raise ConfigError(
                    f"{name}.{key}: expected a list, got {_type_name(value)} {value!r}"
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
            f"{where}: expected a mapping with kind and paths, got {_type_name(entry)}"
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
        raise ConfigError(f"{where}.options: expected a mapping, got {_type_name(options)}")
    known = SOURCE_OPTIONS[kind]
    merged = {}
    for key, (typ, allowed, default) in known.items():
        value = options.get(key, default)
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            raise ConfigError(
                f"{where}.options.{key}: expected {typ.__name__}, got {_type_name(value)}"
            )
        if allowed and value not in allowed:
            raise ConfigError(
                f"{where}.options.{key}: must be one of {', '.join(allowed)}, got {value!r}"
            )
        merged[key] = value
    for key in options:
        if key not in known:
            raise _unknown(str(key), f"{where}.options.", list(known) or ["(none for this kind)"])
    return SourceConfig(name=name, kind=kind, paths=list(paths), options=merged)


def _stage_section(key: str, given: Any, module: Any) -> dict[str, Any]:
    defaults = module.DEFAULTS
    if defaults.keys() == {"enabled"} and hasattr(module, "validate"):
        # a section whose keys the module owns (e.g. quality thresholds): only `enabled` is ours
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_type_name(given)}")
        merged = {
            **given,
            "enabled": _check_value(
                f"{key}.enabled", given.get("enabled", defaults["enabled"]), True
            ),
        }
    else:
        merged = _merge_section(key, given, defaults)
    check = getattr(module, "validate", None)
    if check is not None:
        try:
            check(merged)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{key}: {err}") from None
    return merged


def validate(raw: Any) -> JobConfig:
    """The whole job file, defaults filled in, or a ConfigError naming the first problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"job file: expected a mapping of sections, got {_type_name(raw)}")
    stages = stage_sections()
    known = ["sources", *DEFAULTS, *stages]
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
    for key, default in DEFAULTS.items():
        if isinstance(default, dict):
            full[key] = _merge_section(key, raw.get(key), default)
        else:
            full[key] = _check_value(key, raw.get(key, default), default)
    for key, module in stages.items():
        full[key] = _stage_section(key, raw.get(key), module)
    try:
        check_profile(full["runner"])
    except ProfileError as err:
        raise ConfigError(f"runner.{err}") from None
    if not full["output"]:
        raise ConfigError(
            "output: missing; name the release directory (output: DIR or --output DIR)"
        )
    return JobConfig(raw=full, sources=sources)


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


def load(
    path: str | None,
    overrides: list[str] = (),
    cli_sources: list[str] = (),
    output: str | None = None,
) -> JobConfig:
    raw: dict[str, Any] = {}
    if path:
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
    if output:
        raw["output"] = output
    for assignment in overrides:
        apply_override(raw, assignment)
    return validate(raw)
