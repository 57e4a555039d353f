"""Card and phone numbers presidio misses, and ordinary numbers that must stay in the text."""

from __future__ import annotations

import random

import pytest

from gristmill.transforms.params import defaults
from gristmill.transforms.params import load as load_params
from gristmill.transforms.pii.allow import NumberOptions
from gristmill.transforms.pii.cards import is_card, luhn, scheme
from gristmill.transforms.pii.config import PiiParams, engine_settings
from gristmill.transforms.pii.engine import EngineSettings, PiiEngine


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if luhn(body + check):
            return body + check
    raise AssertionError("no check digit")


@pytest.fixture(scope="module")
def engine() -> PiiEngine:
    return PiiEngine(EngineSettings(), with_ner=False)


def found(engine: PiiEngine, text: str) -> list[tuple[str, str]]:
    hits = engine.scan_many([text], ["en"], ner=False)[0].hits
    return [(text[h.start : h.end], h.entity_type) for h in hits]


@pytest.mark.parametrize(
    ("prefix", "length", "brand"),
    [
        ("4", 16, "Visa"),
        ("2221", 16, "Mastercard"),
        ("2720", 16, "Mastercard"),
        ("2500", 16, "Mastercard"),
        ("53", 16, "Mastercard"),
        ("37", 15, "American Express"),
        ("6011", 16, "Discover"),
        ("3530", 16, "JCB"),
        ("36", 14, "Diners Club"),
        ("62", 19, "UnionPay"),
        ("2201", 16, "Mir"),
    ],
)
def test_issued_cards_are_found_in_every_written_form(engine, prefix, length, brand):
    number = luhn_complete(prefix, length, random.Random(length * 7 + len(prefix)))
    assert scheme(number) == brand and is_card(number)
    groups = " ".join(number[i : i + 4] for i in range(0, length, 4))
    forms = [number, groups, groups.replace(" ", "-")]
    if length == 15:
        forms.append(f"{number[:4]} {number[4:10]} {number[10:]}")
    for form in forms:
        text = f"She paid with {form} yesterday."
        assert found(engine, text) == [(form, "CREDIT_CARD")], form


def test_numbers_that_are_not_cards_are_left():
    rng = random.Random(3)
    unissued = luhn_complete("2721", 16, rng)  # just past the 2-series
    assert scheme(unissued) is None and not is_card(unissued)
    visa = luhn_complete("4", 16, rng)
    wrong = visa[:-1] + str((int(visa[-1]) + 1) % 10)
    assert not is_card(wrong)
    assert not is_card("4" * 16)


@pytest.mark.parametrize(
    "form",
    ["549-480-7107", "(476) 875-8688", "+1 598 892 4319", "549.480.7107", "(476)875-8688",
     "+1-598-892-4319", "1-598-892-4319", "+1 (598) 892-4319", "549 480 7107"],
)  # fmt: skip
def test_nanp_numbers_with_unassigned_area_codes_are_found(engine, form):
    text = f"You can reach the office at {form} most days."
    assert found(engine, text) == [(form, "PHONE_NUMBER")]


def test_plain_ten_digits_need_a_context_word(engine):
    assert found(engine, "The parcel 5494807107 arrived.") == []
    assert found(engine, "Her phone: 5494807107.") == [("5494807107", "PHONE_NUMBER")]


@pytest.mark.parametrize(
    "text",
    [
        "In the year 1690 some persons were seen.",
        "by the States-General in A.D. 1695. But though",
        "ISBN 978-3-16-148410-0 and ISBN-10 0-306-40615-2 were cited.",
        "Receipts were $43,002,168.90. The public debt",
        "1800 - 5,304,937 - 35.02 1810 - 7,239,814 - 36.45 1820 - 9,638,131",
        "1947 $35, 860 1946 67,229 1945 100, 031 1940",
        "as compared with 16.96 per cent, November",
        "a sum of 212 555 0143 dollars was spent",
        "see page 212 555 0143 of the report",
        "John 3:16 and verse 1690 of the psalter",
        "the table 12 549 480 7107 34 continues",
    ],
)
def test_books_and_speeches_keep_their_numbers(engine, text):
    assert found(engine, text) == []


def test_numbers_section_is_configurable():
    section = defaults(PiiParams)
    section["numbers"].update(cards="presidio", nanp=False, phone_min_digits=0, allow_list=False)
    load_params(PiiParams, section)
    settings = engine_settings(section)
    assert settings.numbers == NumberOptions(
        cards="presidio", nanp=False, phone_min_digits=0, allow_list=False
    )
    engine = PiiEngine(settings, with_ner=False)
    mastercard_2 = luhn_complete("2221", 16, random.Random(5))
    assert found(engine, f"paid with {mastercard_2} then") == []  # presidio's own pattern
    assert found(engine, "call (476) 875-8688 now") == []  # unassigned area code: not valid
    with pytest.raises(ValueError, match="numbers.cards"):
        bad = defaults(PiiParams)
        bad["numbers"]["cards"] = "all"
        load_params(PiiParams, bad)
