"""presidio's phone recognizer, minus the parses that cannot end in a valid number.

presidio's `PhoneRecognizer` runs a `phonenumbers.PhoneNumberMatcher` per region, and the
matcher parses every candidate it meets (and, when that fails, every piece of it: "inner
matches") before it checks validity. In mail, where digits are everywhere (dates, prices,
tables of figures, URLs, message ids), nine parses in ten fail, and parsing was most of the
scan's time. The matcher here answers "no match" without parsing when the answer is certain:

- **too short**: a valid number has at least the fewest digits of any number of its country
  code (`pii_prescreen.phone_lengths`), more after an international prefix or `+`. Letters
  count as digits here, since a parse may read vanity letters as digits;
- **no national number fits**: read for a region without `+` or its international prefix, a
  candidate's national number is a run of its digits (the digits, less a leading country code,
  national prefix or carrier code, and less a trailing extension); a valid one matches one of
  the number-type patterns (fixed line, mobile, ...) of a region with that country code, in
  one of their lengths. Candidates for which that reading is not sure (a `+`, an international
  prefix, vanity letters, non-ASCII characters, a region whose national prefix rule rewrites
  digits) are parsed as before;
- **rejected before**: the same candidate, in the same surroundings, for the same region.

Everything else, including the order of candidates and the matcher's retry budget, is the
matcher's own. If `phonenumbers` ever renames the hook, nothing is skipped: results stay the
same, only slower. `tests/transforms/pii/test_pii.py` checks the windowed scan equals presidio's recognizer on
the whole text, and that no skipped candidate parses to a valid number.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from phonenumbers import (
    Leniency,
    PhoneMetadata,
    PhoneNumberMatcher,
    region_code_for_country_code,
)
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from gristmill.transforms.pii import prescreen as pre

PLUS = ("+", "\uff0b")
MEMO_SIZE = 200_000
# The number types a valid number must have one of (phonenumbers' _number_type_helper).
NUMBER_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
NON_DIGIT = re.compile(r"[^0-9]")
LETTER = re.compile(r"[A-Za-z]")
# Candidates whose digits end the national number: no extension, no second number after them.
PLAIN = re.compile(r"[0-9 \-./()\[\]]*")


class Shape(NamedTuple):
    """What a national number of one region must look like."""

    fewest: tuple[int, int]  # digits needed without, with a plus sign
    idd: re.Pattern | None  # the international prefix (a parse then reads a country code)
    types: re.Pattern | None  # any number type of any region of the country code; None: unsure
    lengths: tuple[int, ...]  # possible lengths of those regions' numbers


@lru_cache(maxsize=64)
def shape(region: str, regions: tuple[str, ...]) -> Shape:
    national, prefix, international = pre.phone_lengths(regions)
    fewest = min(national[region], prefix[region] + international)
    fewest_plus = min(fewest, international)
    md = PhoneMetadata.metadata_for_region(region)
    siblings = COUNTRY_CODE_TO_REGION_CODE.get(md.country_code, ()) if md else ()
    main = (
        PhoneMetadata.metadata_for_region(region_code_for_country_code(md.country_code))
        if md
        else None
    )
    patterns: list[str] = []
    lengths: set[int] = set()
    for sibling in siblings:
        smd = PhoneMetadata.metadata_for_region(sibling)
        lengths.update(n for n in smd.general_desc.possible_length if n > 0)
        for kind in NUMBER_TYPES:
            desc = getattr(smd, kind, None)
            if desc is not None and desc.national_number_pattern:
                patterns.append(desc.national_number_pattern)
    # A national prefix rule that rewrites digits (or stripping with the main region's rule)
    # breaks "the national number is a run of the digits": parse those.
    rewrites = any(m is not None and m.national_prefix_transform_rule for m in (md, main))
    sure = md is not None and patterns and lengths and not rewrites
    types = re.compile("|".join(f"(?:{p})" for p in patterns)) if sure else None
    idd = re.compile(md.international_prefix) if md and md.international_prefix else None
    return Shape((fewest, fewest_plus), idd, types, tuple(sorted(lengths)))


def too_short(candidate: str, s: Shape) -> bool:
    if len(candidate) < s.fewest[1]:  # the fewer of the two; letters and digits are fewer still
        return True
    plus = PLUS[0] in candidate or PLUS[1] in candidate
    return sum(map(str.isalnum, candidate)) < s.fewest[plus]


def no_national_fit(candidate: str, s: Shape) -> bool:
    """True when no run of the candidate's digits can be a valid national number (and the
    candidate can only be read as a national number)."""
    plus = PLUS[0] in candidate or PLUS[1] in candidate
    if plus or s.types is None or not candidate.isascii() or len(LETTER.findall(candidate)) >= 3:
        return False
    digits = NON_DIGIT.sub("", candidate)
    if s.idd is None or s.idd.match(digits):
        return False
    n = len(digits)
    if PLAIN.fullmatch(candidate):  # the national number is a suffix of the digits
        return not any(s.types.fullmatch(digits, n - k) for k in s.lengths if k <= n)
    return not any(s.types.fullmatch(digits, i, i + k) for k in s.lengths for i in range(n - k + 1))


def cannot_be_valid(candidate: str, region: str, regions: tuple[str, ...]) -> bool:
    """True when parsing `candidate` for `region` cannot give a valid number."""
    s = shape(region, regions)
    return too_short(candidate, s) or no_national_fit(candidate, s)


class Rejected:
    """Candidates the matcher rejected, with what its verdict depends on: the candidate, the
    region, the leniency and the characters just before and after it. Dates, years and prices
    recur across a corpus; each is parsed once per region. Bounded: cleared when full."""

    def __init__(self, size: int = MEMO_SIZE):
        self.size = size
        self.keys: set[tuple] = set()

    def add(self, key: tuple) -> None:
        if len(self.keys) >= self.size:
            self.keys.clear()
        self.keys.add(key)


class BoundedMatcher(PhoneNumberMatcher):
    """A PhoneNumberMatcher that does not parse candidates that cannot be valid numbers."""

    def __init__(self, text: str, region: str, regions: tuple[str, ...], leniency, rejected):
        super().__init__(text, region, leniency=leniency)
        self._shape = shape(region, regions)
        self._bounded = leniency >= Leniency.VALID  # POSSIBLE also accepts local-only lengths
        self._rejected = rejected

    def _parse_and_verify(self, candidate: str, offset: int):
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


def presidios_own(analyze) -> bool:
    """Whether `analyze` is presidio's PhoneRecognizer.analyze, the one phone_spans mirrors."""
    return getattr(analyze, "__qualname__", "") == "PhoneRecognizer.analyze" and getattr(
        analyze, "__module__", ""
    ).startswith("presidio_analyzer.")


def phone_spans(recognizer, text: str, rejected: Rejected) -> list[tuple[int, int, float]]:
    """(start, end, score) of what `recognizer` (presidio's PhoneRecognizer) finds in `text`,
    de-duplicated as its `analyze` does. A recognizer whose `analyze` is not presidio's own (a
    subclass, a patched one) is run as it is."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    if not presidios_own(type(recognizer).analyze):
        found = recognizer.analyze(text, list(recognizer.supported_entities), None)
        return [(r.start, r.end, r.score) for r in found]
    regions = tuple(recognizer.supported_regions)
    entity = recognizer.supported_entities[0]
    results = [
        RecognizerResult(entity, match.start, match.end, recognizer.SCORE)
        for region in regions
        for match in BoundedMatcher(text, region, regions, recognizer.leniency, rejected)
    ]
    return [(r.start, r.end, r.score) for r in EntityRecognizer.remove_duplicates(results)]
