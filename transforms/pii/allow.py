"""Numbers that are not personal data: the recognizers for numbers and the allow-list.

Books and speeches are full of numbers a phone or card pattern can take for personal data:
years ("In the year 1690"), ISBNs, sums ("$43,002,168.90"), tables of figures ("1830 - 12,866,020
- 33.49"), page, chapter and verse numbers. Before this list, fast mode rewrote 0.5 numbers per
MB of the Gutenberg books and 1.4 per MB of the State of the Union addresses into
`<PHONE_NUMBER>` (bench/pii_recall.py). A PHONE_NUMBER or CREDIT_CARD finding is dropped when:

- it has fewer digits than `phone_min_digits` (phone only: a year, a page, a short code);
- it is a piece of a larger number: a digit and `,` or `.` just before it, or `,`/`.` and a
  digit just after it (thousands and decimals);
- it holds a decimal fraction (`36.45`) or a spaced dash (`1830 - 12`), the marks of tables;
- it is a phone finding without a phone's own marks (a `+`, a parenthesised area code, or the
  NANP 3-3-4 groups with dashes or dots) and one of the two words before it is in
  `words_before` (`ISBN`, `page`, `verse`, `year`, ...), or a currency sign stands just before
  it, or the word after it is in `words_after` (`dollars`, `million`, `percent`, ...). Words
  never veto a card number that passed its issuer-range and Luhn checks.

The defaults are measured by bench/pii_recall.py: recall of generated values inserted into
real text, and false positives per MB on the books and speeches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gristmill.transforms.params import option

CARD_CHOICES = ("issued", "presidio")
WORDS_BEFORE = (
    "isbn", "issn", "page", "pages", "p", "pp", "verse", "verses", "chapter", "chap", "ch",
    "vol", "volume", "year", "years", "ad", "bc", "section", "art", "article",
)  # fmt: skip
WORDS_AFTER = (
    "dollars", "dollar", "cents", "million", "millions", "billion", "billions", "trillion",
    "percent", "per", "pounds", "tons", "acres", "miles", "bushels", "barrels", "ad", "bc",
)  # fmt: skip
CURRENCY = "$\u00a3\u20ac\u00a5\u20b9"
WORD = re.compile(r"[^\W\d_]+(?:\.[^\W\d_]+)*")
FRACTION = re.compile(r"\d\.\d{1,2}(?!\d)")
SPACED_DASH = re.compile(r"\s[-\u2013\u2014]\s")
NUMBER_TYPES = ("PHONE_NUMBER", "CREDIT_CARD")
# A phone number written so that it can only be a phone number: context words do not veto it.
PHONE_SHAPE = re.compile(r"[+(\uff0b\uff08]|^(?:1[-.])?\d{3}([-.])\d{3}\1\d{4}$")


@dataclass(frozen=True)
class NumberOptions:
    """The `pii.numbers` section: recognizers for card and phone numbers, and the allow-list."""

    cards: str = option(
        "issued",
        "issued: card ranges issued today (Mastercard 2-series, Mir, UnionPay 81, ...) + Luhn; "
        "presidio: presidio's CreditCardRecognizer",
        choices=CARD_CHOICES,
    )
    nanp: bool = option(True, "find North-American numbers with any area code (not only valid)")
    phone_min_digits: int = option(
        7, "phone findings with fewer digits are numbers, not phones", min=0
    )
    allow_list: bool = option(True, "drop phone and card findings that are years, sums, tables")
    words_before: tuple[str, ...] = option(
        WORDS_BEFORE, "a number right after one of these words is not personal data"
    )
    words_after: tuple[str, ...] = option(
        WORDS_AFTER, "a number right before one of these words is not personal data"
    )


class AllowList:
    """Decides whether a phone or card finding is an ordinary number (see the module doc)."""

    def __init__(self, options: NumberOptions):
        self.options = options
        self.before = frozenset(_norm(w) for w in options.words_before)
        self.after = frozenset(_norm(w) for w in options.words_after)

    def allowed(self, text: str, entity_type: str, start: int, end: int) -> bool:
        """True when text[start:end] is an ordinary number, not personal data."""
        if entity_type not in NUMBER_TYPES:
            return False
        value = text[start:end]
        digits = sum(c.isdigit() for c in value)
        if entity_type == "PHONE_NUMBER" and digits < self.options.phone_min_digits:
            return True
        if not self.options.allow_list:
            return False
        if _in_larger_number(text, start, end):
            return True
        if FRACTION.search(value) or SPACED_DASH.search(value):
            return True
        if entity_type == "CREDIT_CARD" or PHONE_SHAPE.search(value):
            return False  # a card passed its range and Luhn checks; a phone has a phone's shape
        return self._context(text, start, end)

    def _context(self, text: str, start: int, end: int) -> bool:
        head = text[max(0, start - 40) : start]
        if head.rstrip()[-1:] and head.rstrip()[-1] in CURRENCY:
            return True
        if any(_norm(w) in self.before for w in WORD.findall(head)[-2:]):
            return True
        tail = WORD.findall(text[end : end + 24])
        return bool(tail) and _norm(tail[0]) in self.after


def _norm(word: str) -> str:
    return word.lower().replace(".", "")


def _in_larger_number(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    glued_before = len(before) == 2 and before[0].isdigit() and before[1] in ",."
    glued_after = len(after) == 2 and after[0] in ",." and after[1].isdigit()
    return glued_before or glued_after
