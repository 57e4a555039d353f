"""Scrubbing strings that leave the job outside the pii stage: manifest input paths, dead-letter
files and details. One call per list, the engine built once per section (per process).

For the owners of those files (pipelines/release/manifest.py, transforms/sources/read.py):
`path_record(section, path)` is what a manifest input should hold instead of its path: the
scrubbed path to show, and the path's HMAC to match a later refresh's inputs by.
"""

from __future__ import annotations

import hmac
import json
from functools import lru_cache
from hashlib import sha256
from typing import Any

from gristmill.transforms.pii.fields import scan_text


@lru_cache(maxsize=4)
def _tools(section_json: str):
    from gristmill.transforms.pii.config import engine_settings
    from gristmill.transforms.pii.engine import PiiEngine
    from gristmill.transforms.pii.hashing import resolve_salt
    from gristmill.transforms.pii.scrub import Scrubber, operator_config

    s = json.loads(section_json)
    key = resolve_salt(s["salt"], s["salt_file"], create=True)
    engine = PiiEngine(engine_settings(s), with_ner=s["mode"] == "full")
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


def path_record(section: dict[str, Any], path: str) -> dict[str, str]:
    """{"path": the scrubbed path, "path_hmac": HMAC-SHA256 of the path under the pii key}."""
    _, _, key = _tools(json.dumps(section, sort_keys=True))
    digest = hmac.new(key, path.encode("utf-8"), sha256).hexdigest()
    return {"path": scrub_strings(section, [path])[0], "path_hmac": digest}
