"""FineWeb's line rules and C4's bad-words rule, on texts whose values were counted by hand."""

from __future__ import annotations

import random
import re

import pytest

from gristmill.transforms.quality import badwords
from gristmill.transforms.quality.fineweb import FineWebStats, fineweb, fineweb_stats, word_count
from gristmill.transforms.quality.params import BadWordsParams, FineWebParams, QualityParams
from gristmill.transforms.quality.stage import evaluate

pytestmark = pytest.mark.unit

# five non-blank lines (12, 5, 37, 5 and 32 characters), a blank and a whitespace-only line
SAMPLE = (
    "Hello world.\nshort\nThis line has no end mark at all here\nshort\n\n   \n"
    "Last line is long and ends well!"
)


def test_stats_counted_by_hand():
    # punctuated: "Hello world." and "...well!"; short (<= 30): "Hello world." and both "short";
    # repeated: the second "short" (5 chars); characters: 12+5+37+5+0+3+32 = 94 and 6 LF
    assert fineweb_stats(SAMPLE) == FineWebStats(5, 2, 3, 5, 94, 6)
    # 5 / 94 = 0.0532 of the characters are in a repeated line
    assert fineweb(SAMPLE, FineWebParams()) == ("fineweb_dup_line_chars", "0.0532 > 0.01")
    assert fineweb(SAMPLE, FineWebParams(max_dup_line_char_frac=0.06)) is None


SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "fi", "zo", "ha"]


def prose_lines(n: int, seed: int = 0) -> list[str]:
    """n varied 10-word sentences, a stop word every 5th word: they pass the Gopher rules."""
    rng = random.Random(seed)
    words = [
        rng.choice(("the", "of", "and")) if i % 5 == 0 else "".join(rng.choices(SYLLABLES, k=3))
        for i in range(10 * n)
    ]
    return [" ".join(words[i : i + 10]).capitalize() + "." for i in range(0, 10 * n, 10)]


def _lines(n: int, punctuated: int, length: int = 40) -> str:
    """n distinct lines of `length` characters, the first `punctuated` ending in '.'."""
    out = []
    for i in range(n):
        body = f"line number {i:02d} of a page about things "
        end = "." if i < punctuated else "x"
        out.append((body * 3)[: length - 1] + end)
    return "\n".join(out)


def test_line_punctuation_share():
    # 1 of 10 lines ends in '.': 0.1 < 0.12
    assert fineweb(_lines(10, 1), FineWebParams()) == ("fineweb_line_punct", "0.1000 < 0.12")
    assert fineweb(_lines(10, 2), FineWebParams()) is None  # 0.2
    assert fineweb(_lines(10, 0), FineWebParams(line_punct_exclude_zero=True)) is None
    assert fineweb(_lines(10, 1), FineWebParams(min_line_punct_frac=None)) is None


@pytest.mark.parametrize(
    "ending, counts",
    [(".", True), ("!", True), ("?", True), ("。", True), ("।", True), ("…", False)]
    + [('."', False), (". ", False), (":", False), (")", False)],
)
def test_what_ends_a_line_in_punctuation(ending, counts):
    """Sentence terminals as the very last character; lines are not stripped."""
    assert fineweb_stats("a line" + ending).punct_lines == int(counts)


def test_short_line_share():
    # 7 of 10 lines at most 30 characters: 0.7 > 0.67; a 30-character line is short, 31 is not
    text = _lines(7, 7, length=30) + "\n" + _lines(3, 3, length=31).replace("line", "LINE")
    assert fineweb_stats(text).short_lines == 7
    assert fineweb(text, FineWebParams()) == ("fineweb_short_lines", "0.7000 > 0.67")
    assert fineweb(text, FineWebParams(short_line_chars=29)) is None
    assert fineweb(text, FineWebParams(max_short_line_frac=None)) is None


def test_newlines_per_word():
    # "Item 0." is three words (punctuation is a word): 11 lines, 10 LF, 33 words: 0.3030
    p = FineWebParams(max_short_line_frac=None)
    items = "\n".join(f"Item {i}." for i in range(11))
    assert word_count(items) == 33
    assert fineweb(items, p) == ("fineweb_list_ratio", "0.3030 > 0.3")
    assert fineweb("\n".join(f"Item {i}." for i in range(10)), p) is None  # 9 / 30 = 0.3
    assert (
        fineweb(items, FineWebParams(max_short_line_frac=None, max_newline_word_ratio=None)) is None
    )


@pytest.mark.parametrize(
    "text, words",
    [
        ("Don't stop-now, U.S. (2024)!", 12),  # Do n't | stop - now , | U.S . | ( 2024 ) !
        ("see http://x.com/a-b?c=d, or mail me@x.org.", 7),  # a URL and an address stay whole
        ('a/b 3-4 "quoted" it\'s', 11),  # a / b | 3 - 4 | " quoted " | it 's
        ("...", 3),
    ],
)
def test_word_count_splits_as_spacy_does(text, words):
    """spaCy's English tokenizer gives 11, 7, 11 and 1: close, without a model."""
    assert word_count(text) == words


def test_empty_page():
    assert fineweb(" \n\n\t\n", FineWebParams()) == ("fineweb_empty", "no non-blank line")


def test_rules_apply_to_listed_kinds_before_c4_rewrites():
    lines = prose_lines(20)
    page = "\n".join(line if i < 2 else line[:-1] for i, line in enumerate(lines))  # 2 of 20
    assert evaluate(page, "web", "en", QualityParams()).verdict == (
        "fineweb_line_punct",
        "0.1000 < 0.12",
    )
    assert evaluate(page, "books", "en", QualityParams()).verdict is None
    on_mail = QualityParams.from_dict({"fineweb": {"kinds": ["mail"]}})
    assert evaluate(page, "mail", "en", on_mail).verdict[0] == "fineweb_line_punct"


def test_fineweb_params_are_checked():
    with pytest.raises(ValueError, match=r"quality\.fineweb\.max_short_line_frac: 1\.5"):
        QualityParams.from_dict({"fineweb": {"max_short_line_frac": 1.5}})
    with pytest.raises(ValueError, match=r"short_line_chars: must be at least 1"):
        QualityParams.from_dict({"fineweb": {"short_line_chars": 0}})


# ---- bad words ---------------------------------------------------------------------------------

ON = BadWordsParams()


@pytest.mark.parametrize(
    "text, found",
    [
        ("What a Bastard.", 1),  # case-insensitive
        ("This is embarrassing, says the class.", 0),  # inside words: no match
        ("Ass's and ass-like", 2),  # flanked by non-word characters
        ("Rated NSFW and XXX content", 2),
        ("see 2 girls 1 cup here", 1),  # a phrase of the list
        ("2 girls 1 cupcake", 0),
        ("", 0),
    ],
)
def test_bad_words_counted(text, found):
    verdict, applied = badwords.bad_words(text, "en", ON)
    assert applied
    assert verdict == (("bad_words", f"{found} > 0 (en)") if found else None)


def test_bad_words_threshold_and_languages(tmp_path):
    two = "nsfw and xxx"
    assert badwords.bad_words(two, "en", BadWordsParams(max_bad_words=1))[0] == (
        "bad_words",
        "2 > 1 (en)",
    )
    assert badwords.bad_words(two, "en", BadWordsParams(max_bad_words=2)) == (None, True)
    assert badwords.bad_words(two, "en", BadWordsParams(max_bad_words=None)) == (None, False)
    assert badwords.bad_words(two, "", ON)[0] is not None  # no language: the default list
    assert badwords.bad_words(two, "en-GB", ON)[0] is not None
    assert badwords.bad_words(two, "sw", ON) == (None, False)  # no Swahili list
    assert badwords.bad_words("Das ist Scheiße.", "de", ON)[0] == ("bad_words", "1 > 0 (de)")
    zh = badwords.word_list("zh").phrases[0][1]
    assert badwords.bad_words(f"前{zh}后", "zh", ON)[0] == ("bad_words", "1 > 0 (zh)")
    (tmp_path / "en").write_text("Foo Bar\nqux\n")
    own = BadWordsParams(words_dir=str(tmp_path))
    assert badwords.bad_words("a foo bar, then nsfw", "en", own)[0] == ("bad_words", "1 > 0 (en)")


def test_bad_words_decide_as_the_c4_regex_does():
    """The split word/phrase lookup gives the reference code's decision (one regex of the whole
    list, flanked by non-word characters) on texts mixing list entries into other words."""
    entries = sorted(badwords._read_list("en", None))
    c4 = re.compile(r"(?:\W|^)({})(?:\W|$)".format("|".join(map(re.escape, entries))))
    rng = random.Random(7)
    fillers = ["the", "class", "grass", "x", "-", ",", "2", "girls", "cup", "analysis", "é"]
    for _ in range(400):
        parts = [rng.choice(fillers + entries[:: rng.randint(5, 40)]) for _ in range(6)]
        glue = [rng.choice([" ", "", "\n", ". "]) for _ in parts]
        text = "".join(p + g for p, g in zip(parts, glue, strict=True))
        expected = c4.search(text.lower()) is not None
        assert (badwords.bad_words(text, "en", ON)[0] is not None) == expected, text


def test_bad_words_apply_after_c4_to_listed_kinds_only():
    page = "\n".join(prose_lines(12, 1))
    dirty = page + "\nThe nsfw part of this page is here."
    assert evaluate(dirty, "web", "en", QualityParams()).verdict is None  # off by default
    c4 = QualityParams.from_dict({"bad_words": {"kinds": ["web"]}})
    assert evaluate(dirty, "web", "en", c4).verdict == ("bad_words", "1 > 0 (en)")
    assert evaluate(dirty, "articles", "en", c4).verdict is None
    # a line C4 removes (too few words) takes its bad word with it
    assert evaluate(page + "\nnsfw here.", "web", "en", c4).verdict is None
