"""The pre-screen: where in a text a pattern entity can be, so recognizers only see those places.

Three compiled regexes find three kinds of seed:

- `num`: a cluster of digit runs joined by at most four phone punctuation characters (the same
  joining rule as the candidate pattern of `phonenumbers`, which presidio's phone recognizer
  uses), with phone lead characters (`+`, `(`, `[`) in front;
- `at`: an `@`;
- `v6`: a `:` followed by at most four hex digits and another `:` (every IPv6 form has one).

Each entity group needs a seed of its own kind: an email an `@`; a phone number a cluster of at
least `min_phone_digits` digits (the fewest digits any valid number has, from the phonenumbers
metadata); a card 13 digits; an SSN 9; an IPv4 address a dotted quad inside a cluster; an IPv6
address a `v6` seed; an IBAN a cluster right after two letters (two capitals, not preceded by
a capital or digit, when the IBAN recognizer's pattern is presidio's case-sensitive one: see
`iban_upper_only`). Clusters too short for anything but an IBAN are passed over inside the
regex engine (`clusters_of`): most digit runs in mail are.

A window is a seed widened to *neutral* characters on both sides: whitespace and a few
punctuation marks that no recognizer's lookaround, word boundary or candidate pattern treats
differently from the start or end of the text. So a recognizer run on the window gives the same
matches as on the whole text, provided no match crosses a window boundary; that holds because
every match of a group contains a seed of that group and lies inside the seed's window, and
overlapping windows are merged. `tests/transforms/pii/test_pii.py` checks the equality on generated text.
A window edge is searched for at most `MAX_SNAP` characters out (text without any neutral
character for that long, e.g. a base64 blob, is cut there).

Phone windows are narrower: the cluster (with its leads and extension) and the characters the
`phonenumbers` matcher looks at around a candidate, one before it (a letter or currency sign
there rejects it) and three after (a time stamp's `:mm`). A candidate never crosses a
cluster's ends, so the matcher meets the same candidates in the same surroundings as in the
whole text; and the narrow windows recur (" 2002 ", "/0106384/"), so the memo of phone
results in the engine hits more often. They carry the most letters and digits of any cluster
in them (letters: a parse may read vanity letters, or a cluster's `x`s, as digits): a region
whose shortest number is longer cannot match anything there (see `phone_regions_for`).
A digit run glued to a letter (hash-named files, Message-IDs: "7c53336b", "GJ3670@") opens no
phone window at all: the matcher rejects it (`glued`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

try:  # the candidate syntax of the phonenumbers matcher, which presidio's phone recognizer runs
    from phonenumbers.phonenumbermatcher import _EXTN_PATTERNS_FOR_MATCHING
    from phonenumbers.phonenumberutil import _VALID_PUNCTUATION
except ImportError:  # pragma: no cover - a phonenumbers without these names
    _VALID_PUNCTUATION = (
        "-x\u2010-\u2015\u2212\u30fc\uff0d-\uff0f \u00a0\u00ad\u200b\u2060\u3000"
        "()\uff08\uff09\uff3b\uff3d.\\[\\]/~\u2053\u223c\uff5e"
    )
    _EXTN_PATTERNS_FOR_MATCHING = r"[ \u00a0\t,]*(?:e?xt|x|#|~|int)[:\.]?[ \u00a0\t,-]*\d{1,20}#?"

EMAIL, PHONE, IP, CARD, SSN, IBAN = "email", "phone", "ip", "card", "ssn", "iban"
GROUPS = (EMAIL, PHONE, IP, CARD, SSN, IBAN)
# The entity each group's recognizer finds.
GROUP_ENTITY = {
    EMAIL: "EMAIL_ADDRESS",
    PHONE: "PHONE_NUMBER",
    IP: "IP_ADDRESS",
    CARD: "CREDIT_CARD",
    SSN: "US_SSN",
    IBAN: "IBAN_CODE",
}
ENTITY_GROUP = {v: k for k, v in GROUP_ENTITY.items()}

CARD_DIGITS = 13  # the presidio card pattern: 4+3+3+3 digits at least
SSN_DIGITS = 9  # every presidio SSN pattern has nine digits
IBAN_REACH = 48  # an IBAN match spans at most 2+2+30 characters plus separators
MAX_SNAP = 4096
PHONE_AFTER = 3

_LEAD = "(\\[\uff08\uff3b+\uff0b"
_PUNCT = f"[{_VALID_PUNCTUATION}]"
# The seeds, one regex each: Python's regex engine skips ahead fast only when a pattern starts
# with a digit class or a literal, which an alternation of the three does not.
NUM = re.compile(rf"\d+(?:{_PUNCT}{{0,4}}\d+)*")
V6 = re.compile(r":[0-9A-Fa-f]{0,4}:")
# Phone lead characters (and punctuation after them) just before a cluster belong to it.
LEAD_BEFORE = re.compile(rf"(?:[{_LEAD}]{_PUNCT}{{0,4}}){{1,2}}$")
EXTENSION = re.compile(f"(?:{_EXTN_PATTERNS_FOR_MATCHING})", re.IGNORECASE | re.UNICODE)
# presidio's IBAN pattern starts so (case-sensitive): two capitals and two digits, alone.
IBAN_HEAD = "(?<![A-Z0-9])([A-Z]{2}[0-9]{2}"
IBAN_SEED = re.compile(r"(?<![A-Z0-9])[A-Z]{2}[0-9]{2}")
DOTTED_QUAD = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
# Characters next to which a window may end: nothing a recognizer matches can contain them
# except whitespace, and a seed's cluster already spans the whitespace inside a match.
NEUTRAL = re.compile(r"[\s,;\"<>\u3001\u3002\uff0c\uff1b\u300c\u300d\u300e\u300f]")


@lru_cache(maxsize=16)
def phone_lengths(regions: tuple[str, ...]) -> tuple[dict[str, int], dict[str, int], int]:
    """(shortest national number per region, shortest international prefix per region,
    shortest international number), in digits.

    From the phonenumbers metadata: a number parsed for a region has at least the shortest
    possible length of the numbers of its country code (validity is judged by whichever region
    of that code the number fits: "310-0000" parsed for US is a valid CA number); one with a
    country code (after `+` or the region's international prefix) at least the code plus the
    shortest length of that country.
    """
    import re as _re

    from phonenumbers import PhoneMetadata
    from phonenumbers.phonenumberutil import (
        COUNTRY_CODE_TO_REGION_CODE,
        COUNTRY_CODES_FOR_NON_GEO_REGIONS,
        SUPPORTED_REGIONS,
    )

    def shortest(md) -> int | None:
        lengths = [n for n in md.general_desc.possible_length if n > 0] if md else []
        return min(lengths) if lengths else None

    def shortest_prefix(md) -> int:
        pattern = md.international_prefix if md else None
        if not pattern:
            return 99
        for n in (1, 2, 3):
            if any(_re.fullmatch(pattern, f"{i:0{n}d}") for i in range(10**n)):
                return n
        return 4

    national, prefix = {}, {}
    for r in regions:
        md = PhoneMetadata.metadata_for_region(r)
        siblings = COUNTRY_CODE_TO_REGION_CODE.get(md.country_code, ()) if md else ()
        lengths = [shortest(PhoneMetadata.metadata_for_region(s)) for s in (r, *siblings)]
        national[r] = min([n for n in lengths if n] or [1])
        prefix[r] = shortest_prefix(md)
    international = []
    for region in SUPPORTED_REGIONS:
        md = PhoneMetadata.metadata_for_region(region)
        if md and shortest(md):
            international.append(len(str(md.country_code)) + shortest(md))
    for code in COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        md = PhoneMetadata.metadata_for_nongeo_region(code)
        if md and shortest(md):
            international.append(len(str(code)) + shortest(md))
    return national, prefix, max(1, min(international))


def min_phone_digits(regions: tuple[str, ...]) -> int:
    """The fewest digits a valid phone number can have when parsed for `regions`."""
    national, _, international = phone_lengths(regions)
    return min([*national.values(), international])


def phone_regions_for(regions: tuple[str, ...], digits: int, plus: bool) -> tuple[str, ...]:
    """The regions whose matcher can find a number among clusters of at most `digits` digits.

    A region finds a national number only if its shortest number has at most `digits` digits,
    and an international one only after `+` (`plus`: the window has one) or after its own
    international prefix, with at least the shortest international number's digits behind it.
    Every other region finds nothing there, so presidio's phone recognizer for the remaining
    regions gives the same results as for all of them.
    """
    national, prefix, international = phone_lengths(regions)
    if plus and digits >= international:
        return regions
    return tuple(r for r in regions if national[r] <= digits or prefix[r] + international <= digits)


def _last_neutral(text: str, lo: int, hi: int) -> int | None:
    """The position of the last neutral character in text[lo:hi], looked for in growing
    steps back from `hi` (the nearest is usually a few characters away)."""
    step = 64
    while hi > lo:
        start = max(lo, hi - step)
        found = NEUTRAL.findall(text, start, hi)
        if found:
            return text.rindex(found[-1], start, hi)
        hi, step = start, step * 4
    return None


def _snap(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) until the characters just outside it are neutral (or text edges)."""
    if start > 0 and not NEUTRAL.match(text, start - 1):
        lo = max(0, start - MAX_SNAP)
        at = _last_neutral(text, lo, start)
        start = lo if at is None else at + 1
    if end < len(text) and not NEUTRAL.match(text, end):
        m = NEUTRAL.search(text, end, end + MAX_SNAP)
        end = m.start() if m else min(len(text), end + MAX_SNAP)
    return start, end


@lru_cache(maxsize=8)
def clusters_of(length: int, iban_upper: bool) -> re.Pattern:
    """NUM, but only the clusters that are at least `length` characters long or start right
    after two letters (an IBAN seed; capitals with `iban_upper`). Most digit runs in mail are
    shorter; passing over them in the regex engine is much cheaper than in Python. Where the
    look-ahead fails at a cluster's first digit it fails at the others too (the cluster ends
    sooner), and a cluster with two letters inside it is long enough, so no cluster is found
    cut short."""
    letters = "[A-Z]" if iban_upper else r"[^\W\d_]"
    ahead = rf"(?=[{_VALID_PUNCTUATION}\d]{{{max(0, length - 1)}}})"
    return re.compile(rf"\d(?<!\d\d)(?:(?<={letters}{{2}}\d)|{ahead})\d*(?:{_PUNCT}{{0,4}}\d+)*")


def iban_upper_only(recognizers: Iterable) -> bool:
    """Whether every IBAN pattern starts as presidio's does (`IBAN_HEAD`, case-sensitive), so
    an IBAN can only start with two capitals and two digits, not preceded by either."""
    found = False
    for recognizer in recognizers:
        flags = getattr(recognizer, "global_regex_flags", None) or 0
        for pattern in getattr(recognizer, "patterns", None) or [None]:
            regex = getattr(pattern, "regex", "")
            if flags & re.IGNORECASE or not regex.startswith(IBAN_HEAD):
                return False
            found = True
    return found


def merge(spans: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Overlapping (start, end, digits) spans united; digits is the largest of the united."""
    out: list[tuple[int, int, int]] = []
    for start, end, digits in sorted(spans):
        if out and start <= out[-1][1]:
            last = out[-1]
            out[-1] = (last[0], max(end, last[1]), max(digits, last[2]))
        else:
            out.append((start, end, digits))
    return out


def glued(text: str, cluster: str, s: int, e: int) -> bool:
    """A cluster of ASCII digits with an ASCII letter right before or after it ("7c53336b",
    "GJ3670@"), no lead character and no extension: the phone matcher's only candidate in it
    is the cluster itself, which it rejects at presidio's leniency (VALID: no Latin letter
    next to a number), with no inner candidates (those need punctuation); the NANP pattern
    cannot start after a letter or end before one. A window of a neighbouring cluster that
    takes in part of it keeps the letter before it, or sees at most its first two digits."""
    if not (cluster.isdigit() and cluster.isascii()):
        return False
    before = text[s - 1] if s > 0 else ""
    after = text[e] if e < len(text) else ""
    return any(c.isascii() and c.isalpha() for c in (before, after))


def _number(text: str, cluster: str, s: int, e: int, wanted: set, phone_digits: int, raw: dict):
    """The windows a digit cluster opens, for the groups whose entities it can hold."""
    digits = sum(map(str.isdecimal, cluster))
    # A phone parse may read letters as digits (vanity numbers; the cluster's `x`s): count them.
    phone = PHONE in wanted and sum(map(str.isalnum, cluster)) >= phone_digits
    ext = None
    if phone:
        ext = EXTENSION.match(text, e)
        if ext:
            e = ext.end()
    lead = LEAD_BEFORE.search(text, max(0, s - 10), s) if s else None
    if lead:
        s = lead.start()
    elif phone and not ext:
        phone = not glued(text, cluster, s, e)
    if phone:
        alnum = sum(map(str.isalnum, text[s:e]))
        raw[PHONE].append((max(0, s - 1), min(len(text), e + PHONE_AFTER), alnum))
    span = None
    for group, ok in (
        (CARD, digits >= CARD_DIGITS),
        (SSN, digits >= SSN_DIGITS),
        (IP, digits >= 4 and "." in cluster and DOTTED_QUAD.search(cluster)),
    ):
        if ok and group in wanted:
            span = span or _snap(text, s, e)
            raw[group].append((*span, digits))


def _iban_seed(text: str, s: int, upper: bool) -> bool:
    """Whether the cluster at `s` can start an IBAN's check digits."""
    if upper:
        return s >= 2 and IBAN_SEED.match(text, s - 2) is not None
    return s >= 2 and text[s - 1].isalpha() and text[s - 2].isalpha()


def windows(
    text: str, groups: Iterable[str], phone_digits: int, iban_upper: bool = False
) -> dict[str, list[tuple[int, int, int]]]:
    """Merged candidate windows (start, end, most digits of a seed in it) per group asked for.
    `iban_upper`: the IBAN recognizer matches only capitals (see `iban_upper_only`)."""
    wanted = set(groups)
    raw: dict[str, list[tuple[int, int, int]]] = {g: [] for g in wanted}
    want_num = bool(wanted & {PHONE, CARD, SSN, IP, IBAN})
    shortest = min(4, phone_digits) if PHONE in wanted else 4
    if want_num:
        for m in clusters_of(shortest, iban_upper).finditer(text):
            s, e = m.span()
            if IBAN in wanted and _iban_seed(text, s, iban_upper):
                reach = min(len(text), max(e, s - 2 + IBAN_REACH))
                raw[IBAN].append((*_snap(text, s - 2, reach), 0))
            if e - s >= shortest:  # fewer digits hold nothing but an IBAN (above)
                _number(text, m.group(), s, e, wanted, phone_digits, raw)
    if EMAIL in wanted:
        at = text.find("@")
        while at >= 0:
            raw[EMAIL].append((*_snap(text, at, at + 1), 0))
            at = text.find("@", at + 1)
    if IP in wanted:
        for m in V6.finditer(text):
            raw[IP].append((*_snap(text, m.start(), m.start() + 1), 0))
    return {g: merge(spans) for g, spans in raw.items() if spans}


def joined(text: str, spans: list[tuple[int, int, int]], limit: int) -> Iterable[tuple[str, list]]:
    """Windows concatenated with a newline (neutral), in pieces of about `limit` characters.

    Yields (piece, offsets) with offsets [(piece_start, text_start, length)] to map results back.
    """
    parts: list[str] = []
    offsets: list[tuple[int, int, int]] = []
    pos = 0
    for start, end, _ in spans:
        if parts and pos + (end - start) > limit:
            yield "\n".join(parts), offsets
            parts, offsets, pos = [], [], 0
        parts.append(text[start:end])
        offsets.append((pos, start, end - start))
        pos += end - start + 1
    if parts:
        yield "\n".join(parts), offsets
