"""Source readers by kind: the one list of kinds, each with its reader and its options.

A reader turns one opened input file into records; its options are a frozen dataclass, read
from the source's `options:` mapping in the job file (transforms/params.py).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gristmill.transforms.params import option

if TYPE_CHECKING:
    from gristmill.transforms.sources.reader_api import Reader


@dataclass(frozen=True)
class BooksOptions:
    strip_gutenberg: bool = option(True, "remove Project Gutenberg's header and licence")


@dataclass(frozen=True)
class ArticlesOptions:
    format: str = option(
        "auto", "auto sniffs JSON lines or Parquet", choices=("auto", "jsonl", "parquet")
    )
    text_field: str = option("text", "the field that holds the text")
    id_field: str = option("id", "the field that holds the record's own id")


@dataclass(frozen=True)
class NoOptions:
    pass


@dataclass(frozen=True)
class WebOptions:
    extractor: str = option(
        "trafilatura", "HTML to main text", choices=("trafilatura", "resiliparse")
    )


@dataclass(frozen=True)
class SourceKind:
    reader: str  # module:function
    options: type
    reads: str  # for --help and the README


KINDS: dict[str, SourceKind] = {
    "books": SourceKind(
        "gristmill.transforms.sources.books:read_book", BooksOptions, "plain-text books"
    ),
    "articles": SourceKind(
        "gristmill.transforms.sources.articles:read_articles",
        ArticlesOptions,
        "JSON lines or Parquet, a record each",
    ),
    "wiki": SourceKind(
        "gristmill.transforms.sources.wiki:read_wiki", NoOptions, "MediaWiki XML exports"
    ),
    "web": SourceKind(
        "gristmill.transforms.sources.web:read_web", WebOptions, "WARC, WET and loose HTML"
    ),
    "mail": SourceKind(
        "gristmill.transforms.sources.mail:read_mail", NoOptions, "RFC 822 messages or mbox"
    ),
}


def reader_for(kind: str) -> Reader:
    module, name = KINDS[kind].reader.split(":")
    return getattr(importlib.import_module(module), name)
