"""The real text the dedup bench runs on: corpus records cut into documents, edited copies."""

from __future__ import annotations

import random
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
SETS = [  # (source name, reader kind, glob under the corpus)
    ("books", "books", "books/pg*.txt"),
    ("books", "books", "books/shakespeare/*.txt"),
    ("sotu", "articles", "articles/sotu.jsonl"),
    ("wiki", "wiki", "articles/enwiki-sample.xml.bz2"),
]
MOBY = ("pg2701-moby-dick.txt", "pg2701-moby-dick-1991-edition.txt")


def read_texts(corpus: Path) -> list[tuple[str, str, str]]:
    """(source, file name, text) of every record of the sets, through gristmill's readers."""
    from gristmill.pipelines.config import SOURCE_OPTIONS
    from gristmill.transforms.sources import reader_for
    from gristmill.transforms.sources.read import match_inputs
    from gristmill.transforms.sources.reader_api import RawRecord, ReadContext
    from gristmill.transforms.sources.streams import InputFile

    out = []
    for source, kind, pattern in SETS:
        options = {k: default for k, (_, _, default) in SOURCE_OPTIONS[kind].items()}
        for f in match_inputs([str(corpus / pattern)]):
            ctx = ReadContext(source, f.path, f.relpath, options, 256 << 20, "replace")
            stream = InputFile(f.path, 8 << 30)
            for rec in reader_for(kind)(stream, ctx):
                if isinstance(rec, RawRecord) and not rec.drop and rec.text:
                    out.append((source, Path(f.path).name, rec.text))
            stream.finish()
    return out


def chop(text: str, rng: random.Random, lo: int = 2000, hi: int = 5000) -> list[str]:
    """Pieces of lo..hi characters, cut at whitespace."""
    pieces, start = [], 0
    while len(text) - start > lo:
        end = text.find(" ", start + rng.randint(lo, hi))
        if end < 0:
            break
        pieces.append(text[start:end].strip())
        start = end + 1
    return pieces


_TRANSLATE: dict[int, str] | None = None


def tokens(text: str) -> list[str]:
    """The signer's tokens (lowercase, letters/numbers/marks; anything else separates)."""
    global _TRANSLATE
    if _TRANSLATE is None:
        from gristmill.transforms.dedup.near import TABLE_SIZE, char_table

        lower, _ = char_table()
        low = lower.tolist()
        _TRANSLATE = {c: (chr(low[c]) if low[c] else " ") for c in range(TABLE_SIZE) if low[c] != c}
    return text.translate(_TRANSLATE).split()


def shingles(toks: list[str], n: int = 5) -> set[str]:
    if len(toks) < n:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def true_jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def edit(words: list[str], rate: float, vocab: list[str], rng: random.Random) -> list[str]:
    """Each word substituted, deleted or followed by an inserted word with probability `rate`."""
    out = []
    for w in words:
        if rng.random() >= rate:
            out.append(w)
            continue
        op = rng.randrange(3)
        if op == 0:
            out.append(rng.choice(vocab))
        elif op == 2:
            out.extend((w, rng.choice(vocab)))
    return out


def quality_set(corpus: Path, families: int, singletons: int, seed: int = 0):
    """Documents [(id, source, text)], family pairs {(id_a, id_b)}, and the Moby-Dick pair."""
    rng = random.Random(seed)
    records = read_texts(corpus)
    moby = [(src, name, t) for src, name, t in records if name in MOBY]
    pieces = [(src, p) for src, name, t in records if name not in MOBY for p in chop(t, rng)]
    rng.shuffle(pieces)
    vocab = sorted({w for _, p in pieces[:300] for w in p.split()})
    docs, pairs = [], set()
    for i, (src, text) in enumerate(pieces[: families + singletons]):
        orig = f"{src}-{i:05d}"
        docs.append((orig, src, text))
        if i >= families:
            continue
        family = [orig]
        for k in range(2 if rng.random() < 0.25 else 1):
            copy = f"{orig}-copy{k}"
            words = edit(text.split(), rng.uniform(0.0, 0.07), vocab, rng)
            docs.append((copy, "copies", " ".join(words)))
            family.append(copy)
        pairs.update(tuple(sorted(p)) for p in combinations(family, 2))
    moby_docs = [(f"moby-{name}", "books", text) for _, name, text in moby]
    return docs, pairs, moby_docs
