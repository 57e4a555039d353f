"""Wikitext to plain prose with mwparserfromhell: a pure function, no I/O.

Kept: paragraphs, headings and list items as lines, link labels, the text inside formatting and
HTML tags, and a few prose templates ({{lang}}, {{convert}}, {{quote}}, ...). Dropped: all other
templates, refs, tables, File/Image/Category/interlanguage links, comments, magic words, math, the
reference-like sections (References, See also, ...) and headings left empty. The parser builds a
Python object per node, slow on bulky markup, so a regex pre-pass first cuts what would be dropped
anyway and resolves plain links; whatever it cannot handle safely is left to the parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import mwparserfromhell
from mwparserfromhell import nodes as mw
from mwparserfromhell.wikicode import Wikicode

from gristmill.transforms.sources.budget import check
from gristmill.transforms.sources.wikitext_linear import (
    cut_elements,
    drop_unmatched,
    escape_open_braces,
    escape_open_links,
    verbatim_split,
)

HEADING = "\x00"  # marks heading lines until the final pass; NUL never occurs in XML text
LIST_ITEM = "\x01"  # marks list items, so an item emptied of templates leaves no blank line
SEP = "\x02"  # fences tag, template and entity output so '' runs do not join across them
VERBATIM = "\x03"  # fences the placeholder of a <nowiki> or <pre> element during the pre-pass
PLACEHOLDER = re.compile("\x03(\\d+)\x03")
DROP_TAGS = frozenset(
    {"ref", "references", "table", "gallery", "math", "chem", "ce", "timeline", "score", "graph"}
    | {"mapframe", "maplink", "imagemap", "hiero", "inputbox", "categorytree", "templatedata"}
    | {"templatestyles", "indicator", "includeonly", "style", "script", "syntaxhighlight"}
    | {"source", "section"}
)
BLOCK_TAGS = frozenset({"p", "div", "blockquote", "poem", "pre", "center", "li", "dt", "dd"})
LIST_MARKUP = frozenset("*#;:")
DROP_LINK_NAMESPACES = frozenset({"file", "image", "media", "category"})
INTERLANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z]+)*")
SKIP_SECTIONS = frozenset(
    {"references", "external links", "see also", "further reading", "notes", "footnotes"}
    | {"bibliography", "sources", "citations", "works cited", "notes and references"}
    | {"references and notes", "general references", "explanatory notes"}
)
RANGE_WORDS = frozenset({"-", "–", "to", "and", "or", "by", "x", "×", "+"})

# Pre-pass on the wikitext.
COMMENTS = re.compile(r"<!--.*?(?:-->|$)", re.S)
BRACES = re.compile(r"\{\{|\}\}")
TEMPLATE_NAME = re.compile(r"\{\{\s*([^{}|]*)")
TABLE_OPEN = re.compile(r"^[ \t:]*\{\|")
MAX_OPEN_TABLES = 16
TABLE_CLOSE = re.compile(r"^[ \t]*\|\}")
SIMPLE_LINK = re.compile(r"\[\[([^\[\]{}<>|\n]+)(?:\|([^\[\]{}<>|\n]*))?\]\]")
SIMPLE_EXTERNAL = re.compile(r"\[(?:https?:)?//[^\s\[\]<>]+(?:[ \t]+([^\[\]\n]*))?\]")
LIST_RUN = re.compile(r"^([*#:;])[*#:;]+", re.M)  # nesting depth shows nothing in plain text
QUOTE_RUN = re.compile(r"'{4,}")  # 4 or 6 quotes: bold/italic emptied by a cut template

# Clean-up of the rendered text.
STRAY_TAG = re.compile(  # a tag the parser left as text (unbalanced): drop it, keep the prose
    r"</?(?:div|span|small|big|sup|sub|center|font|p|br|hr|blockquote|poem|abbr|ref|references"
    r"|nowiki|onlyinclude|includeonly|noinclude|table|tr|td|th|gallery|u|s|b|i|em|strong)\b[^<>]*>",
    re.I,
)
MAGIC_WORD = re.compile(r"__[A-Z]+__")
QUOTES = re.compile(r"('{2,})")
EMPTY_PARENS = re.compile(r"\([ \t]*[,;:]?[ \t]*\)")
PAREN_LEAD = re.compile(r"\([ \t]*[,;:][ \t]*")
SPACES = re.compile(r" {2,}")
NBSP_RUN = re.compile(r"\u00a0{2,}")
SPACE_PUNCT = re.compile(r" ([,.;:!?)])(?=[ \n]|$)")


def _positional(tpl: mw.Template) -> list[Wikicode]:
    return [p.value for p in tpl.params if not p.showkey]


def _nth(n: int) -> Callable[[mw.Template], str]:
    def pick(tpl: mw.Template) -> str:
        pos = _positional(tpl)
        return _render(pos[n]) if -len(pos) <= n < len(pos) else ""

    return pick


def _convert(tpl: mw.Template) -> str:
    pos = [_render(p).strip() for p in _positional(tpl)]
    if len(pos) >= 4 and pos[1] in RANGE_WORDS:
        return f"{pos[0]} {pos[1]} {pos[2]} {pos[3]}"
    return " ".join(pos[:2])


def _quote(tpl: mw.Template) -> str:
    named = next((tpl.get(k).value for k in ("text", "quote") if tpl.has(k)), None)
    return f"\n{_render(named) if named is not None else _nth(0)(tpl)}\n"


# Inline templates whose output is prose; every other template is dropped.
TEMPLATES: dict[str, Callable[[mw.Template], str]] = {
    **dict.fromkeys(["nowrap", "nobr", "small", "smaller", "big", "em", "strong"], _nth(0)),
    **dict.fromkeys(["not a typo", "ill", "interlanguage link", "nihongo", "abbr"], _nth(0)),
    **dict.fromkeys(["sic", "transl"], _nth(-1)),
    **dict.fromkeys(["quote", "cquote", "blockquote", "quotation"], _quote),
    **dict.fromkeys(["convert", "cvt"], _convert),
    "lang": _nth(1),
    **{
        name: lambda _, text=text: text
        for name, text in [("'", "'"), ("'s", "'s"), ("nbsp", " "), ("ndash", "–"), ("mdash", "—")]
        + [("snd", " – "), ("spaced ndash", " – ")]
    },
}


def _template_fn(name: str) -> Callable[[mw.Template], str] | None:
    key = name.strip().replace("_", " ")
    fn = TEMPLATES.get(key[:1].lower() + key[1:]) or TEMPLATES.get(key.lower())
    if fn is None and key.lower().startswith("lang-"):
        fn = _nth(0)
    return fn


def _cut_templates(text: str) -> str:
    """Remove balanced top-level {{...}} that render to nothing; unbalanced braces stay."""
    out: list[str] = []
    depth, start, kept_to = 0, 0, 0
    for m in BRACES.finditer(text):
        if m.group() == "{{":
            if depth == 0:
                start = m.start()
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                name = TEMPLATE_NAME.match(text, start)
                if name is None or _template_fn(name.group(1)) is None:
                    out.append(text[kept_to:start])
                    kept_to = m.end()
    out.append(text[kept_to:])
    return "".join(out)


def _cut_tables(text: str) -> str:
    """Remove {| ... |} tables line by line (they nest); an unclosed table stays for the parser."""
    if "{|" not in text:
        return text
    out: list[str] = []
    held: list[str] = []  # lines of the open table, given back if it never closes
    depth = 0
    for line in text.split("\n"):
        if TABLE_OPEN.match(line):
            depth += 1
        elif depth and TABLE_CLOSE.match(line):
            depth -= 1
            if depth == 0:
                held = []
                continue
        (held if depth else out).append(line)
    # an unclosed table goes back to the parser (which may still close it), but past a few
    # `{|` lines not their openers: the parser rescans the rest of the page from each one
    if sum(1 for line in held if TABLE_OPEN.match(line)) > MAX_OPEN_TABLES:
        held = [line for line in held if not TABLE_OPEN.match(line)]
    return "\n".join(out + held)


def _link_text(title: str, label: str | None) -> str:
    """What a wikilink shows: its label, else its title; nothing for file, category, language."""
    title = title.strip()
    if title.startswith(":"):
        title = title[1:].strip()
    elif ":" in title:
        prefix = title.split(":", 1)[0].strip().lower()
        if prefix in DROP_LINK_NAMESPACES:
            return ""
        if label is None and INTERLANGUAGE.fullmatch(prefix):
            return ""
    if label is not None:
        if label.strip():
            return label
        title = re.sub(r"\s*\([^)]*\)$", "", title.split(":", 1)[-1])  # [[Paris (France)|]]
    return title.replace("_", " ")


def _quote_run(m: re.Match[str]) -> str:
    return "" if len(m.group()) in (4, 6) else m.group()


def _prestrip_part(text: str) -> str:
    text = drop_unmatched(cut_elements(text))
    text = LIST_RUN.sub(r"\1", escape_open_links(text))
    text = _cut_tables(escape_open_braces(_cut_templates(text)))
    text = SIMPLE_LINK.sub(lambda m: _link_text(m.group(1), m.group(2)), text)
    text = SIMPLE_EXTERNAL.sub(lambda m: m.group(1) or "", text)
    return QUOTE_RUN.sub(_quote_run, text) if "''''" in text else text


def prestrip(wikitext: str) -> str:
    """Cut comments, refs, math and the like, non-prose templates and tables; resolve plain links.

    The contents of <nowiki> and <pre> are left as they are, for the parser to keep verbatim:
    each stands in as a placeholder while the page around it is cut, so a template or tag that
    spans one is still seen whole.
    """
    for marker in (HEADING, LIST_ITEM, SEP, VERBATIM):
        wikitext = wikitext.replace(marker, "")
    text = COMMENTS.sub("", wikitext)
    if "<nowiki" not in text and "<pre" not in text:
        return _prestrip_part(text)
    parts = verbatim_split(text)  # odd items are the verbatim elements
    kept = parts[1::2]
    masked = "".join(
        p if i % 2 == 0 else f"{VERBATIM}{i // 2}{VERBATIM}" for i, p in enumerate(parts)
    )
    return PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], _prestrip_part(masked))


def _tag(tag: mw.Tag) -> str:
    name = str(tag.tag).strip().lower()
    if name in DROP_TAGS:
        return ""
    if tag.wiki_markup in LIST_MARKUP:
        return LIST_ITEM  # the item's text follows the marker on the same line
    if name in ("br", "hr"):
        return "\n"
    if tag.self_closing or tag.contents is None:
        return ""
    if name == "nowiki":
        return str(tag.contents)
    inner = _render(tag.contents)
    return f"\n{inner}\n" if name in BLOCK_TAGS else f"{SEP}{inner}{SEP}"


def _node(node: mw.Node) -> str:
    check()  # the record's time budget (budget.py)
    if isinstance(node, mw.Text):
        return STRAY_TAG.sub("", node.value) if "<" in node.value else node.value
    if isinstance(node, mw.Wikilink):
        return _link_text(str(node.title), None if node.text is None else _render(node.text))
    if isinstance(node, mw.Tag):
        return _tag(node)
    if isinstance(node, mw.Template):
        fn = _template_fn(str(node.name))
        return f"{SEP}{fn(node)}{SEP}" if fn else ""
    if isinstance(node, mw.ExternalLink):  # [url label] shows the label, [url] nothing
        return _render(node.title) if node.brackets else str(node.url)
    if isinstance(node, mw.HTMLEntity):
        return f"{SEP}{node.normalize()}{SEP}"
    if isinstance(node, mw.Heading):
        title = " ".join(_render(node.title).split())
        return f"\n{HEADING}{node.level}{title}\n"
    if isinstance(node, mw.Argument):
        return _render(node.default)
    return ""  # comments


def _render(code: Wikicode | None) -> str:
    return "".join(_node(n) for n in code.nodes) if code is not None else ""


def _quotes(line: str) -> str:
    """A line without its bold/italic quote runs, keeping the apostrophes MediaWiki shows (its
    doQuotes rule). The parser skips style tags: faster, and no stray '' swallows the page."""
    parts = QUOTES.split(line)
    italics = bolds = 0
    for i in range(1, len(parts), 2):
        n = len(parts[i])
        if n == 4 or n > 5:  # extra quotes before a bold or bold-italic run are apostrophes
            parts[i - 1] += "'" * (n - (3 if n == 4 else 5))
            n = 3 if n == 4 else 5
        parts[i] = "'" * n
        italics += n in (2, 5)
        bolds += n in (3, 5)
    if italics % 2 and bolds % 2:  # one bold run is really an apostrophe and an italic run
        single = multi = space = 0
        for i in range(1, len(parts), 2):
            if len(parts[i]) != 3:
                continue
            before = parts[i - 1][-2:].rjust(2)
            if before[1] == " ":
                space = space or i
            elif before[0] == " ":
                single = i
                break
            else:
                multi = multi or i
        if pick := single or multi or space:
            parts[pick - 1] += "'"
    return "".join(parts[0::2])


def _clean(text: str) -> str:
    if "''" in text:
        text = "\n".join(_quotes(line) if "''" in line else line for line in text.split("\n"))
    text = MAGIC_WORD.sub("", text).replace(SEP, "").replace("\t", " ")
    text = text.replace("\u00a0 ", " ").replace(" \u00a0", " ")
    if "\u00a0\u00a0" in text:
        text = NBSP_RUN.sub(" ", text)
    text = PAREN_LEAD.sub("(", EMPTY_PARENS.sub("", text))
    return SPACE_PUNCT.sub(r"\1", SPACES.sub(" ", text))


def _sections(lines: list[str]) -> list[str]:
    """Skip reference-like sections; drop headings with no prose before the next peer heading."""
    keep: list[str] = []
    pending: list[tuple[int, str]] = []  # open headings with no prose yet, outermost first
    skip_level = 0
    for line in lines:
        if line.startswith(HEADING):
            level, title = int(line[1]), line[2:].strip()
            if skip_level and level > skip_level:
                continue
            skip_level = level if title.lower() in SKIP_SECTIONS else 0
            while pending and pending[-1][0] >= level:
                pending.pop()
            if title and not skip_level:
                pending.append((level, title))
        elif not skip_level:
            if line and pending:
                for _, title in pending:
                    keep.extend(("", title, ""))
                pending = []
            keep.append(line)
    return keep


def wikitext_to_text(wikitext: str) -> str:
    """Plain text of a page's wikitext: prose lines, headings as lines, one blank line between blocks."""
    code = mwparserfromhell.parse(prestrip(wikitext), skip_style_tags=True)
    rendered = _clean(_render(code))
    lines: list[str] = []
    for line in rendered.split("\n"):
        if line.startswith(HEADING):
            lines.append(line)
            continue
        item = LIST_ITEM in line
        line = SPACES.sub(" ", line.replace(LIST_ITEM, "")).strip() if item else line.strip()
        if line or not item:  # an emptied list item leaves no gap in its list
            lines.append(line)
    out: list[str] = []
    for line in _sections(lines):
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()
