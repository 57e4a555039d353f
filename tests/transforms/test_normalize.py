"""Normalize: each rule as a pure function, then the rules together and the stage's DoFn."""

from __future__ import annotations

import unicodedata

import apache_beam as beam
import pytest

from gristmill.schemas.records import Document, Drop
from gristmill.transforms.normalize import (
    Normalize,
    NormalizeParams,
    collapse_whitespace,
    fix_mojibake,
    nfc,
    normalize_text,
    strip_control,
)

ALL = NormalizeParams()

# ---- NFC -----------------------------------------------------------------------------------


def test_nfc_composes_decomposed_e_acute():
    decomposed = "Cafe\u0301"
    assert len(decomposed) == 5
    assert nfc(decomposed) == "Caf\u00e9"
    assert unicodedata.is_normalized("NFC", nfc("A\u030angstro\u0308m"))


def test_nfc_leaves_normal_text_alone():
    text = "déjà vu, Ångström"
    assert nfc(text) is text


# ---- mojibake ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("CafÃ©", "Café"),
        ("naÃ¯ve faÃ§ade", "naïve façade"),
        ("itâ€™s â€œquotedâ€\x9d", "it’s “quoted”"),
        ("Ã¼ber", "über"),
    ],
)
def test_mojibake_repaired(broken, fixed):
    assert fix_mojibake(broken) == fixed


@pytest.mark.parametrize(
    "text",
    [
        "plain ASCII text, nothing to see",
        "Café déjà vu — proper UTF-8 already",
        "Ñandú and Ægir are real words",
        "",
    ],
)
def test_mojibake_leaves_good_text_alone(text):
    assert fix_mojibake(text) == text


def test_ascii_returned_unchanged_and_same_object():
    text = "Just ASCII.\nTwo lines, single spaces."
    for rule in (fix_mojibake, nfc, strip_control, collapse_whitespace):
        assert rule(text) is text, rule.__name__
    assert normalize_text(text, ALL) is text


# ---- control characters and line breaks ----------------------------------------------------


def test_control_chars_removed_but_tab_and_newline_kept():
    text = "a\x00b\x01c\x08d\te\nf\x1bg\x7fh\x9fi\x80j"
    assert strip_control(text) == "abcd\te\nfghij"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one\r\ntwo\r\n", "one\ntwo\n"),
        ("old\rmac", "old\nmac"),
        ("line\u2028sep", "line\nsep"),
        ("para\u2029sep", "para\nsep"),
        ("nel\x85sep", "nel\nsep"),
        ("form\x0cfeed", "form\nfeed"),
        ("vertical\x0btab", "vertical\ntab"),
    ],
)
def test_line_breaks_become_newline(text, expected):
    assert strip_control(text) == expected


def test_crlf_is_one_newline_not_two():
    assert strip_control("a\r\n\r\nb") == "a\n\nb"


def test_strip_control_keeps_printable_non_ascii():
    text = "© 2024 — naïve\u00a0space, 中文, emoji 🙂"
    assert strip_control(text) == text


# ---- whitespace ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("many    spaces here", "many spaces here"),
        ("tabs\t\tand \t spaces", "tabs and spaces"),
        ("nbsp\u00a0\u00a0run and\u00a0single", "nbsp run and single"),
        ("em\u2003space, ideographic\u3000space", "em space, ideographic space"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("a\n   \n\t\n \nb", "a\n\nb"),
        ("a\n\nb", "a\n\nb"),
        ("   leading and trailing   ", "leading and trailing"),
        ("\n\n\nbody\n\n\n", "body"),
        ("line one  \n   line two", "line one\nline two"),
        (" \n \t \u00a0 \n", ""),
        ("", ""),
    ],
)
def test_collapse_whitespace(text, expected):
    assert collapse_whitespace(text) == expected


def test_collapse_whitespace_keeps_single_blank_lines():
    text = "Para one.\n\nPara two.\nStill two."
    assert collapse_whitespace(text) is text


# ---- the rules together --------------------------------------------------------------------

SAMPLE = (
    "\ufeff  CHAPTER I.\r\n\r\n\r\n"
    "It was the best of times,\u00a0it was the  worst of times; CafÃ© society\x00 met\r\n"
    "in the cafe\u0301 by the Seine.\u2028Next line\ttabbed.\x0c\n"
    "\n\n\n   Indented  paragraph with\u3000wide space and itâ€™s mojibake.   \r\n"
    "\x1b[1mBold?\x1b[0m and a bell\x07.\n\n"
)


def test_normalize_sample():
    out = normalize_text(SAMPLE, ALL)
    assert "Café society met" in out
    assert "café by the Seine." in out and unicodedata.is_normalized("NFC", out)
    assert "it’s mojibake." in out
    assert "\r" not in out and "\x00" not in out and "\x1b" not in out and "\x07" not in out
    assert "\u00a0" not in out and "\u3000" not in out and "  " not in out
    assert "\n\n\n" not in out
    assert "Next line tabbed." in out
    assert out == out.strip()


@pytest.mark.parametrize(
    "text",
    [
        SAMPLE,
        "CafÃ©  \r\n\r\n\r\n  naÃ¯ve\u2028x",
        "already clean.\n\nsecond paragraph.",
        "e\u0301\u00a0\u00a0 \x7f tail \n",
        "中文\u3000文本\r\n\r\n\r\n日本語",
    ],
)
def test_normalize_is_idempotent(text):
    once = normalize_text(text, ALL)
    assert normalize_text(once, ALL) == once


def test_output_is_nfc_even_when_controls_split_a_character():
    out = normalize_text("Cafe\x00\u0301 au lait", ALL)
    assert out == "Caf\u00e9 au lait"
    assert normalize_text(out, ALL) == out


def test_rules_can_be_switched_off():
    text = "CafÃ©  x\x00y"
    assert normalize_text(text, NormalizeParams(fix_mojibake=False)) == "CafÃ© xy"
    assert (
        normalize_text(text, NormalizeParams(strip_control=False, collapse_whitespace=False))
        == "Café  x\x00y"
    )
    none = NormalizeParams(
        fix_mojibake=False, nfc=False, strip_control=False, collapse_whitespace=False
    )
    assert normalize_text(text, none) is text


# ---- the stage's DoFn ----------------------------------------------------------------------


def test_stage_rewrites_a_copy_and_drops_empty():
    fn = Normalize(ALL)
    doc = Document(id="d1", source="s", url_or_path="p", text="  CafÃ©\r\n", meta={"k": 1})
    [kept] = list(fn.process(doc))
    assert kept.text == "Café" and kept.meta == {"k": 1}
    assert doc.text == "  CafÃ©\r\n", "the input element must not be mutated"

    blank = Document(id="d2", source="s", url_or_path="p", text=" \x00\u00a0\r\n")
    [out] = list(fn.process(blank))
    assert isinstance(out, beam.pvalue.TaggedOutput)
    why = "no text after normalization"
    assert out.value == Drop("d2", "s", "normalize", "empty", why, url_or_path="p")
