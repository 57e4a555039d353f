"""Wikitext to plain prose with mwparserfromhell: a pure function, no I/O.

Kept: paragraphs, headings (each on its own line), list items (one a line), the visible text of
wikilinks and external links, the inner text of formatting and most HTML tags, and the prose of a
few inline templates ({{lang}}, {{convert}}, {{nowrap}}, {{quote}}, ...). Dropped: every other
template (infoboxes, citations, navboxes), <ref>, tables, File/Image/Category and interlanguage
links, comments, magic words, math, and the trailing reference-like sections (References,
External links, See also, ...). Headings left with nothing under them are removed too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Node,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

HEADING = "\x00"  # marks heading lines until the final pass; NUL never occurs in XML text
DROP_TAGS = frozenset(
    "ref references table gallery math chem ce timeline score graph mapframe maplink imagemap "
    "hiero inputbox categorytree templatedata templatestyles indicator includeonly style script "
    "syntaxhighlight source section".split()
)
BLOCK_TAGS = frozenset("p div blockquote poem pre center li dt dd ul ol dl".split())
LIST_MARKUP = frozenset("*#;:")
DROP_LINK_NAMESPACES = frozenset({"file", "image", "media", "category"})
INTERLANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z]+)*")
SKIP_SECTIONS = frozenset(
    {
        "references",
        "external links",
        "see also",
        "further reading",
        "notes",
        "footnotes",
        "bibliography",
        "sources",
        "citations",
        "works cited",
        "notes and references",
        "references and notes",
        "general references",
        "explanatory notes",
    }
)
RANGE_WORDS = frozenset({"-", "–", "to", "and", "or", "by", "x", "×", "+"})
MAGIC_WORD = re.compile(r"__[A-Z]+__")
STRAY_QUOTES = re.compile(r"'{2,}")
EMPTY_PARENS = re.compile(r"\(\s*[,;:]?\s*\)")
PAREN_LEAD = re.compile(r"\(\s*[,;:]\s*")
SPACE_PUNCT = re.compile(r"[ \t]+([,.;:!?)])(?=\s|$)")
SPACES = re.compile(r"[ \t\u00a0]{2,}|\t")


def _positional(tpl: Template) -> list[Wikicode]:
    return [p.value for p in tpl.params if not p.showkey]


def _named(tpl: Template, name: str) -> Wikicode | None:
    return tpl.get(name).value if tpl.has(name) else None


def _nth(n: int) -> Callable[[Template], str]:
    def pick(tpl: Template) -> str:
        pos = _positional(tpl)
        return _render(pos[n]) if -len(pos) <= n < len(pos) else ""

    return pick


def _convert(tpl: Template) -> str:
    pos = [_render(p).strip() for p in _positional(tpl)]
    if len(pos) >= 4 and pos[1] in RANGE_WORDS:
        return f"{pos[0]} {pos[1]} {pos[2]} {pos[3]}"
    return " ".join(pos[:2])


def _frac(tpl: Template) -> str:
    pos = [_render(p).strip() for p in _positional(tpl)]
    if len(pos) >= 3:
        return f"{pos[0]} {pos[1]}/{pos[2]}"
    return "/".join(pos) if len(pos) == 2 else (f"1/{pos[0]}" if pos else "")


def _quote(tpl: Template) -> str:
    text = _named(tpl, "text") or _named(tpl, "quote")
    body = _render(text) if text is not None else _nth(0)(tpl)
    return f"\n{body}\n"


# Inline templates whose output is prose; every other template is dropped.
TEMPLATES: dict[str, Callable[[Template], str]] = {
    "lang": _nth(1),
    "nowrap": _nth(0),
    "nobr": _nth(0),
    "small": _nth(0),
    "smaller": _nth(0),
    "big": _nth(0),
    "em": _nth(0),
    "strong": _nth(0),
    "sic": _nth(-1),
    "not a typo": _nth(0),
    "ill": _nth(0),
    "interlanguage link": _nth(0),
    "nihongo": _nth(0),
    "transl": _nth(-1),
    "abbr": _nth(0),
    "convert": _convert,
    "cvt": _convert,
    "frac": _frac,
    "quote": _quote,
    "cquote": _quote,
    "blockquote": _quote,
    "quotation": _quote,
    "'": lambda _: "'",
    "'s": lambda _: "'s",
    "ndash": lambda _: "–",
    "mdash": lambda _: "—",
    "snd": lambda _: " – ",
    "spaced ndash": lambda _: " – ",
    "nbsp": lambda _: " ",
}


def _template(tpl: Template) -> str:
    name = str(tpl.name).strip().replace("_", " ")
    key = name[:1].lower() + name[1:]
    fn = TEMPLATES.get(key) or TEMPLATES.get(key.lower())
    if fn is None and key.lower().startswith("lang-"):
        fn = _nth(0)
    return fn(tpl) if fn else ""


def _wikilink(link: Wikilink) -> str:
    title = str(link.title).strip()
    if title.startswith(":"):
        title = title[1:].strip()
    elif ":" in title:
        prefix = title.split(":", 1)[0].strip().lower()
        if prefix in DROP_LINK_NAMESPACES:
            return ""
        if link.text is None and INTERLANGUAGE.fullmatch(prefix):
            return ""
    if link.text is not None:
        label = _render(link.text)
        if label.strip():
            return label
        # pipe trick: [[Paris (France)|]] shows "Paris"
        title = re.sub(r"\s*\([^)]*\)$", "", title.split(":", 1)[-1])
    return title.replace("_", " ")


def _tag(tag: Tag) -> str:
    name = str(tag.tag).strip().lower()
    if name in DROP_TAGS:
        return ""
    if tag.wiki_markup in LIST_MARKUP:
        return ""  # the item's text follows the marker on the same line
    if name in ("br", "hr"):
        return "\n"
    if tag.self_closing or tag.contents is None:
        return ""
    if name == "nowiki":
        return str(tag.contents)
    inner = _render(tag.contents)
    return f"\n{inner}\n" if name in BLOCK_TAGS else inner


def _node(node: Node) -> str:
    if isinstance(node, Text):
        return node.value
    if isinstance(node, Wikilink):
        return _wikilink(node)
    if isinstance(node, Tag):
        return _tag(node)
    if isinstance(node, Template):
        return _template(node)
    if isinstance(node, ExternalLink):
        if not node.brackets:
            return str(node.url)
        return _render(node.title) if node.title is not None else ""
    if isinstance(node, HTMLEntity):
        return node.normalize()
    if isinstance(node, Heading):
        title = " ".join(_render(node.title).split())
        return f"\n{HEADING}{node.level}{title}\n"
    if isinstance(node, Argument):
        return _render(node.default) if node.default is not None else ""
    if isinstance(node, Comment):
        return ""
    return ""


def _render(code: Wikicode | None) -> str:
    if code is None:
        return ""
    return "".join(_node(n) for n in code.nodes)


def _render_top(code: Wikicode) -> str:
    """Top level: like _render, but skips reference-like sections up to the next peer heading."""
    out: list[str] = []
    skip_level = 0
    for node in code.nodes:
        if isinstance(node, Heading):
            if skip_level and node.level > skip_level:
                continue
            skip_level = 0
            title = _render(node.title).strip().lower()
            if title in SKIP_SECTIONS:
                skip_level = node.level
                continue
        elif skip_level:
            continue
        out.append(_node(node))
    return "".join(out)


def _clean_line(line: str) -> str:
    line = MAGIC_WORD.sub("", line)
    line = STRAY_QUOTES.sub("", line)
    line = EMPTY_PARENS.sub("", line)
    line = PAREN_LEAD.sub("(", line)
    line = SPACES.sub(" ", line)
    line = SPACE_PUNCT.sub(r"\1", line)
    return line.strip()


def _drop_empty_headings(lines: list[str]) -> list[str]:
    """Remove headings with no prose before the next heading of the same or a higher level."""
    keep: list[str] = []
    pending: list[tuple[int, str]] = []  # open headings, outermost first
    for line in lines:
        if line.startswith(HEADING):
            level, title = int(line[1]), _clean_line(line[2:])
            while pending and pending[-1][0] >= level:
                pending.pop()
            if title:
                pending.append((level, title))
            continue
        if line and pending:
            for _, title in pending:
                keep.extend(("", title))
            keep.append("")
            pending = []
        keep.append(line)
    return keep


def wikitext_to_text(wikitext: str) -> str:
    """Plain text of a page's wikitext: prose lines, headings as lines, one blank line between blocks."""
    code = mwparserfromhell.parse(wikitext.replace(HEADING, ""))
    rendered = _render_top(code).split("\n")
    lines = [line if line.startswith(HEADING) else _clean_line(line) for line in rendered]
    lines = _drop_empty_headings(lines)
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
