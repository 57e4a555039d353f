"""The text side of repeated-paragraph removal, without Beam: units, their hashes, what a removal
keeps.

A text is cut into units (paragraphs: runs of text between blank lines; or lines) and the
separators between them, so that `text == u0 + s1 + u1 + s2 + u2 ...` exactly. Removing a set of
units keeps the others and, between two kept units, the separator that stood before the second:
`u[k0] + s[k1] + u[k1] + ...`. The rest goes as character spans (`removed_spans`), which is all a
later phase needs to rewrite the text (keyed.cut_spans), and its UTF-8 bytes are known from the
units' lengths alone (`kept_bytes`), which is what phase 2's accounting counts without the text.

A unit's hash is computed on its normalized form, as CCNet (Wenzek et al. 2020) did for its
paragraph dedup: case folded, digits made 0, punctuation and symbols removed, whitespace runs
made one space. Units whose normalized form is shorter than `min_chars` get hash 0: they are
never counted and never removed (salutations, "Thanks,", chapter numbers).
"""

from __future__ import annotations

import re
from array import array
from typing import NamedTuple

import xxhash

from gristmill.transforms.accounting import text_bytes

UNITS = ("paragraph", "line")
_SEPARATORS = {
    "paragraph": re.compile(r"(\n\s*\n)"),  # a blank line, with any whitespace around it
    "line": re.compile(r"(\n)"),
}
_DIGITS = re.compile(r"\d")
_NOT_WORD = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def split_units(text: str, unit: str) -> tuple[list[str], list[str]]:
    """(units, separators before them): `separators[0]` is "" and
    `"".join(s + u for s, u in zip(separators, units)) == text`."""
    parts = _SEPARATORS[unit].split(text)
    return parts[0::2], ["", *parts[1::2]]


def normalize(unit: str) -> str:
    """A unit as it is hashed (CCNet's normalize_for_dedup, accents kept)."""
    folded = _DIGITS.sub("0", unit.casefold())
    return _SPACES.sub(" ", _NOT_WORD.sub("", folded)).strip()


def unit_hash(unit: str, min_chars: int) -> int:
    """64-bit hash of a unit's normalized form; 0 (never counted) when it is too short."""
    norm = normalize(unit)
    if len(norm) < max(min_chars, 1):
        return 0
    return xxhash.xxh3_64_intdigest(norm.encode("utf-8", "surrogatepass")) or 1


class Units(NamedTuple):
    """A text's units as phase 2 sees them: their hashes, and the characters and UTF-8 bytes of
    each unit and of the separator before it. Arrays of machine integers, pickled small."""

    hashes: array  # "Q"
    chars: array  # "L": unit characters
    sep_chars: array  # "L": characters of the separator before the unit (0 for the first)
    nbytes: array  # "L": unit bytes
    sep_bytes: array  # "L"


def units_of(text: str, unit: str, min_chars: int) -> Units:
    units, seps = split_units(text, unit)
    return Units(
        array("Q", [unit_hash(u, min_chars) for u in units]),
        array("L", [len(u) for u in units]),
        array("L", [len(s) for s in seps]),
        array("L", [text_bytes(u) for u in units]),
        array("L", [text_bytes(s) for s in seps]),
    )


def kept_bytes(units: Units, removed: set[int]) -> int:
    """UTF-8 bytes of the text once the units at `removed` positions are gone."""
    kept = [i for i in range(len(units.hashes)) if i not in removed]
    if not kept:
        return 0
    return sum(units.nbytes[i] for i in kept) + sum(units.sep_bytes[i] for i in kept[1:])


def removed_spans(units: Units, removed: set[int]) -> tuple[int, ...]:
    """The character spans the removal deletes, as flat (start, end) pairs in order, adjacent
    spans merged: every removed unit, every separator before a removed unit, and the separator
    before the first kept unit."""
    kept = [i for i in range(len(units.hashes)) if i not in removed]
    first = kept[0] if kept else -1
    spans: list[int] = []
    at = 0

    def cut(start: int, end: int) -> None:
        if end <= start:
            return
        if spans and spans[-1] == start:
            spans[-1] = end
        else:
            spans.extend((start, end))

    for i in range(len(units.hashes)):
        sep_end = at + units.sep_chars[i]
        if i in removed or i == first:
            cut(at, sep_end)
        end = sep_end + units.chars[i]
        if i in removed:
            cut(sep_end, end)
        at = end
    return tuple(spans)
