"""The fast paths of the phone scan (tight windows, skipped parses, capital IBAN seeds) change
the time a scan takes, never its findings: checked against presidio on mail-like text."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from gristmill.transforms.pii import prescreen as pre
from gristmill.transforms.pii.engine import DEFAULT_REGIONS, EngineSettings, PiiEngine
from gristmill.transforms.pii.phone import cannot_be_valid

FORMATS = (
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.E164,
)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _real_numbers() -> list[str]:
    """Example numbers of every type of the default regions (and their +1 neighbours), written
    in every format."""
    out = []
    for region in (*DEFAULT_REGIONS, "JM", "PR", "AR", "MX", "IE"):
        for kind in range(12):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                out.extend(phonenumbers.format_number(number, f) for f in FORMATS)
    return out


def _candidate(rng: random.Random, real: list[str]) -> str:
    """A string like the candidates the phonenumbers matcher meets in mail."""
    d = lambda n: _digits(rng, n)  # noqa: E731
    choices = [
        rng.choice(real),
        rng.choice(real).replace(" ", rng.choice(["-", ".", "", "  "])),
        f"{d(4)}-{d(2)}-{d(2)}", f"{d(1)}.{d(3)}    {d(1)}.{d(3)}", d(rng.randint(4, 16)),
        f"0{d(rng.randint(3, 11))}", f"00{d(rng.randint(6, 12))}", f"011 {d(3)} {d(7)}",
        f"({d(3)}) {d(3)}-{d(4)}", f"{d(3)}-{d(4)}", f"310-{d(4)}", f"1 {d(3)} {d(3)} {d(4)}",
        f"{d(3)} {d(3)} {d(4)} x{d(3)}", f"{d(3)}-{d(4)} ext. {d(2)}", f"{d(7)}#{d(2)}",
        "1-800-FLOWERS", f"{d(3)}x{d(3)}", f"{d(4)}/{d(4)}", f"+{d(rng.randint(6, 13))}",
        f"+1 ({d(3)}) {d(3)} {d(4)}", f"0{d(2)} {d(8)}", f"{d(2)} {d(2)} {d(2)} {d(2)} {d(2)}",
        "\uff10\uff12\uff10 " + d(8),
    ]  # fmt: skip
    return rng.choice(choices)


@pytest.mark.job
@pytest.mark.parametrize("regions", [DEFAULT_REGIONS, ("US",), ("DE", "GB"), ("BR", "IN")])
def test_no_skipped_candidate_parses_to_a_valid_number(regions):
    """The parses the bounded matcher skips would all have failed (parse or validity)."""
    rng = random.Random(7)
    real = _real_numbers()
    skipped = 0
    for _ in range(3000):
        candidate = _candidate(rng, real)
        for region in regions:
            if not cannot_be_valid(candidate, region, regions):
                continue
            skipped += 1
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            assert not phonenumbers.is_valid_number(number), (candidate, region)
    assert skipped > 1000  # the generator really produces skippable candidates


def _mail_like(rng: random.Random, real: list[str]) -> str:
    d = lambda n: _digits(rng, n)  # noqa: E731
    pieces = [
        f"Date: Mon, {rng.randint(1, 28)} Aug 2002 {d(2)}:{d(2)}:{d(2)} -0{d(1)}00\n",
        f"Message-Id: <{d(10)}.{d(5)}.qmail@list{d(2)}.example.net>\n",
        f"see http://radio.weblogs.com/0{d(6)}/categories/x{d(2)}.html?id={d(7)}&p={d(3)}\n",
        f"{d(1)}.{d(3)}    {d(1)}.{d(3)}    {d(1)}.{d(3)}    {d(1)}.{d(2)}\n",
        f"Call us: {rng.choice(real)} or fax {rng.choice(real)}.\n",
        f"price $ {d(2)}.{d(2)} (was {d(3)}.00), order #{d(6)}, ref {d(4)}-{d(2)}-{d(2)}\n",
        f"IBAN GB82 WEST 1234 5698 7654 32; acct DE89370400440532013000; ab{d(2)} cd{d(3)}\n",
        f"card 4111 1111 1111 1111, ssn {d(3)}-{d(2)}-{d(4)}, host 10.{d(1)}.{d(2)}.{d(1)}\n",
        f"ring 310-{d(4)} or ({d(3)}) {d(3)}-{d(4)} x{d(2)}; 1024x768; +{d(11)}\n",
        f"write to user{d(2)}@example.com, 2001:db8::{d(2)}a:{d(3)}\n",
    ]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(3, 12)))


@pytest.mark.job
@pytest.mark.parametrize("regions", [DEFAULT_REGIONS, ("US",)])
def test_windowed_scan_equals_presidio_on_mail_like_text(regions):
    engine = PiiEngine(EngineSettings(phone_regions=regions, score_threshold=0.0), with_ner=False)
    rng = random.Random(5)
    real = _real_numbers()
    checked = 0
    for _ in range(60):
        text = _mail_like(rng, real)
        windowed = sorted(engine.scan_patterns(text, prescreen=True).hits)
        whole = sorted(engine.scan_patterns(text, prescreen=False).hits)
        assert windowed == whole, text
        checked += sum(h.entity_type == "PHONE_NUMBER" for h in whole)
    assert checked > 50


def test_us_only_finds_numbers_valid_in_a_neighbour_region():
    """ "310-0000" parsed for US is a valid CA number: presidio's US-only recognizer finds it,
    so the windows must give US a chance at 7-digit numbers."""
    engine = PiiEngine(EngineSettings(phone_regions=("US",)), with_ner=False)
    text = "dial 310-0000 for the desk"
    hits = engine.scan_patterns(text, prescreen=True).hits
    assert [text[h.start : h.end] for h in hits] == ["310-0000"]
    assert pre.phone_lengths(("US",))[0]["US"] == 7


def test_iban_seeds_need_capitals_only_for_presidios_pattern():
    engine = PiiEngine(EngineSettings(), with_ner=False)
    assert engine.iban_upper  # presidio's pattern is case-sensitive: capitals seed
    text = "acct GB82 WEST 1234 5698 7654 32" + " and so on" * 8 + " gb82 west 1234 5698 7654 32"
    lower = text.index("gb82")

    def covered(upper: bool) -> bool:
        spans = pre.windows(text, ["iban"], 4, iban_upper=upper)["iban"]
        return any(s <= lower < e for s, e, _ in spans)

    assert not covered(True) and covered(False)

    class Lenient:  # a recognizer whose pattern ignores case: every letter pair seeds
        global_regex_flags = 2  # re.IGNORECASE
        patterns = [type("P", (), {"regex": pre.IBAN_HEAD + "...)"})()]

    assert not pre.iban_upper_only([Lenient()])
    assert not pre.iban_upper_only([])
