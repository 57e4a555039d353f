"""Generated personal values for bench/pii_recall.py: every card scheme (2-series Mastercards
among them), NANP numbers with any area code in each common format, international numbers,
SSNs, IBANs, IPs and e-mail addresses. Made up from a seeded generator: none is a real person's.
"""

from __future__ import annotations

import random
import re

from bench.pii_data import _email, _iban_code, _ip, luhn_complete, phone

# scheme -> (prefixes drawn from, lengths)
CARD_SCHEMES: dict[str, tuple[list[str], tuple[int, ...]]] = {
    "Visa": (["4"], (13, 16, 16, 16, 19)),
    "Mastercard 51-55": (["51", "52", "53", "54", "55"], (16,)),
    "Mastercard 2-series": ([str(n) for n in range(2221, 2721)], (16,)),
    "American Express": (["34", "37"], (15,)),
    "Discover": (["6011", "644", "645", "649", "65"], (16,)),
    "JCB": ([str(n) for n in range(3528, 3590)], (16,)),
    "Diners Club": (["36", "300", "305", "38"], (14, 16)),
    "UnionPay": (["62", "81"], (16, 19)),
    "Maestro": (["5018", "6759", "6304"], (16,)),
    "Mir": (["2200", "2201", "2204"], (16,)),
}
NANP_FORMATS = (
    "{a}-{x}-{n}",
    "({a}) {x}-{n}",
    "+1 {a} {x} {n}",
    "{a}.{x}.{n}",
    "+1-{a}-{x}-{n}",
    "1-{a}-{x}-{n}",
    "({a}){x}-{n}",
    "{a} {x} {n}",
    "+1 ({a}) {x}-{n}",
)
TYPES = (
    "CREDIT_CARD",
    "PHONE_NUMBER (NANP)",
    "PHONE_NUMBER (intl)",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "EMAIL_ADDRESS",
)


def entity(kind: str) -> str:
    return kind.split(" ", 1)[0]


def card(rng: random.Random, i: int) -> str:
    """The i-th card cycles through the schemes, so every scheme has its share."""
    prefixes, lengths = list(CARD_SCHEMES.values())[i % len(CARD_SCHEMES)]
    number = luhn_complete(rng.choice(prefixes), rng.choice(lengths), rng)
    form = rng.randrange(3)
    if len(number) in (14, 15) and form:
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    groups = [number[k : k + 4] for k in range(0, len(number), 4)]
    return [number, " ".join(groups), "-".join(groups)][form]


def nanp(rng: random.Random, i: int) -> str:
    """Any area code and exchange of the NANP shape ([2-9]xx), in the i-th format."""
    a = f"{rng.randint(2, 9)}{rng.randint(0, 99):02d}"
    x = f"{rng.randint(2, 9)}{rng.randint(0, 99):02d}"
    n = f"{rng.randint(0, 9999):04d}"
    return NANP_FORMATS[i % len(NANP_FORMATS)].format(a=a, x=x, n=n)


def international(rng: random.Random) -> str:
    """A valid GB, DE, FR or IN number (by phonenumbers), international or national form."""
    while True:
        value = phone(rng)
        if not re.match(r"^(\+1|\(|\d{3}[-.])", value):
            return value


def ssn(rng: random.Random, i: int) -> tuple[str, str]:
    """(text to insert, the value inside it): dashed, spaced, or plain after "SSN"."""
    area = rng.choice([n for n in range(1, 900) if n != 666])
    digits = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    form = i % 3
    if form == 0:
        v = f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"
        return v, v
    if form == 1:
        v = f"{digits[:3]} {digits[3:5]} {digits[5:]}"
        return v, v
    return f"SSN {digits}", digits


def value(kind: str, rng: random.Random, i: int) -> tuple[str, str]:
    """(text to insert, the personal value inside it) of one type."""
    if kind == "CREDIT_CARD":
        v = card(rng, i)
    elif kind == "PHONE_NUMBER (NANP)":
        v = nanp(rng, i)
    elif kind == "PHONE_NUMBER (intl)":
        v = international(rng)
    elif kind == "US_SSN":
        return ssn(rng, i)
    elif kind == "IBAN_CODE":
        v = _iban_code(rng)
    elif kind == "IP_ADDRESS":
        v = _ip(rng)
    else:
        v = _email(rng)
    return v, v


def mail_pieces(mail: list[str], size: int = 700) -> list[str]:
    """Real mail cut at line ends into pieces of about `size` characters with some prose."""
    out = []
    for text in mail:
        piece = ""
        for line in text.splitlines(keepends=True):
            piece += line
            if len(piece) >= size:
                if piece.count(" ") >= 10:
                    out.append(piece)
                piece = ""
    return out


def insert_at_space(text: str, insert: str, rng: random.Random) -> tuple[str, int]:
    """`text` with ` insert ` put at a random space; the offset of `insert`."""
    spaces = [m.start() for m in re.finditer(r"(?<=[A-Za-z,.]) (?=[A-Za-z])", text)]
    at = rng.choice(spaces) if spaces else len(text)
    return f"{text[:at]} {insert}{text[at:]}", at + 1
