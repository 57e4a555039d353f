"""FineWeb's quality rules (Penedo et al. 2024), without Beam: pure functions of the text.

`fineweb_stats` measures a text once; `fineweb` turns the measures into the first failing
rule, as (reason, measured value against its threshold), like the Gopher and C4 rules. The
definitions follow datatrove's FineWebQualityFilter exactly, so decisions match it:

- lines are the text split at LF, blank ones (only whitespace) left out, never stripped;
- a line ends in punctuation when its last character is a sentence terminal (Unicode's
  Sentence_Terminal property: `.`, `!`, `?`, `。` and 155 more; not `…`, not a closing quote);
- duplicated-line characters are the lengths of the repeats of an earlier line, over the
  characters of the text other than LF;
- the list ratio is LF count over words. datatrove counts words with spaCy's English tokenizer;
  here, without a model, a whitespace token is one word, plus one per punctuation mark split
  off its start or end, two per hyphen or slash inside a word ("well-known": 3) and one for an
  English contraction ("don't": 2), as spaCy splits them; URLs and e-mail addresses stay whole
  like in spaCy. Whitespace tokens bound it from below, so it is only counted when that bound
  does not already settle the rule.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from gristmill.transforms.quality.params import FineWebParams

Verdict = tuple[str, str] | None

# Unicode's Sentence_Terminal characters: datatrove's TERMINAL_PUNCTUATION, in code point order.
SENTENCE_TERMINALS = tuple(
    "!.?\u0589\u061d\u061e\u061f\u06d4\u0700\u0701\u0702\u07f9\u0837\u0839\u083d\u083e\u0964"
    "\u0965\u104a\u104b\u1362\u1367\u1368\u166e\u1735\u1736\u17d4\u17d5\u17d6\u17d9\u17da\u1803"
    "\u1809\u1944\u1945\u1aa8\u1aa9\u1aaa\u1aab\u1b5a\u1b5b\u1b5e\u1b5f\u1b7d\u1b7e\u1c3b\u1c3c"
    "\u1c7e\u1c7f\u203c\u203d\u2047\u2048\u2049\u2e2e\u2e3c\u2e53\u2e54\u3002\ua4ff\ua60e\ua60f"
    "\ua6f3\ua6f7\ua876\ua877\ua8ce\ua8cf\ua92f\ua9c8\ua9c9\uaa5d\uaa5e\uaa5f\uaaf0\uaaf1\uabeb"
    "\ufe52\ufe56\ufe57\uff01\uff0e\uff1f\uff61\U00010a56\U00010a57\U00010f55\U00010f56"
    "\U00010f57\U00010f58\U00010f59\U00010f86\U00010f87\U00010f88\U00010f89\U00011047\U00011048"
    "\U000110be\U000110bf\U000110c0\U000110c1\U00011141\U00011142\U00011143\U000111c5\U000111c6"
    "\U000111cd\U000111de\U000111df\U00011238\U00011239\U0001123b\U0001123c\U000112a9\U0001144b"
    "\U0001144c\U000115c2\U000115c3\U000115c9\U000115ca\U000115cb\U000115cc\U000115cd\U000115ce"
    "\U000115cf\U000115d0\U000115d1\U000115d2\U000115d3\U000115d4\U000115d5\U000115d6\U000115d7"
    "\U00011641\U00011642\U0001173c\U0001173d\U0001173e\U00011944\U00011946\U00011a42\U00011a43"
    "\U00011a9b\U00011a9c\U00011c41\U00011c42\U00011ef7\U00011ef8\U00011f43\U00011f44\U00016a6e"
    "\U00016a6f\U00016af5\U00016b37\U00016b38\U00016b44\U00016e98\U0001bc9f\U0001da88"
)
_EDGES = re.compile(r"([^\w\s]*)(.*?)([^\w\s]*)", re.DOTALL)
_INFIX = re.compile(r"(?<=[^\W_])[-/](?=[^\W_])")
_CONTRACTION = re.compile(r"(?:n['’]t|['’](?:s|re|ll|ve|d|m))$", re.IGNORECASE)
_WHOLE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://\S+|www\.\S+|[^@\s]+@[^@\s]+\.\w+)$", re.IGNORECASE)


class FineWebStats(NamedTuple):
    lines: int  # non-blank lines
    punct_lines: int  # of them, ending in a sentence terminal
    short_lines: int  # of them, at most `short_line_chars` long
    dup_line_chars: int  # characters of the repeats of an earlier line
    chars: int  # characters of the text other than LF
    newlines: int  # LF in the text


def fineweb_stats(text: str, short_line_chars: int = 30) -> FineWebStats:
    """The line measures of the FineWeb rules, in one pass over the lines."""
    seen: set[str] = set()
    lines = punct = short = dup = 0
    for line in text.split("\n"):
        if not line or line.isspace():
            continue
        lines += 1
        punct += line.endswith(SENTENCE_TERMINALS)
        short += len(line) <= short_line_chars
        if line in seen:
            dup += len(line)
        else:
            seen.add(line)
    newlines = text.count("\n")
    return FineWebStats(lines, punct, short, dup, len(text) - newlines, newlines)


def word_count(text: str) -> int:
    """Words as spaCy's English tokenizer roughly counts them (see the module's docstring)."""
    n = 0
    for token in text.split():
        lead, core, trail = _EDGES.fullmatch(token).groups()
        n += len(lead) + len(trail)
        if core and _WHOLE.match(core):
            n += 1
        elif core:
            n += 1 + 2 * len(_INFIX.findall(core)) + bool(_CONTRACTION.search(core))
    return n


def fineweb(text: str, p: FineWebParams) -> Verdict:
    """The first failing FineWeb rule, in datatrove's order, or None."""
    s = fineweb_stats(text, p.short_line_chars)
    if not s.lines:
        return "fineweb_empty", "no non-blank line"
    frac = s.punct_lines / s.lines
    limit = p.min_line_punct_frac
    if limit is not None and frac < limit and not (frac == 0 and p.line_punct_exclude_zero):
        return "fineweb_line_punct", f"{frac:.4f} < {limit:g}"
    frac, limit = s.short_lines / s.lines, p.max_short_line_frac
    if limit is not None and frac > limit:
        return "fineweb_short_lines", f"{frac:.4f} > {limit:g}"
    frac, limit = (s.dup_line_chars / s.chars if s.chars else 0.0), p.max_dup_line_char_frac
    if limit is not None and frac > limit:
        return "fineweb_dup_line_chars", f"{frac:.4f} > {limit:g}"
    return _list_ratio(text, s.newlines, p.max_newline_word_ratio)


def _list_ratio(text: str, newlines: int, limit: float | None) -> Verdict:
    """LF per word; whitespace tokens are at most the words, so most texts pass uncounted."""
    if limit is None or newlines <= limit * len(text.split()):
        return None
    words = word_count(text)
    ratio = newlines / words if words else float("inf")
    return ("fineweb_list_ratio", f"{ratio:.4f} > {limit:g}") if ratio > limit else None
