"""The shared-candidate phone matcher (`phone.Plan`, `phone.Region`) finds what the per-region
matcher it replaced found, and what presidio's own recognizer finds, to the offset."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import Leniency, PhoneNumberMatcher
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

from gristmill.transforms.pii import phone
from gristmill.transforms.pii.engine import DEFAULT_REGIONS
from gristmill.transforms.pii.phone import Rejected, no_national_fit, shape, too_short


class OldBoundedMatcher(PhoneNumberMatcher):
    """The reference: the matcher phone_spans ran before, one full pass per region."""

    def __init__(self, text, region, regions, leniency, rejected):
        super().__init__(text, region, leniency=leniency)
        self._shape = shape(region, regions)
        self._bounded = leniency >= Leniency.VALID
        self._rejected = rejected

    def _parse_and_verify(self, candidate, offset):
        if not self._bounded:
            return super()._parse_and_verify(candidate, offset)
        if too_short(candidate, self._shape):
            return None
        end = offset + len(candidate)
        key = (
            self.preferred_region,
            self.leniency,
            candidate,
            self.text[offset - 1] if offset > 0 else "",
            self.text[end] if end < len(self.text) else "",
        )
        if key in self._rejected.keys:
            return None
        if no_national_fit(candidate, self._shape):
            match = None
        else:
            match = super()._parse_and_verify(candidate, offset)
        if match is None:
            self._rejected.add(key)
        return match


def old_phone_spans(recognizer, text, rejected):
    """phone_spans as it was, for presidio's own recognizer."""
    regions = tuple(recognizer.supported_regions)
    entity = recognizer.supported_entities[0]
    results = [
        RecognizerResult(entity, m.start, m.end, recognizer.SCORE)
        for region in regions
        for m in OldBoundedMatcher(text, region, regions, recognizer.leniency, rejected)
    ]
    return [(r.start, r.end, r.score) for r in EntityRecognizer.remove_duplicates(results)]


EDGE = [
    "5494807107x12",
    "ext 7",
    "(212)5550143a",
    "+44 20 7946 0958",
    "+1 598 892 4319",
    "call 212-555-0143 ext 7",
    "(212) 555-0143 x 12",
    "549-480-7107 / 549-480-7108",
    "(650) 223 3345 (754) 223 3321",
    "12345 - 332-445-1234",
    "3324451234 8002341234",
    "1-800-FLOWERS",
    "tel:+33-1-42-68-53-00;ext=12",
]
NOT_PHONES = [
    "<20020822152545.GA1234@example.com>",
    "<4.44.0208221606260.675-100000@host.example.org>",
    "<1030015585.13258.camel@localhost>",
    "Message-Id: <200208222349.00463@list12.example.net>",
    "/spam-1/0123.7c53336b37003a2a8ef3b6b3a2bd8a21.txt",
    "easy-ham-1/01104.2e2a1e4e8e55ee0a4bdb0bcd1e10a3c0",
    "2002-08-22T15:25:45Z",
    "2002-08-22 15:25:45 +0100",
    "Thu, 22 Aug 2002 18:26:25 +0700",
    "22/08/2002",
    "08/22/02",
    "20020822 15:25",
    "ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "ISBN 9780306406157",
    "$1,234,567.89",
    "EUR 12.345,67",
    "1 234 567,00 \u20ac",
    "\u00a312,500.00",
    "pages 1234-1240 (2001)",
    "1024x768",
    "version 2.4.18-3",
    "10.0.0.1",
    "4111 1111 1111 1111",
    "15723.57022.25028.68954",
]


def example_numbers() -> list[str]:
    """Example numbers of every type of many regions, in every format."""
    formats = (
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.RFC3966,
    )
    out = []
    for region in (*DEFAULT_REGIONS, "JM", "PR", "AR", "MX", "IE", "JP", "AU", "IT", "CN", "RU"):
        for kind in range(12):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                out.extend(phonenumbers.format_number(number, f) for f in formats)
    return out


def varied_texts() -> list[str]:
    """Every sample alone, inside prose, glued to letters and digits, and in random runs."""
    rng = random.Random(11)
    samples = EDGE + NOT_PHONES + example_numbers()
    out = list(samples)
    for s in samples:
        around = ["call {} now", "Tel: {}.", "x{}y", "9 {} 9", "({})", "{}:45"]
        out += [a.format(s) for a in rng.sample(around, 3)]
    for _ in range(200):
        run = " ".join(rng.choice(samples) for _ in range(rng.randint(2, 6)))
        out.append(run.replace(" ", rng.choice([" ", "  ", ", ", "\n", "/", "-"]), 2))
    return out


TEXTS = varied_texts()


def test_the_set_is_varied():
    """Phone numbers are found and most texts hold none: both verdicts are exercised."""
    recognizer = PhoneRecognizer(supported_regions=DEFAULT_REGIONS)
    found = [phone.phone_spans(recognizer, t, Rejected()) for t in TEXTS]
    with_numbers = sum(map(bool, found))
    assert with_numbers > 200 and len(found) - with_numbers > 200


CASES = [(r, Leniency.VALID) for r in (DEFAULT_REGIONS, ("US",), ("DE", "GB"), ("BR", "IN"))] + [
    (DEFAULT_REGIONS, Leniency.POSSIBLE),
    (DEFAULT_REGIONS, Leniency.STRICT_GROUPING),
]


@pytest.mark.parametrize("regions, leniency", CASES)
def test_same_findings_as_the_old_matcher_and_presidio(regions, leniency):
    recognizer = PhoneRecognizer(supported_regions=regions, leniency=leniency)
    new_memo, old_memo = Rejected(), Rejected()
    for text in TEXTS:
        new = phone.phone_spans(recognizer, text, new_memo)
        assert new == old_phone_spans(recognizer, text, old_memo), text
        if leniency == Leniency.VALID and len(regions) > 2:
            own = recognizer.analyze(text, ["PHONE_NUMBER"])
            assert new == [(r.start, r.end, r.score) for r in own], text


def test_memo_shared_by_old_and_new_keys_alike():
    """Warm memos (a corpus's recurring dates and prices) change nothing."""
    recognizer = PhoneRecognizer(supported_regions=DEFAULT_REGIONS)
    memo = Rejected()
    first = [phone.phone_spans(recognizer, t, memo) for t in TEXTS]
    assert [old_phone_spans(recognizer, t, memo) for t in TEXTS] == first
    assert [phone.phone_spans(recognizer, t, memo) for t in TEXTS] == first


@pytest.mark.parametrize("tries", [1, 2, 3, 5, 8])
def test_retry_budget_spent_as_the_library_spends_it(tries):
    """The matcher gives up after `max_tries` failed parses: the shared walk does too."""
    text = " ".join(NOT_PHONES[:8]) + " 212-555-0143 (650) 223 3345 / 12345 - 332-445-1234"
    for region in DEFAULT_REGIONS:
        expected = [(m.start, m.end) for m in PhoneNumberMatcher(text, region, max_tries=tries)]
        plan = phone.Plan(text, Leniency.VALID)
        got = phone.Region(plan, region, DEFAULT_REGIONS, Rejected()).matches(tries)
        assert got == expected, (region, tries)


def test_without_the_library_internals_each_region_runs_its_matcher(monkeypatch):
    recognizer = PhoneRecognizer(supported_regions=DEFAULT_REGIONS)
    shared = [phone.phone_spans(recognizer, t, Rejected()) for t in TEXTS[:300]]
    monkeypatch.setattr(phone, "SHARED", False)
    assert [phone.phone_spans(recognizer, t, Rejected()) for t in TEXTS[:300]] == shared


def test_no_region_skips_a_valid_plain_number():
    """`national_numbers` knows every region's prefix rules: no candidate `no_national_fit`
    rejects (every region's example numbers as written at home and with their country code, with
    digits changed, added and dropped) parses to a valid number."""
    from phonenumbers.phonenumberutil import SUPPORTED_REGIONS

    rng = random.Random(3)
    fmt = phonenumbers.PhoneNumberFormat
    skipped = 0
    for region in sorted(SUPPORTED_REGIONS):
        written = []
        for kind in range(12):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                national = phonenumbers.format_number(number, fmt.NATIONAL)
                e164 = phonenumbers.format_number(number, fmt.E164)[1:]
                written += [national, national.replace(" ", "-"), e164, "0" + e164]
        for text in list(written):
            for _ in range(3):
                chars = list(text)
                at = rng.choice([i for i, c in enumerate(chars) if c.isdigit()])
                chars[at] = rng.choice(
                    ["", str(rng.randint(0, 9)), f"{rng.randint(0, 9)}{chars[at]}"]
                )
                written.append("".join(chars))
        for text in written:
            if not no_national_fit(text, shape(region, (region,))):
                continue
            skipped += 1
            try:
                number = phonenumbers.parse(text, region)
            except phonenumbers.NumberParseException:
                continue
            assert not phonenumbers.is_valid_number(number), (region, text)
    assert skipped > 5000
