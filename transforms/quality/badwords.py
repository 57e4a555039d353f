"""C4's bad-words document rule: the LDNOOBW word lists, per language, as one regex each.

The lists ship in `badwords/` (one file per language code, CC BY 4.0: see badwords/LICENSE and
badwords/README.md); `BadWordsParams.words_dir` points at a folder of lists of the same shape
instead. A list is read and compiled once per process, on first use (lru_cache): a Beam worker
pays it once, not per document, and nothing is pickled into the graph.

Matching is the C4 reference code's (TFDS c4_utils, as datatrove's C4BadWordsFilter keeps it):
the lowercased text is searched for any entry flanked by a non-word character or the text's
edge; for Japanese, Thai and Chinese, which do not separate words, anywhere.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.transforms.quality.params import BadWordsParams

Verdict = tuple[str, str] | None
UNSEPARATED = ("ja", "th", "zh")  # scripts written without spaces between words
_TOKEN = re.compile(r"\w+")


def primary(lang: str) -> str:
    """The primary language subtag: "en" of "en-US", "" of ""."""
    return lang.replace("_", "-").split("-")[0].lower()


def _read_list(lang: str, words_dir: str | None) -> list[str] | None:
    """The entries of one language's list, or None when there is no list for it."""
    if not re.fullmatch(r"[a-z]{2,3}", lang):
        return None
    if words_dir is None:
        shipped = resources.files("gristmill.transforms.quality").joinpath("badwords", lang)
        if not shipped.is_file():
            return None
        text = shipped.read_text(encoding="utf-8")
    else:
        path = posixpath.join(words_dir, lang)
        if not FileSystems.exists(path):
            return None
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            text = fh.read().decode("utf-8")
    return sorted({line.strip().lower() for line in text.splitlines() if line.strip()})


class WordList(NamedTuple):
    """One language's list, split for speed: `words` are single word-character runs, found as
    whole `\\w+` tokens of the text (the same as the flanked regex); `phrases` hold the other
    entries with their regex and their first word-character run ("" if they start with another
    character), tried only when that run is a token of the text."""

    words: frozenset[str]
    phrases: tuple[tuple[str, str, re.Pattern[str]], ...]


@lru_cache(maxsize=64)
def word_list(lang: str, words_dir: str | None = None) -> WordList | None:
    """A language's list (primary subtag), read once per process; None: there is no list."""
    entries = _read_list(lang, words_dir)
    if not entries:
        return None
    if lang in UNSEPARATED:
        return WordList(frozenset(), tuple(("", e, re.compile(re.escape(e))) for e in entries))
    words = frozenset(e for e in entries if _TOKEN.fullmatch(e))
    phrases = []
    for entry in entries:
        if entry not in words:
            head = _TOKEN.match(entry)
            regex = re.compile(rf"(?:\W|^){re.escape(entry)}(?=\W|$)")
            phrases.append((head.group() if head else "", entry, regex))
    return WordList(words, tuple(phrases))


def count_matches(low: str, wl: WordList) -> int:
    """Occurrences of the list's entries in a lowercased text."""
    tokens = _TOKEN.findall(low) if wl.words or any(head for head, _, _ in wl.phrases) else []
    found = sum(map(wl.words.__contains__, tokens))
    present = set(tokens)
    for head, entry, regex in wl.phrases:
        if (not head or head in present) and entry in low:
            found += sum(1 for _ in regex.finditer(low))
    return found


def bad_words(text: str, lang: str, p: BadWordsParams) -> tuple[Verdict, bool]:
    """(verdict, whether a list applied): more than `max_bad_words` matches drop the page.

    The detail gives the count of matches and the list's language, never a matched word.
    Without a list for the language the rule does not apply.
    """
    if p.max_bad_words is None:
        return None, False
    code = primary(lang) or primary(p.default_lang)
    wl = word_list(code, p.words_dir)
    if wl is None:
        return None, False
    found = count_matches(text.lower(), wl)
    if found > p.max_bad_words:
        return ("bad_words", f"{found} > {p.max_bad_words} ({code})"), True
    return None, True
