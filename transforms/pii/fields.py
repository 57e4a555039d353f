"""The fields of a document outside its text, scanned and scrubbed like the text.

`url_or_path` holds file names and URLs ("statements/ssn-536-22-8745.txt",
"https://x.example/?mail=a@b.org"), and `meta` whatever a source kept beside the text (an
author's e-mail, a phone, an IP, a Message-ID that holds an address). Each string value (and
each integer of six digits or more, which can be a phone number) is scanned by the same engine
in the same mode as the text, and scrubbed by the same operators.

File names and URLs join words with `_`, `/`, `=`, `&`, ... where prose has spaces, and the
recognizers' word boundaries would not see a number glued to them ("call_5494807107"). The
scan reads a *view* of the value in which those characters (and a `-` between a letter and a
digit) are spaces; the view has the value's length, so findings' offsets are the value's.
"""

from __future__ import annotations

import re
from typing import Any

URL_OR_PATH = "url_or_path"
JOINERS = re.compile(r"[_/\\=?&#;|~]|(?<=[^\W\d_])-(?=\d)|(?<=\d)-(?=[^\W\d_])")
MIN_INT_DIGITS = 6


def scan_view(value: str) -> str:
    """`value` with its word joiners as spaces (same length, same offsets)."""
    return JOINERS.sub(" ", value)


def scan_text(steps: tuple | None, value: str) -> tuple[str, int]:
    """What the engine reads for a field: its key as a context word ("phone: 5494807107"),
    then the view of the value; and where the value starts in it."""
    key = steps[-1] if steps and isinstance(steps[-1], str) else ""
    prefix = f"{scan_view(key)}: " if key else ""
    return prefix + scan_view(value), len(prefix)


def shifted(hits: list, offset: int) -> list:
    """Findings in the value's own offsets (none that starts in the key)."""
    return [
        h._replace(start=h.start - offset, end=h.end - offset) for h in hits if h.start >= offset
    ]


Steps = tuple[Any, ...]  # keys and list indexes from `meta` down to a value


def _leaves(value: Any, steps: Steps) -> list[tuple[Steps, str]]:
    if isinstance(value, str):
        return [(steps, value)] if value else []
    if isinstance(value, bool):
        return []
    if isinstance(value, int) and len(str(abs(value))) >= MIN_INT_DIGITS:
        return [(steps, str(value))]
    if isinstance(value, dict):
        return [leaf for k, v in sorted(value.items()) for leaf in _leaves(v, (*steps, k))]
    if isinstance(value, list | tuple):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*steps, i))]
    return []


def label(steps: Steps) -> str:
    """How findings and counters name a field: `url_or_path`, `meta.author`, `meta.to[0]`."""
    if not steps:
        return URL_OR_PATH
    return "meta" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)


def field_values(url_or_path: str, meta: dict[str, Any]) -> list[tuple[Steps | None, str]]:
    """(steps into meta, or None for url_or_path; value) of every value outside the text that
    is scanned, in a fixed order (the pii stage's own `pii` counts aside)."""
    out: list[tuple[Steps | None, str]] = [(None, url_or_path)] if url_or_path else []
    return out + [
        leaf for leaf in _leaves(meta, ()) if leaf[0][:1] not in (("pii",), ("pii_fields",))
    ]


def _replace(value: Any, steps: Steps, new: str) -> Any:
    if not steps:
        return new
    head, rest = steps[0], steps[1:]
    if isinstance(value, list | tuple):
        items = list(value)
        items[head] = _replace(items[head], rest, new)
        return items
    out = dict(value)
    out[head] = _replace(out[head], rest, new)
    return out


def replaced_meta(meta: dict[str, Any], changes: list[tuple[Steps, str]]) -> dict[str, Any]:
    """`meta` with each changed value set to its scrubbed string."""
    out = dict(meta)
    for steps, new in changes:
        out = _replace(out, steps, new)
    return out
