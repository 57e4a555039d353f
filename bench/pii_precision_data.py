"""The labelled sample of bench/pii_precision.py: real text whose personal data is all known.

Two sets, each labelled for the entity types it can tell apart:

- **numbers** (the pattern types): passages of about `PASSAGE_CHARS` characters of the State of
  the Union addresses and the Gutenberg books, with their own digits (years, amounts, chapter
  and verse numbers: where false findings come from), one generated value
  (bench/pii_recall_data.py) put into each. The base text holds no e-mail address, phone or
  card number, SSN, IBAN or IP address of its own (public speeches and books, Gutenberg
  boilerplate stripped), so every pattern finding off an inserted value is false. Names and
  places in these passages are real and unlabelled: NER findings here are not counted;
- **names** (PERSON, LOCATION): real sentences that hold no name or place of their own (no
  capitalised word but a first word that is a stop word, and "I"; no digit, no `@`), each with
  one made-up name in a frame ("X said that ...") or one real place ("... in X."). Every
  finding off the inserted value, of any type, is false.

Seeded: the same seed gives the same sample.
"""

from __future__ import annotations

import random
import re

from spacy.lang.en.stop_words import STOP_WORDS

from bench.pii_data import FIRST, FRAMES, LAST
from bench.pii_recall_data import TYPES, entity, insert_at_space, value

PASSAGE_CHARS = 1500
PLACES = [
    "Lagos", "Osaka", "Tbilisi", "Winnipeg", "Marseille", "Krakow", "Nairobi", "Hanoi",
    "Montevideo", "Bergen", "Adelaide", "Porto", "Dakar", "Quito", "Leeds", "Tampere",
    "Kenya", "Peru", "Norway", "Vietnam", "Portugal", "Ghana", "Chile", "Bavaria",
]  # fmt: skip
PLACE_FRAMES = (
    "{s} It was in {place}.",
    "In {place}, {s_lower}",
    "{s_cut} near {place}.",
    "{s} They went back to {place}.",
)
WORD_CHARS = "'\u2019,;:.!?\"()"


Case = tuple[str, str, str, int, int]  # (set, entity type, text, start, end) of one value


def passages(texts: list[str], rng: random.Random, n: int) -> list[str]:
    """`n` passages of about PASSAGE_CHARS characters, cut at spaces, from shuffled texts."""
    out = []
    for t in texts:
        flat = " ".join(t.split())
        at = 0
        while len(flat) - at > PASSAGE_CHARS:
            cut = flat.rfind(" ", at + PASSAGE_CHARS // 2, at + PASSAGE_CHARS)
            cut = cut if cut > at else at + PASSAGE_CHARS
            out.append(flat[at:cut])
            at = cut + 1
    rng.shuffle(out)
    return out[:n]


def clean(sentence: str) -> bool:
    """A sentence that holds no name or place: see the module's docstring."""
    words = sentence.split()
    if re.search(r"[@\d]", sentence) or not words:
        return False
    if words[0].strip(WORD_CHARS).lower() not in STOP_WORDS:
        return False
    rest = [w.strip(WORD_CHARS) for w in words[1:]]
    return not any(w[:1].isupper() and w.split("'")[0] != "I" for w in rest)


def clean_sentences(texts: list[str], rng: random.Random, n: int) -> list[str]:
    pool = []
    for t in texts:
        for s in re.split(r"(?<=[.!?])\s+", " ".join(t.split())):
            if 60 <= len(s) <= 260 and s.endswith(".") and clean(s):
                pool.append(s)
    rng.shuffle(pool)
    return pool[:n]


def number_cases(texts: list[str], per_type: int, rng: random.Random) -> list[Case]:
    """One generated value of each pattern kind in each of `per_type` passages per kind."""
    pool = passages(texts, rng, per_type * len(TYPES))
    cases = []
    for t, kind in enumerate(TYPES):
        for i in range(per_type):
            inserted, v = value(kind, rng, i)
            text, at = insert_at_space(pool[t * per_type + i], inserted, rng)
            start = at + inserted.index(v)
            cases.append(("numbers", entity(kind), text, start, start + len(v)))
    return cases


def _framed(frame: str, s: str, key: str, v: str) -> tuple[str, int]:
    text = frame.format(s=s, s_lower=s[0].lower() + s[1:], s_cut=s[:-1], **{key: v})
    return text, text.index(v)


def name_cases(texts: list[str], names: int, places: int, rng: random.Random) -> list[Case]:
    """A made-up name (PERSON) in each of `names` clean sentences, a place (LOCATION) in each
    of `places` more."""
    pool = clean_sentences(texts, rng, names + places)
    cases = []
    for s in pool[:names]:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        frame = rng.choice(FRAMES)
        body = s[0].lower() + s[1:] if frame.startswith("According") else s
        text, at = _framed(frame, body, "name", name)
        cases.append(("names", "PERSON", text, at, at + len(name)))
    for s in pool[names : names + places]:
        place = rng.choice(PLACES)
        text, at = _framed(rng.choice(PLACE_FRAMES), s, "place", place)
        cases.append(("names", "LOCATION", text, at, at + len(place)))
    return cases
