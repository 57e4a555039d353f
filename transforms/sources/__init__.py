"""Source readers by kind. A reader turns one opened input file into records."""

from __future__ import annotations

import importlib

from gristmill.transforms.sources.records import Reader

KINDS: dict[str, str] = {
    "books": "gristmill.transforms.sources.books:read_book",
    "articles": "gristmill.transforms.sources.articles:read_articles",
    "wiki": "gristmill.transforms.sources.wiki:read_wiki",
    "web": "gristmill.transforms.sources.web:read_web",
    "mail": "gristmill.transforms.sources.mail:read_mail",
}


def reader_for(kind: str) -> Reader:
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)
