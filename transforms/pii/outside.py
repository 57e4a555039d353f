"""Scrubbing strings that leave the job outside the pii stage: manifest input paths, dead-letter
files and details. One call per list, the engine built once per section (per process).

For the owners of those files (pipelines/release/manifest.py, transforms/sources/read.py):
`path_record(section, path)` is what a manifest input should hold instead of its path: the
scrubbed path to show, and the path's HMAC to match a later refresh's inputs by. The HMAC is of
the path made absolute (local paths; URLs as written), so a refresh run from another folder still
matches; `path_hmac(key, path)` computes it with the key alone (no engine), as a refresh does.
"""

from __future__ import annotations

import hmac
import json
import os
from functools import lru_cache
from hashlib import sha256
from typing import Any

from gristmill.transforms.pii.fields import scan_text


@lru_cache(maxsize=4)
def _tools(section_json: str):
    from gristmill.transforms.pii.config import engine_settings
    from gristmill.transforms.pii.engine import PiiEngine
    from gristmill.transforms.pii.hashing import resolve_salt

    s = json.loads(section_json)
    key = resolve_salt(s["salt"], s["salt_file"], create=True)
    # the engine before the scrubber's module: it imports presidio without torch (lean.py)
    engine = PiiEngine(engine_settings(s), with_ner=s["mode"] == "full")
    from gristmill.transforms.pii.scrub import Scrubber, operator_config

    options = {"mask": s["mask"], "hash_chars": s["hash_chars"]}
    scrubber = Scrubber(
        {k: operator_config(v, options, key) for k, v in s["operators"].items()},
        operator_config(s["operator"], options, key),
    )
    return engine, scrubber, key


def scrub_strings(section: dict[str, Any], values: list[str]) -> list[str]:
    """`values` scrubbed as the pii stage scrubs url_or_path (same engine, mode, operators)."""
    engine, scrubber, _ = _tools(json.dumps(section, sort_keys=True))
    views = [scan_text(None, v)[0] for v in values]
    scans = engine.scan_many(views, [""] * len(views), ner=engine.ner is not None)
    return [
        scrubber.scrub(v, s.hits)[0] if s.hits else v for v, s in zip(values, scans, strict=True)
    ]


def path_hmac(key: bytes, path: str) -> str:
    """HMAC-SHA256 of the path under the pii key; local paths made absolute first."""
    norm = path if "://" in path else os.path.normpath(os.path.abspath(path))
    return hmac.new(key, norm.encode("utf-8"), sha256).hexdigest()


def path_record(section: dict[str, Any], path: str) -> dict[str, str]:
    """{"path": the scrubbed path, "path_hmac": HMAC-SHA256 of the path under the pii key}."""
    return path_records(section, [path])[0]


def path_records(section: dict[str, Any], paths: list[str]) -> list[dict[str, str]]:
    """`path_record` of each path, the engine called once for the whole list."""
    _, _, key = _tools(json.dumps(section, sort_keys=True))
    shown = scrub_strings(section, paths) if paths else []
    return [{"path": s, "path_hmac": path_hmac(key, p)} for s, p in zip(shown, paths, strict=True)]


def scrub_paths(section: dict[str, Any] | None, paths: list[str]) -> list[str]:
    """Paths as a release may show them: scrubbed when the pii stage runs (`section`), else as
    they are (one engine call for the whole list)."""
    return scrub_strings(section, paths) if section is not None and paths else list(paths)
