"""Test data for bench/pii.py: generated values of every type, real sentences to put them in."""

from __future__ import annotations

import glob
import random
import re
import string
from pathlib import Path

from gristmill.transforms.pii.engine import PATTERN_ENTITIES

PATTERN_TYPES = PATTERN_ENTITIES
FIRST = [
    "Emily",
    "James",
    "Sofia",
    "Mateo",
    "Aisha",
    "Wei",
    "Olga",
    "Kwame",
    "Priya",
    "Lars",
    "Fatima",
    "Diego",
    "Hannah",
    "Tomasz",
    "Ngozi",
    "Hiroshi",
    "Chloe",
    "Rafael",
    "Ingrid",
    "Arjun",
    "Lucia",
    "Oliver",
    "Mei",
    "Samuel",
    "Amara",
    "Pedro",
    "Elena",
    "Yusuf",
    "Grace",
    "Viktor",
]
LAST = [
    "Thompson",
    "Garcia",
    "Müller",
    "Okafor",
    "Nakamura",
    "Kowalski",
    "Johansson",
    "Patel",
    "Rossi",
    "Dubois",
    "Chen",
    "Novak",
    "Anderson",
    "Silva",
    "Haddad",
    "Fischer",
    "Mensah",
    "Ivanova",
    "Bennett",
    "Castillo",
    "Lindqvist",
    "Murphy",
    "Reyes",
    "Schmidt",
    "Adeyemi",
    "Hoffmann",
    "Moreau",
    "Sullivan",
    "Kaur",
    "Varga",
]
FRAMES = (
    "{name} said that {s}",
    "{s} wrote {name}.",
    "According to {name}, {s}",
    "{s} {name} agreed.",
)


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def iban(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def phone(rng: random.Random) -> str:
    """A valid number (by phonenumbers) of one of five regions, in one of several formats."""
    import phonenumbers

    fmt = phonenumbers.PhoneNumberFormat
    d = lambda n: "".join(rng.choice(string.digits) for _ in range(n))  # noqa: E731
    region = rng.choice(["US", "US", "GB", "DE", "FR", "IN"])
    while True:
        nsn = {
            "US": lambda: f"{rng.randint(2, 9)}{d(2)}{rng.randint(2, 9)}{d(6)}",
            "GB": lambda: "20" + d(8),
            "DE": lambda: "30" + d(8),
            "FR": lambda: rng.choice("1234567") + d(8),
            "IN": lambda: rng.choice("6789") + d(9),
        }[region]()
        number = phonenumbers.parse(nsn, region)
        if phonenumbers.is_valid_number(number):
            break
    if region == "US":
        style = rng.choice(
            ["({0}) {1}-{2}", "{0}-{1}-{2}", "{0}.{1}.{2}", "+1 {0} {1} {2}", "+1-{0}-{1}-{2}"]
        )
        return style.format(nsn[:3], nsn[3:6], nsn[6:])
    style = rng.choice([fmt.INTERNATIONAL, fmt.NATIONAL, fmt.E164])
    return phonenumbers.format_number(number, style)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _spaced(v: str, n: int = 4) -> str:
    return " ".join(v[i : i + n] for i in range(0, len(v), n))


def _email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST).lower(), rng.choice(LAST).lower().replace("ü", "u")
    domain = rng.choice(
        ["example.com", "mail.co.uk", "uni-bonn.de", "gmail.com", "post.example.org"]
    )
    return rng.choice(
        [
            f"{first}.{last}@{domain}",
            f"{first}{_digits(rng, 2)}@{domain}",
            f"{first}+news@{domain}",
            f"{first.title()}.{last.title()}@{domain}",
        ]
    )


def _card(rng: random.Random) -> str:
    """A Luhn-valid Visa, Mastercard, Discover or Amex number, plain, spaced or dashed."""
    card = rng.choice(
        [
            luhn_complete("4", 16, rng),
            luhn_complete(rng.choice(["51", "53", "55"]), 16, rng),
            luhn_complete("6011", 16, rng),
            luhn_complete(rng.choice(["34", "37"]), 15, rng),
        ]
    )
    if len(card) == 15:
        return rng.choice([card, f"{card[:4]} {card[4:10]} {card[10:]}"])
    return rng.choice([card, _spaced(card), "-".join(_spaced(card).split())])


def _ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    ssn = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    # "SSN |" puts the context word before a bare number; only the number is the value
    forms = [
        f"{ssn[:3]}-{ssn[3:5]}-{ssn[5:]}",
        f"{ssn[:3]} {ssn[3:5]} {ssn[5:]}",
        f"SSN |{ssn}",
    ]
    return rng.choice(forms)


def _iban_code(rng: random.Random) -> str:
    d = lambda n: _digits(rng, n)  # noqa: E731
    code = rng.choice([
        iban("DE", d(18)), iban("GB", rng.choice(["NWBK", "BARC", "MIDL"]) + d(14)),
        iban("FR", d(10) + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(11)) + d(2)),
        iban("NL", rng.choice(["ABNA", "INGB", "RABO"]) + d(10)), iban("ES", d(20)),
    ])  # fmt: skip
    return rng.choice([code, _spaced(code)])


def _ip(rng: random.Random) -> str:
    """IPv4, or IPv6 in full, compressed, link-local or IPv4-mapped form."""
    v4 = ".".join(str(rng.randint(1, 254)) for _ in range(4))
    groups = [f"{rng.randint(1, 0xFFFF):x}" for _ in range(8)]
    return rng.choice(
        [
            v4,
            ":".join(groups),
            f"2001:db8:{groups[2]}::{groups[6]}:{groups[7]}",
            f"fe80::{groups[5]}:{groups[6]}:{groups[7]}",
            f"::ffff:{v4}",
        ]
    )


def values(rng: random.Random) -> dict[str, list[str]]:
    """60 values of every pattern type; the generators draw from `rng` in a fixed order, so
    a seed gives the same values."""
    out: dict[str, list[str]] = {k: [] for k in PATTERN_TYPES}
    for _ in range(60):
        out["EMAIL_ADDRESS"].append(_email(rng))
        out["PHONE_NUMBER"].append(phone(rng))
        out["CREDIT_CARD"].append(_card(rng))
        out["US_SSN"].append(_ssn(rng))
        out["IBAN_CODE"].append(_iban_code(rng))
        out["IP_ADDRESS"].append(_ip(rng))
    return out


# -- corpus ---------------------------------------------------------------------------------------


def read_docs(corpus: Path, kind: str, patterns: list[str]) -> list[str]:
    from gristmill.transforms.sources import reader_for
    from gristmill.transforms.sources.reader_api import RawRecord, ReadContext
    from gristmill.transforms.sources.streams import InputFile

    reader = reader_for(kind)
    texts = []
    for pattern in patterns:
        for path in sorted(glob.glob(str(corpus / pattern))):
            ctx = ReadContext(
                kind,
                path,
                path,
                {"strip_gutenberg": True, "text_field": "text", "id_field": "id", "format": "auto"},
                256 << 20,
                "replace",
            )
            try:
                for out in reader(InputFile(path, 1 << 33), ctx):
                    if isinstance(out, RawRecord) and not out.drop and out.text:
                        texts.append(out.text)
            except Exception:
                continue
    return texts


def sentences(texts: list[str], rng: random.Random, n: int) -> list[str]:
    pool = []
    for t in texts:
        for s in re.split(r"(?<=[.!?])\s+", " ".join(t.split())):
            if (
                60 <= len(s) <= 260
                and s[0].isupper()
                and s.endswith(".")
                and not re.search(r"[@\d]", s)
            ):
                pool.append(s)
    rng.shuffle(pool)
    return pool[:n]


def insert(sentence: str, value: str, rng: random.Random) -> tuple[str, int]:
    """The sentence with `value` at a word boundary (or before the final period); its offset."""
    if rng.random() < 0.3:
        text = f"{sentence[:-1]} {value}."
        return text, len(sentence)
    spaces = [m.start() for m in re.finditer(" ", sentence)]
    at = rng.choice(spaces)
    return f"{sentence[:at]} {value}{sentence[at:]}", at + 1


def chunks(texts: list[str], size: int, limit: int) -> list[str]:
    out, total = [], 0
    for t in texts:
        for i in range(0, len(t) - size, size):
            out.append(t[i : i + size])
            total += size
            if total >= limit:
                return out
    return out
