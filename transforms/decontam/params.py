"""The `decontam` section: the evaluation sets to keep out of the corpus, and what to do on a hit."""

from __future__ import annotations

from dataclasses import dataclass

from gristmill.transforms.params import option

FORMATS = ("auto", "jsonl", "text", "lines")
MODES = ("drop", "cut")
MAX_SETS = 64  # a set is one bit of the index's mask


@dataclass(frozen=True)
class EvalSet:
    """One evaluation set: its name (in drop details and counters) and its files."""

    name: str = option("", "named in drop details and counters")
    paths: tuple[str, ...] = option((), "files, folders or globs, local or any Beam filesystem URL")
    format: str = option(
        "auto",
        "jsonl | text (a file is one passage) | lines (a line is one passage) | auto: jsonl "
        "when the file starts with '{'",
        choices=FORMATS,
    )
    fields: tuple[str, ...] = option(
        ("text",), "jsonl: fields holding passages (dotted for nested; a list is several)"
    )


@dataclass(frozen=True)
class DecontamParams:
    """Documents that share a word n-gram with an evaluation set (GPT-3, Brown et al. 2020,
    appendix C: 13-grams, lowercased, punctuation removed, split at whitespace) are dropped, or
    lose the overlapping spans. Cutting follows GPT-3: the overlap and `cut_margin_chars` on each
    side go, pieces shorter than `min_piece_chars` go, and a document left in more than
    `max_pieces` pieces is dropped."""

    enabled: bool = option(False, "run the stage")
    sets: tuple[EvalSet, ...] = option((), "the evaluation sets: [{name, paths, format, fields}]")
    ngram: int = option(13, "words per n-gram (GPT-3: 13)", min=3, max=64)
    mode: str = option("drop", "drop: the document leaves | cut: the overlaps go", choices=MODES)
    cut_margin_chars: int = option(200, "cut: characters removed on each side of an overlap", min=0)
    min_piece_chars: int = option(200, "cut: shorter pieces left over are removed too", min=0)
    max_pieces: int = option(10, "cut: a document split into more pieces is dropped", min=1)

    def check(self) -> None:
        if self.enabled and not self.sets:
            raise ValueError("sets: name at least one evaluation set, or disable the stage")
        if len(self.sets) > MAX_SETS:
            raise ValueError(f"sets: at most {MAX_SETS}, got {len(self.sets)}")
        names = set()
        for i, s in enumerate(self.sets):
            if not s.name.strip():
                raise ValueError(f"sets[{i}].name: must not be empty")
            if s.name in names:
                raise ValueError(f"sets[{i}].name: {s.name!r} is named twice")
            names.add(s.name)
            if not s.paths:
                raise ValueError(f"sets[{i}].paths: name at least one file")
            if not s.fields:
                raise ValueError(f"sets[{i}].fields: name at least one field")
