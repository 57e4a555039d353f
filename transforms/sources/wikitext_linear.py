"""The wikitext pre-pass steps that keep the parser linear: each is one pass over the text.

mwparserfromhell's tokenizer (C) rescans the rest of the page from every construct left open:
an unclosed tag, `{{`, `{|` or `[http://...`. Measured before these steps: 50 KB of `<ref>`
7.6 s, 156 KB of `<includeonly>` 55 s, 48 KB of `{|` lines 12.7 s, 56 KB of open external
links 6.7 s. Each step closes that door without changing what a well-formed page renders to:
a construct nothing closes is dropped (tags) or turned into the same characters as entities.
"""

from __future__ import annotations

import re

from gristmill.transforms.sources.budget import check

BRACES = re.compile(r"\{\{|\}\}")
LINK_BRACKETS = re.compile(r"\[\[|\]\]")
# Opening tags of elements cut whole; `[^<>]` so that no scan runs past the next tag.
DROPPED_OPEN = re.compile(
    r"<(ref|math|chem|ce|score|timeline|graph|syntaxhighlight|source|gallery)\b[^<>]*?(/?)>",
    re.I,
)
# An opening tag no closing tag matches is dropped before the parser, which otherwise retries
# the rest of the page from each of them (quadratic: 10,000 <div> took 4 s, <includeonly> 55 s).
PAIRED_TAG = re.compile(r"<(/?)([a-z][a-z0-9]*)\b[^<>]*?(/?)>", re.I)
VOID_TAGS = frozenset({"br", "hr", "img", "wbr", "meta", "link", "input", "col", "area", "base"})
VERBATIM_OPEN = re.compile(r"<(nowiki|pre)\b[^<>]*?(?<!/)>", re.I)
BRACKETS = re.compile(r"[\[\]\n]")
URL_START = re.compile(r"(?:https?:)?//")


def cut_elements(text: str) -> str:
    """Cut <ref>...</ref>, <math/> and the like, in one pass: once a tag name has no closing
    tag left, its later opening tags are not searched again (the regex this replaces rescanned
    to the end for each unclosed <ref>: 50 KB of them took 2.6 s)."""
    out: list[str] = []
    pos = 0
    unclosed: set[str] = set()
    while m := DROPPED_OPEN.search(text, pos):
        name = m.group(1).lower()
        end = m.end()
        if not m.group(2):  # not self-closing: up to the first closing tag
            close = None if name in unclosed else _closing(name).search(text, end)
            if close is None:
                unclosed.add(name)
                out.append(text[pos:end])
                pos = end
                continue
            end = close.end()
        out.append(text[pos : m.start()])
        pos = end
        check()
    out.append(text[pos:])
    return "".join(out)


_CLOSING: dict[str, re.Pattern[str]] = {}


def _closing(name: str) -> re.Pattern[str]:
    if name not in _CLOSING:
        _CLOSING[name] = re.compile(rf"</{name}\s*>", re.I)
    return _CLOSING[name]


def drop_unmatched(text: str) -> str:
    """Drop opening tags of PAIRED_TAG names that no closing tag matches (see PAIRED_TAG)."""
    if "<" not in text:
        return text
    open_at: dict[str, list[tuple[int, int]]] = {}
    for m in PAIRED_TAG.finditer(text):
        name = m.group(2).lower()
        if m.group(3) or name in VOID_TAGS:
            continue  # self-closing
        stack = open_at.setdefault(name, [])
        if not m.group(1):
            stack.append(m.span())
        elif stack:
            stack.pop()
    unmatched = sorted(span for spans in open_at.values() for span in spans)
    if not unmatched:
        return text
    out: list[str] = []
    pos = 0
    for start, end in unmatched:
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def escape_open_links(text: str) -> str:
    """`[` + URL with no `]` before the next `[` or the end of the line becomes `&#91;` (the
    same bracket, as an entity): the parser would otherwise rescan the rest of the line from
    each one (quadratic: 4,000 of them took 7 s)."""
    if "//" not in text:
        return text
    closed_by_next = False  # scanning backwards: is the next bracket after here a `]`?
    unclosed: list[int] = []
    for m in reversed(list(BRACKETS.finditer(text))):
        ch = m.group()
        if ch == "[":
            if not closed_by_next and URL_START.match(text, m.end()):
                unclosed.append(m.start())
            closed_by_next = False
        else:
            closed_by_next = ch == "]"
    if not unclosed:
        return text
    out: list[str] = []
    pos = 0
    for at in reversed(unclosed):
        out += [text[pos:at], "&#91;"]
        pos = at + 1
    out.append(text[pos:])
    return "".join(out)


def escape_open_braces(text: str) -> str:
    """`{{` that no `}}` closes becomes `&#123;&#123;`, and `[[` that no `]]` closes
    `&#91;&#91;` (the same characters, as entities): the parser rescans from each one
    (quadratic: 20,000 `{{` mixed with `|}` took 4.5 s)."""
    text = _escape_unpaired(text, BRACES, "{{", "&#123;&#123;")
    return _escape_unpaired(text, LINK_BRACKETS, "[[", "&#91;&#91;")


def _escape_unpaired(text: str, tokens: re.Pattern[str], opener: str, entity: str) -> str:
    if opener not in text:
        return text
    opens: list[int] = []
    for m in tokens.finditer(text):
        if m.group() == opener:
            opens.append(m.start())
        elif opens:
            opens.pop()
    if not opens:
        return text
    out: list[str] = []
    pos = 0
    for at in opens:
        out += [text[pos:at], entity]
        pos = at + 2
    out.append(text[pos:])
    return "".join(out)


def verbatim_split(text: str) -> list[str]:
    """[text, verbatim, text, ...]: each <nowiki>/<pre> element up to its first closing tag, in
    one pass (an unclosed one is text, and its name is not searched for again)."""
    parts: list[str] = []
    pos = start = 0
    unclosed: set[str] = set()
    while m := VERBATIM_OPEN.search(text, pos):
        name = m.group(1).lower()
        close = None if name in unclosed else _closing(name).search(text, m.end())
        if close is None:
            unclosed.add(name)
            pos = m.end()
            continue
        parts += [text[start : m.start()], text[m.start() : close.end()]]
        pos = start = close.end()
    parts.append(text[start:])
    return parts
