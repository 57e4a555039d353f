"""Normalize: each rule is a pure str -> str function; the stage applies the enabled ones.

Order matters: mojibake is repaired first (ftfy may produce decomposed text), control
characters go before NFC (one may separate a letter from its accent), and whitespace last.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import ftfy

from gristmill.schemas.records import Document
from gristmill.transforms.params import option
from gristmill.transforms.stage import Cost, DocFilter, FilterStage, Stage, StageContext

# C0/C1 controls but tab and newline, and DEL; form feed and vertical tab become newlines.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_VERTICAL = re.compile(r"[\r\x0b\x0c\u2028\u2029\x85]")
_C0_BYTES = bytes(b for b in range(32) if b not in (9, 10)) + b"\x7f"
# UTF-8 forms of whitespace other than space, tab and newline (NBSP, en/em spaces, ideographic...).
_WIDE_SPACES = (
    b"\xc2\xa0",  # U+00A0
    b"\xe1\x9a\x80",  # U+1680
    *(b"\xe2\x80" + bytes([c]) for c in range(0x80, 0x8B)),  # U+2000..U+200A
    b"\xe2\x80\xaf",  # U+202F
    b"\xe2\x81\x9f",  # U+205F
    b"\xe3\x80\x80",  # U+3000
)
_SPACE_HINTS = (b"  ", b"\t", b" \n", b"\n ", b"\n\n\n") + _WIDE_SPACES
# Byte sequences that only appear when UTF-8 was decoded as Latin-1/cp1252 (and a few C1 controls).
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00c3\u00e2\u00c5\u00d0\u00d1\u00ef]"
    "[\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]"
)

_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)


def fix_mojibake(text: str) -> str:
    """Repairs UTF-8 read as Latin-1/cp1252 (ftfy); text with no telltale pair is returned as is."""
    if text.isascii() or not _MOJIBAKE_HINT.search(text):
        return text
    return ftfy.fix_text(text, _FTFY_CONFIG)


def nfc(text: str) -> str:
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def strip_control(text: str) -> str:
    """Line separators become \n; other control characters (tab excepted) are removed."""
    text = text.replace("\r\n", "\n")
    raw = _utf8(text)
    clean = (
        len(raw.translate(None, _C0_BYTES)) == len(raw)
        and b"\xc2" not in raw  # C1 controls and NEL are U+0080..U+009F, UTF-8 lead byte C2
        and b"\xe2\x80\xa8" not in raw
        and b"\xe2\x80\xa9" not in raw
    )
    if clean:
        return text
    return _CONTROL.sub("", _VERTICAL.sub("\n", text))


def collapse_whitespace(text: str) -> str:
    """Whitespace runs become one space; lines are trimmed; at most one blank line in a row."""
    raw = _utf8(text)
    edges_clean = raw[:1] not in b" \n" and raw[-1:] not in b" \n"
    if edges_clean and not any(hint in raw for hint in _SPACE_HINTS):
        return text
    out: list[str] = []
    blank = False
    for line in text.split("\n"):
        words = line.split()
        if words:
            out.append(" ".join(words))
            blank = False
        elif out and not blank:
            out.append("")
            blank = True
    if out and not out[-1]:
        out.pop()
    return "\n".join(out)


@dataclass(frozen=True)
class NormalizeParams:
    """The `normalize` section: each rule on or off."""

    enabled: bool = option(True, "run the stage")
    fix_mojibake: bool = option(True, "repair UTF-8 read as Latin-1/cp1252 (ftfy)")
    nfc: bool = option(True, "Unicode NFC")
    strip_control: bool = option(True, "control characters out, line separators to newlines")
    collapse_whitespace: bool = option(True, "whitespace runs to one space, one blank line at most")


def normalize_text(text: str, params: NormalizeParams) -> str:
    if params.fix_mojibake:
        text = fix_mojibake(text)
    if params.strip_control:  # before NFC: a removed control may sit between base and accent
        text = strip_control(text)
    if params.nfc:
        text = nfc(text)
    if params.collapse_whitespace:
        text = collapse_whitespace(text)
    return text


class Normalize(DocFilter):
    """Rewrites text; a document that normalizes to nothing is dropped as `empty`."""

    stage = "normalize"

    def __init__(self, params: NormalizeParams):
        self.params = params

    def check(self, doc: Document) -> tuple[str, str] | None:
        doc.text = normalize_text(doc.text, self.params)
        if not doc.text:
            return "empty", "no text after normalization"
        return None


def build(params: NormalizeParams, ctx: StageContext) -> FilterStage:
    return FilterStage(Normalize(params))


STAGE = Stage(
    name=Normalize.stage,
    section="normalize",
    params=NormalizeParams,
    build=build,
    cost=Cost(79, 0.0, 42, 0.0),
    summary="mojibake repair, control characters out, NFC, whitespace collapsed",
)
