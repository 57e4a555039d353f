"""presidio's phone recognizer, with the matcher's work shared by the regions and minus the
parses that cannot end in a valid number.

presidio's `PhoneRecognizer` runs a `phonenumbers.PhoneNumberMatcher` per region, and each
finds the same candidates and inner pieces and makes the same checks before it parses a piece
for its region. Here that region-free half is done once per text (`Plan`, lazily: a region
that finds a number resumes its search after it); each region (`Region`) walks it in the
matcher's order, with its retry budget, and parses and verifies with the library's own
`_parse_and_verify`. In mail, where digits are everywhere (dates, prices, message ids), nine
parses in ten fail, so a parse is skipped when the answer is certain without it:

- **too short**: a valid number has at least the fewest digits of any number of its country
  code (`pii_prescreen.phone_lengths`), more after an international prefix or `+`. Letters
  count as digits here, since a parse may read vanity letters as digits;
- **no national number fits**: read for a region without `+` or its international prefix, a
  candidate's national number is its digits less what a parse strips from the front (the
  country code, a national prefix or carrier code, or their rewrite: `national_numbers`); with
  an extension or a second number in it, some run of its digits. A valid one matches one of the
  number-type patterns (fixed line, mobile, ...) of a region with that country code, in one of
  their lengths. Candidates for which that reading is not sure (a `+`, an international prefix,
  vanity letters, non-ASCII characters) are parsed as before;
- **rejected before**: the same candidate, in the same surroundings, for the same region.

Everything else, including the order of candidates and the retry budget, is the matcher's own.
If `phonenumbers` ever renames what the plan mirrors, each region runs its own matcher: results
stay the same, only slower. `tests/transforms/pii/test_phone_matcher.py` checks the findings
equal the per-region matcher's and presidio's; `tests/transforms/pii/test_pii_speed_mail.py`
that no skipped candidate parses to a valid number.
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

try:  # the matcher's candidate syntax: shared by all regions, so found once (see `Plan`)
    from phonenumbers.phonenumbermatcher import (
        _INNER_MATCHES,
        _LEAD_PATTERN,
        _MATCHING_BRACKETS,
        _PATTERN,
        _PUB_PAGES,
        _SECOND_NUMBER_START_PATTERN,
        _SLASH_SEPARATED_DATES,
        _TIME_STAMPS,
        _TIME_STAMPS_SUFFIX,
        _UNWANTED_END_CHAR_PATTERN,
    )

    SHARED = all(
        hasattr(PhoneNumberMatcher, name)
        for name in ("_parse_and_verify", "_is_latin_letter", "_is_invalid_punctuation_symbol")
    )
except ImportError:  # pragma: no cover - a phonenumbers without them: its matcher per region
    SHARED = False

PLUS = ("+", "\uff0b")
MEMO_SIZE = 200_000
MAX_TRIES = 65535  # PhoneNumberMatcher's default retry budget, which presidio keeps
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
    cc: str  # the region's country code, which a parse may strip from the front
    prefixes: tuple[tuple[re.Pattern, str | None], ...]  # national prefixes and their rewrites
    rewrites: bool  # a rewrite can make the national number other than a run of the digits


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
    # The national prefix rules a parse applies: the region's, and the main region's of the
    # country code once it has read the code from the front of the digits.
    rules = {m.id: m for m in (md, main) if m is not None}.values()
    prefixes = tuple(
        (re.compile(m.national_prefix_for_parsing), m.national_prefix_transform_rule or None)
        for m in rules
        if m.national_prefix_for_parsing
    )
    rewrites = any(rule for _, rule in prefixes)
    sure = md is not None and patterns and lengths
    types = re.compile("|".join(f"(?:{p})" for p in patterns)) if sure else None
    idd = re.compile(md.international_prefix) if md and md.international_prefix else None
    cc = str(md.country_code) if md else ""
    lengths_ = tuple(sorted(lengths))
    return Shape((fewest, fewest_plus), idd, types, lengths_, cc, prefixes, rewrites)


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
    if PLAIN.fullmatch(candidate):  # no extension: the digits less what a parse strips
        fits = (n for n in national_numbers(digits, s) if len(n) in s.lengths)
        return not any(s.types.fullmatch(n) for n in fits)
    if s.rewrites:
        return False
    n = len(digits)
    return not any(s.types.fullmatch(digits, i, i + k) for k in s.lengths for i in range(n - k + 1))


def national_numbers(digits: str, s: Shape) -> set[str]:
    """Every national number a parse can read from a plain candidate's digits, and more: it
    strips the country code from the front, then a national prefix (or rewrites it) at most
    twice; here any of those steps, in any order, up to three of them."""
    found = frontier = {digits}
    for _ in range(3):
        steps = set()
        for d in frontier:
            if s.cc and d.startswith(s.cc):
                steps.add(d[len(s.cc) :])
            for pattern, rule in s.prefixes:
                m = pattern.match(d)
                if m:
                    steps.add(d[m.end() :])
                    if rule:
                        steps.add(pattern.sub(rule, d, count=1))
        frontier = steps - found
        found = found | steps
    return found


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


class Attempt(NamedTuple):
    """One parse the matcher would try: a piece of a candidate at an offset in the text."""

    group: str
    offset: int
    dead: bool  # fails before the parse whatever the region (brackets, a letter next to it)
    key: tuple  # what the verdict depends on besides the region (see `Rejected`)


class Candidate(NamedTuple):
    """A candidate of the matcher's pattern and the parses it leads to, in the matcher's order."""

    start: int
    length: int
    skip: bool  # a date or a time stamp: nothing is parsed
    whole: Attempt
    rounds: tuple[tuple[Attempt, ...], ...]  # inner pieces; the retry budget is checked per round


class Plan:
    """The region-free half of the matcher's work on one text, done once for all regions:
    where the candidates are, which pieces of them get parsed, which of those fail before the
    parse. Lazy, since a region that finds a number resumes its search after it."""

    def __init__(self, text: str, leniency: int):
        self.text = text
        self.leniency = leniency
        self.searches: dict[int, tuple[int, int] | None] = {}
        self.candidates: dict[tuple[int, int], Candidate] = {}

    def candidate_from(self, index: int) -> Candidate | None:
        """The matcher's next candidate on or after `index` (its `_find`)."""
        if index not in self.searches:
            m = _PATTERN.search(self.text, index)
            self.searches[index] = m.span() if m else None
        span = self.searches[index]
        if span is None:
            return None
        if span not in self.candidates:
            self.candidates[span] = self.build(*span)
        return self.candidates[span]

    def build(self, start: int, end: int) -> Candidate:
        """`_find` and `_extract_match` short of parsing: trim, dates, time stamps, inner pieces."""
        text = self.text
        cand = trim(_SECOND_NUMBER_START_PATTERN, text[start:end])
        after = start + len(cand)
        stamp = _TIME_STAMPS.search(cand) and _TIME_STAMPS_SUFFIX.match(text, after)
        skip = bool(_SLASH_SEPARATED_DATES.search(cand) or stamp)
        rounds: list[tuple[Attempt, ...]] = []
        for inner in () if skip else _INNER_MATCHES:  # `_extract_inner_match`
            m = inner.search(cand)
            first = (
                self.attempt(trim(_UNWANTED_END_CHAR_PATTERN, cand[: m.start()]), start)
                if m
                else None
            )
            while m:
                piece = trim(_UNWANTED_END_CHAR_PATTERN, m.group(1))
                piece_at = self.attempt(piece, start + m.start(1))
                rounds.append((first, piece_at) if first else (piece_at,))
                first = None
                m = inner.search(cand, m.start() + 1)
        return Candidate(start, len(cand), skip, self.attempt(cand, start), tuple(rounds))

    def attempt(self, group: str, offset: int) -> Attempt:
        """The checks `_parse_and_verify` makes before it parses; none depends on the region."""
        text, end = self.text, offset + len(group)
        before = text[offset - 1] if offset > 0 else ""
        after = text[end : end + 1]
        dead = not _MATCHING_BRACKETS.fullmatch(group) or bool(_PUB_PAGES.search(group))
        if not dead and self.leniency >= Leniency.VALID:
            lead = _LEAD_PATTERN.match(group)
            dead = (not lead and bad_neighbour(before)) or bad_neighbour(after)
        return Attempt(group, offset, dead, (self.leniency, group, before, after))


def trim(pattern: re.Pattern, candidate: str) -> str:
    """The candidate up to the first match of `pattern` (the matcher's `_trim_after_first_match`)."""
    m = pattern.search(candidate)
    return candidate[: m.start()] if m else candidate


@lru_cache(maxsize=4096)
def bad_neighbour(c: str) -> bool:
    """A Latin letter, `%` or a currency sign: the matcher rejects a number next to one."""
    if not c:
        return False
    is_symbol = PhoneNumberMatcher._is_invalid_punctuation_symbol
    return is_symbol(c) or PhoneNumberMatcher._is_latin_letter(c)


class Region:
    """One region's parse and verification of a plan's attempts: the library's own, called only
    when the answer is not certain without it (`too_short`, `no_national_fit`, `Rejected`)."""

    def __init__(self, plan: Plan, region: str, regions: tuple[str, ...], rejected: Rejected):
        self.plan = plan
        self.region = region
        self.shape = shape(region, regions)
        self.bounded = plan.leniency >= Leniency.VALID  # POSSIBLE accepts local-only lengths
        self.rejected = rejected
        self.matcher: PhoneNumberMatcher | None = None

    def verify(self, a: Attempt) -> tuple[int, int] | None:
        """(start, end) of the number `a` is, for this region, or None."""
        if a.dead:
            return None
        key = None
        if self.bounded:
            if too_short(a.group, self.shape):
                return None
            key = (self.region, *a.key)
            if key in self.rejected.keys:
                return None
            if no_national_fit(a.group, self.shape):
                self.rejected.add(key)
                return None
        if self.matcher is None:
            self.matcher = PhoneNumberMatcher(self.plan.text, self.region, self.plan.leniency)
        match = self.matcher._parse_and_verify(a.group, a.offset)
        if match is None:
            if key is not None:
                self.rejected.add(key)
            return None
        return match.start, match.end

    def extract(self, c: Candidate, tries: int) -> tuple[tuple[int, int] | None, int]:
        """The matcher's `_extract_match` on one candidate: (the number found, tries left)."""
        if c.skip:
            return None, tries
        found = self.verify(c.whole)
        if found:
            return found, tries
        for attempts in c.rounds:
            if tries <= 0:
                break
            for a in attempts:
                found = self.verify(a)
                if found:
                    return found, tries
                tries -= 1
        return None, tries

    def matches(self, tries: int = MAX_TRIES) -> list[tuple[int, int]]:
        """What `PhoneNumberMatcher(text, region, leniency)` yields, as (start, end)."""
        out: list[tuple[int, int]] = []
        index = 0
        while tries > 0:
            c = self.plan.candidate_from(index)
            if c is None:
                break
            found, tries = self.extract(c, tries)
            if found:
                out.append(found)
                index = found[1]
                continue
            tries -= 1
            index = c.start + c.length
        return out


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
    if SHARED:
        plan = Plan(text, recognizer.leniency)
        spans = [s for r in regions for s in Region(plan, r, regions, rejected).matches()]
    else:
        spans = [
            (m.start, m.end)
            for r in regions
            for m in PhoneNumberMatcher(text, r, leniency=recognizer.leniency)
        ]
    results = [RecognizerResult(entity, s, e, recognizer.SCORE) for s, e in spans]
    return [(r.start, r.end, r.score) for r in EntityRecognizer.remove_duplicates(results)]
