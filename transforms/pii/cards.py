"""Payment card numbers by the ranges issued today, with the Luhn check.

presidio's card pattern starts a number only with 3, 4, 5 (51-55 for Mastercard), 6 or 1, so
it never sees the Mastercard 2-series (2221-2720, issued since 2017), Mir (2200-2204) or
UnionPay 81; it also accepts any 13-19 digits after those leads. This recognizer finds numbers
written as people write them (plain, or in groups of four, or 4-6-5 / 4-6-4 for Amex and
Diners, with one separator kind throughout) and keeps those whose issuer range (IIN) and length
belong to a card scheme in use, and that pass the Luhn check. A number that passes is scored
1.0, as presidio scores a Luhn-valid card.
"""

from __future__ import annotations

import re

from presidio_analyzer import EntityRecognizer, RecognizerResult

ENTITY = "CREDIT_CARD"
N16_19 = (16, 17, 18, 19)
# (first prefix, last prefix, card lengths, scheme); prefixes compared at their own length.
ISSUED: tuple[tuple[str, str, tuple[int, ...], str], ...] = (
    ("4", "4", (13, 16, 19), "Visa"),
    ("51", "55", (16,), "Mastercard"),
    ("2221", "2720", (16,), "Mastercard"),
    ("34", "34", (15,), "American Express"),
    ("37", "37", (15,), "American Express"),
    ("6011", "6011", N16_19, "Discover"),
    ("644", "649", N16_19, "Discover"),
    ("65", "65", N16_19, "Discover / RuPay / Troy"),
    ("622126", "622925", N16_19, "Discover (UnionPay co-brand)"),
    ("62", "62", N16_19, "UnionPay"),
    ("81", "82", N16_19, "UnionPay / RuPay"),
    ("3528", "3589", N16_19, "JCB"),
    ("36", "36", (14, *N16_19), "Diners Club"),
    ("300", "305", (14, *N16_19), "Diners Club"),
    ("3095", "3095", (14, *N16_19), "Diners Club"),
    ("38", "39", (14, *N16_19), "Diners Club"),
    ("2200", "2204", N16_19, "Mir"),
    ("2205", "2205", (16,), "BORICA"),
    ("5018", "5018", (13, 14, 15, *N16_19), "Maestro"),
    ("5020", "5020", (13, 14, 15, *N16_19), "Maestro"),
    ("5038", "5038", (13, 14, 15, *N16_19), "Maestro"),
    ("5893", "5893", (13, 14, 15, *N16_19), "Maestro"),
    ("6304", "6304", (13, 14, 15, *N16_19), "Maestro"),
    ("6759", "6759", (13, 14, 15, *N16_19), "Maestro"),
    ("6761", "6763", (13, 14, 15, *N16_19), "Maestro"),
    ("5019", "5019", (16,), "Dankort"),
    ("504175", "504175", (16,), "Elo"),
    ("5066", "5067", (16,), "Elo"),
    ("506099", "506198", (16, 18, 19), "Verve"),
    ("507865", "507964", (16, 18, 19), "Verve"),
    ("508", "508", (16,), "RuPay"),
    ("509", "509", (16,), "Elo"),
    ("60", "60", (16,), "RuPay"),
    ("606282", "606282", (16,), "Hipercard"),
    ("636", "636", N16_19, "InterPayment"),
    ("637", "639", (16,), "InstaPayment"),
    ("9792", "9792", (16,), "Troy"),
    ("1", "1", (15,), "UATP"),
)
# Plain digits, groups of four with one separator kind, or 4-6-5 / 4-6-4.
CANDIDATE = re.compile(
    r"(?<![\w.,/+$-])"
    r"(?:\d{13,19}"
    r"|\d{4}(?P<s>[ -])\d{4}(?:(?P=s)\d{4}){1,2}(?:(?P=s)\d{1,4})?"
    r"|\d{4}(?P<t>[ -])\d{6}(?P=t)\d{4,5})"
    r"(?![\w/+-]|[.,]\d)"
)
CONTEXT = ["credit", "card", "visa", "mastercard", "amex", "discover", "jcb", "cc", "payment"]


def luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def scheme(digits: str) -> str | None:
    """The card scheme whose issued range and lengths hold `digits`, or None."""
    for lo, hi, lengths, name in ISSUED:
        head = digits[: len(lo)]
        if lo <= head <= hi and len(digits) in lengths:
            return name
    return None


def is_card(digits: str) -> bool:
    return len(set(digits)) > 1 and scheme(digits) is not None and luhn(digits)


class IssuedCardRecognizer(EntityRecognizer):
    """CREDIT_CARD: issued ranges and lengths, Luhn-valid (see the module docstring)."""

    def __init__(self, score: float = 1.0):
        self.score = score
        super().__init__(
            supported_entities=[ENTITY], name="IssuedCardRecognizer", context=list(CONTEXT)
        )

    def load(self) -> None:
        return None

    def analyze(self, text: str, entities, nlp_artifacts=None) -> list:
        out = []
        for m in CANDIDATE.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if is_card(digits):
                meta = {
                    RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                }
                out.append(RecognizerResult(ENTITY, m.start(), m.end(), self.score, None, meta))
        return out
