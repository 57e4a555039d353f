"""A large, varied test corpus of JSON lines cut from the real text, for the scale benchmarks.

    python -m bench.corpus_gen OUT_DIR --mb 200 [--file-mb 16] [--seed 0] [--corpus DIR]

OUT_DIR/part-00000.jsonl, ... of about --file-mb MB (old parts removed), lines {"id", "text",
"source"} (the `articles` kind) up to --mb MB (10^6 bytes); same arguments, same bytes.
- Real pieces, 500 B-50 KB log-uniform: books and Shakespeare cut at paragraphs (no Gutenberg
  boilerplate; no 1991 Moby-Dick, a near copy), SOTU addresses whole or cut, e-mail bodies (no real
  near copies), Wikipedia prose, lingua paragraphs (English; 2% of bytes in 74 other languages).
- ~10% exact copies of an earlier distinct document, ~10% near copies (2-5% of the words edited in
  runs kept apart: 5-gram Jaccard >= ~0.83), the rest distinct: the real pieces, shuffled, then
  splices of windows of >= 3 pieces of one source and language (Jaccard <~ 1/3 with any other).
- Memory: the pieces, 8 bytes per distinct document (copies regenerate their original), a file.
"""

from __future__ import annotations

import argparse
import bisect
import bz2
import hashlib
import json
import math
import re
import sys
import time
import unicodedata
import xml.etree.ElementTree as ET
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
MIN_CHARS, MAX_CHARS = 500, 50_000  # document lengths, log-uniform between
LINGUA_MAX = 8_000  # sentence soup reads badly at book length
MIN_PIECE = 200  # shorter leftovers (chapter tails, one-line mails) are dropped
EXACT_SHARE, NEAR_SHARE = 0.10, 0.10
EDIT_RATE = (0.02, 0.05)  # share of the words edited in a near copy
MAX_RUN = 8  # words per edit run: longer runs cost fewer shingles per edited word
DAMAGE_CAP = 0.09  # shingles touched per word: J >= (1 - 0.09) / (1 + 0.09) ~ 0.83
NON_ENGLISH = 0.02  # share of the real bytes given to the non-English lingua languages
SKIP_BOOKS = {"pg2701-moby-dick-1991-edition.txt"}


def _marks() -> str:
    """Combining-mark ranges for a regex class (a class of 2,000 single characters is slow)."""
    codes = [c for c in range(0x300, 0x20000) if unicodedata.category(chr(c))[0] == "M"]
    starts = [c for i, c in enumerate(codes) if i == 0 or codes[i - 1] != c - 1]
    ends = [c for i, c in enumerate(codes) if i + 1 == len(codes) or codes[i + 1] != c + 1]
    return "".join(f"{chr(a)}-{chr(b)}" for a, b in zip(starts, ends, strict=True))


MARKS = _marks()
TOKEN = re.compile(r"[^\W_]+")  # about the signer's tokens: for the quick near-copy check
WORD = re.compile(rf"([^\W_]+(?:[{MARKS}]+[^\W_]*)*)([\W_]*)")  # (signer's token, separators)
LEAD = re.compile(r"[\W_]*")
PARA = re.compile(r"\n[ \t]*\n\s*")
SENT = re.compile(r"[.!?][\"'”’)\]]*\s+")
SPACE = re.compile(r"\s+")
SINGLE_NL = re.compile(r"(?<!\n)\n(?!\n)")
GUT_START = re.compile(r"^\*\*\* ?START OF.*$", re.M | re.I)
SUMMARY = (
    "corpus_gen: {files} files, {mb:.1f} MB, {documents:,} documents ({exact:,} exact copies, "
    "{near:,} near copies, {other_language:,} not English), {seconds:.1f} s -> {out}"
)
GUT_END = re.compile(r"^(\*\*\* ?END OF|End of (the )?Project Gutenberg)", re.M | re.I)


class Doc(NamedTuple):
    """An output line and its truth: kind distinct, exact or near; `of`: the original's index."""

    id: str
    source: str
    lang: str
    text: str
    kind: str
    of: int | None


@dataclass
class Group:
    """Pieces of one source and language: a splice never mixes groups."""

    source: str
    lang: str
    pieces: list[str]
    max_chars: int
    weight: float = 0.0
    cum: list[int] = field(default_factory=list)

    def pick(self, rng: Random) -> int:
        """A piece index weighted by length, so windows are uniform over the group's bytes."""
        if not self.cum:
            self.cum = list(accumulate(len(p) for p in self.pieces))
        return bisect.bisect_right(self.cum, rng.randrange(self.cum[-1]))


def boundary(text: str, pos: int, slack: int) -> int:
    """Just past the first paragraph break, else sentence end, else space in [pos, pos+slack)."""
    if pos >= len(text):
        return len(text)
    for pattern in (PARA, SENT, SPACE):
        if m := pattern.search(text, pos, pos + slack):
            return m.end()
    return pos


def cut(text: str, rng: Random, hi: int = 0) -> list[str]:
    """Consecutive pieces, log-uniform in length (as many of 1 KB as of 10 KB, as in real
    collections), cut at paragraph (else sentence) boundaries."""
    out, start, n = [], 0, len(text)
    while start < n:
        target = int(math.exp(rng.uniform(math.log(MIN_CHARS), math.log(hi or MAX_CHARS))))
        end = n if n - start <= target * 1.3 else boundary(text, start + target, target // 4 + 200)
        if len(piece := text[start:end].strip()) >= MIN_PIECE:
            out.append(piece)
        start = max(end, start + 1)
    return out


def window(text: str, width: int, rng: Random) -> str:
    """About `width` characters of `text` from a sentence start to a sentence end."""
    if len(text) <= width * 1.2:
        return text.strip()
    start = boundary(text, rng.randrange(len(text) - width), width // 2)
    return text[start : boundary(text, start + width, width // 2 + 100)].strip()


def gutenberg_body(text: str) -> str:
    """The book without Project Gutenberg's header and licence: they are not the book."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    if m := GUT_START.search(text):
        text = text[m.end() :]
    if m := GUT_END.search(text):
        text = text[: m.start()]
    return text.strip()


def mail_body(raw: bytes) -> str:
    """The text after the headers (the first blank line); Latin-1 when it is not UTF-8."""
    body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[2]
    try:
        return body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return body.decode("latin-1").strip()


def real_texts(corpus: Path) -> dict[str, Iterator[str]]:
    """Each source's texts, read lazily in a fixed order."""
    books = [p for p in sorted(corpus.glob("books/**/*.txt")) if p.name not in SKIP_BOOKS]
    mails = sorted(corpus.glob("email/spamassassin/*/*.txt"))
    sotu = corpus / "articles" / "sotu.jsonl"
    lines = sotu.read_text("utf-8").splitlines() if sotu.exists() else []
    return {
        "books": (gutenberg_body(p.read_text("utf-8", errors="replace")) for p in books),
        "sotu": (json.loads(line)["text"] for line in lines if line.strip()),
        "mail": (mail_body(p.read_bytes()) for p in mails),
        "wiki": wiki_texts(corpus),
    }


def wiki_texts(corpus: Path) -> Iterator[str]:
    """Article pages (namespace 0, no redirects) as prose; none when the dump is absent."""
    for path in sorted(corpus.glob("articles/enwiki-sample.xml.bz2")):
        from gristmill.transforms.sources.wikitext import wikitext_to_text  # imports Beam: late

        with bz2.open(path) as f:
            for _, elem in ET.iterparse(f):
                if elem.tag.rsplit("}", 1)[-1] == "page":
                    parts = {e.tag.rsplit("}", 1)[-1]: e for e in elem.iter()}
                    if "redirect" not in parts and getattr(parts.get("ns"), "text", "") == "0":
                        yield wikitext_to_text(getattr(parts.get("text"), "text", "") or "")
                    elem.clear()


def lingua_texts(corpus: Path, rng: Random) -> Iterator[tuple[str, str]]:
    """(language, its sentences joined into paragraphs of 3-8) per lingua file."""
    for path in sorted(corpus.glob("multilingual/lingua-sentences/*.txt")):
        lines = [s.strip() for s in path.read_text("utf-8").splitlines() if s.strip()]
        k = rng.randint(3, 8)  # sentences per paragraph
        yield path.stem, "\n\n".join(" ".join(lines[i : i + k]) for i in range(0, len(lines), k))


def pieces_of(texts: Iterable[str], rng: Random, whole: float, near: bool = False) -> list[str]:
    """Each text whole (chance `whole`, if short enough) or cut; repeats dropped, and with `near`
    a piece of estimated Jaccard >= 0.4 with an earlier one (spam campaigns: unplanned copies)."""
    out, seen, posting, sizes = [], set(), {}, []
    for text in texts:
        keep_whole = len(text) <= MAX_CHARS and rng.random() < whole
        for piece in [text.strip()] if keep_whole else cut(text, rng):
            key = hashlib.blake2b(" ".join(piece.split()).encode(), digest_size=16).digest()
            if len(piece) < MIN_PIECE or key in seen:
                continue
            if near and (t := TOKEN.findall(piece.lower())):  # 5-grams picked by content alone
                starts = [i for i in range(len(t) - 4) if len(t[i]) == 7]  # (so in every piece)
                marks = {zlib.crc32(" ".join(t[i : i + 5]).encode()) for i in starts}
                shared = Counter(j for h in marks for j in posting.get(h, ()))
                if any(c / (len(marks) + sizes[j] - c) >= 0.4 for j, c in shared.items()):
                    continue
                for h in marks:
                    posting.setdefault(h, []).append(len(sizes))
                sizes.append(len(marks))
            seen.add(key)
            out.append(piece)
    return out


class Pool:
    """The real pieces by group, and the recipe for distinct document number k."""

    def __init__(self, groups: list[Group], real: list[tuple[int, int]], seed: int):
        self.groups, self.real, self.seed = groups, real, seed
        self.gcum = list(accumulate(g.weight for g in groups))

    def distinct(self, k: int) -> tuple[Group, str]:
        """Real piece k while they last, then a splice seeded by k alone (copies regenerate it)."""
        if k < len(self.real):
            g, i = self.real[k]
            return self.groups[g], self.groups[g].pieces[i]
        rng = Random(f"{self.seed}/{k}")
        group = self.groups[bisect.bisect_right(self.gcum, rng.random() * self.gcum[-1])]
        return group, splice(group, rng)


def splice(group: Group, rng: Random) -> str:
    """Windows of >= 3 different pieces: each one is at most about a third of the document."""
    target = int(math.exp(rng.uniform(math.log(MIN_CHARS), math.log(group.max_chars))))
    width = max(150, target // (parts := rng.randint(3, 6)))
    used, chunks = set(), []
    for _ in range(8 * parts):
        if sum(map(len, chunks)) >= target and len(chunks) >= 3:
            break
        i = group.pick(rng)
        if i not in used or len(used) >= len(group.pieces):
            used.add(i)
            if chunk := window(group.pieces[i], width, rng):
                chunks.append(chunk)
    return "\n\n".join(chunks)


def load_pool(corpus: Path, seed: int = 0) -> Pool:
    """Every real piece (~40 MB of text), grouped, in a shuffled order for the first pass."""
    if not corpus.is_dir():
        raise FileNotFoundError(f"no corpus folder at {corpus} (see --corpus)")
    rng = Random(seed)
    texts = real_texts(corpus)
    groups = [  # (source, chance a text is kept whole)
        Group(src, "en", pieces_of(texts[src], rng, whole, near=src == "mail"), MAX_CHARS)
        for src, whole in (("books", 0.0), ("sotu", 0.5), ("mail", 1.0), ("wiki", 1.0))
    ]
    for lang, text in lingua_texts(corpus, rng):
        groups.append(Group("lingua", lang, cut(text, rng, LINGUA_MAX), LINGUA_MAX))
    groups = [g for g in groups if g.pieces]
    if not groups:
        raise FileNotFoundError(f"no text found under {corpus}")
    others = sum(g.lang != "en" for g in groups)
    english = sum(len(p) for g in groups if g.lang == "en" for p in g.pieces)
    real = []
    for gi, g in enumerate(groups):
        budget = NON_ENGLISH * english / others if g.lang != "en" else math.inf
        for pi, piece in enumerate(g.pieces):
            if pi and g.weight + len(piece) > budget:
                break
            real.append((gi, pi))
            g.weight += len(piece)
    rng.shuffle(real)
    return Pool(groups, real, seed)


def _plan(n: int, shingles: int, rng: Random) -> dict[int, tuple[str, int]]:
    """Edit runs {first token: (op, tokens)} over n tokens, 4 apart so that their damage adds up;
    the damage is capped by the distinct shingles (fewer than n in repetitive text)."""
    cap = DAMAGE_CAP * shingles
    if cap < 5:  # too short for a run inside: edit the last token (one shingle)
        return {n - 1: ("r", 1)} if n else {}
    budget = max(1, round(rng.uniform(*EDIT_RATE) * n))
    plan, taken, edited, damage = {}, set(), 0, 0
    for _ in range(4 * budget):
        run = min(rng.randint(1, MAX_RUN), budget - edited, int(cap - damage) - 4)
        if run < 1:
            break
        start = rng.randrange(n)
        span = range(start - 4, start + run + 4)
        if not any(i in taken for i in span):
            taken.update(span)
            plan[start] = (rng.choice("rdi"), run)
            edited += run
            damage += run + 4
    return plan


def _other(words: list[tuple[str, str]], word: str, rng: Random) -> str:
    """A token of the same document (same language) other than `word`."""
    other = rng.choice(words)[0]
    return other if other.lower() != word.lower() else other + "s"


def near_copy(text: str, rng: Random) -> str:
    """`text` with 2-5% of its tokens edited in runs, then maybe rewrapped or a heading upcased."""
    words = WORD.findall(text, lead := LEAD.match(text).end())
    n, low = len(words), [w.lower() for w, _ in words]
    shingles = len(set(zip(low, low[1:], low[2:], low[3:], low[4:], strict=False)))
    at = list(accumulate((len(w) + len(s) for w, s in words), initial=lead))  # token offsets
    out, pos = [], 0
    for i, (op, run) in sorted(_plan(n, shingles, rng).items()):
        end = min(i + run, n)
        out.append(text[pos : at[i]])
        if op == "i":
            out.extend(_other(words, "", rng) + " " for _ in range(run))
        elif op == "r":
            out.extend(_other(words, w, rng) + sep for w, sep in words[i:end])
        else:  # deleted: the separators after the run stay (they may be a paragraph break)
            out.append(words[end - 1][1])
        pos = at[i] if op == "i" else at[end]
    out.append(text[pos:])
    copy, roll = "".join(out), rng.random()
    if roll < 0.2:
        copy = SINGLE_NL.sub(" ", copy)
    elif roll < 0.35 and (head := copy.partition("\n")[0]).isascii():
        copy = head.upper() + copy[len(head) :]  # a heading in capitals
    return copy


def documents(pool: Pool, seed: int = 0) -> Iterator[Doc]:
    """The endless document stream: each draw distinct, an exact copy or a near copy."""
    rng = Random(seed)
    first = array("q")  # output index of distinct document k
    for n in range(1 << 62):
        roll = rng.random() if first else 1.0
        if roll >= EXACT_SHARE + NEAR_SHARE:
            kind, of, k = "distinct", None, len(first)
            first.append(n)
        else:
            kind, k = "exact" if roll < EXACT_SHARE else "near", rng.randrange(len(first))
            of = first[k]
        group, text = pool.distinct(k)
        if kind == "near":
            text = near_copy(text, rng)
        yield Doc(f"{group.source}-{n:08d}", group.source, group.lang, text, kind, of)


def write_parts(docs: Iterator[Doc], out_dir: Path, total: float, per_file: float) -> Counter:
    """Lines into part files of about `per_file` bytes until `total` bytes; the counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("part-*.jsonl"):
        old.unlink()
    counts: Counter = Counter()
    while counts["bytes"] < total:
        in_file, name = 0, f"part-{counts['files']:05d}.jsonl"
        counts["files"] += 1
        with (out_dir / name).open("wb", buffering=1 << 20) as f:
            while in_file < per_file and counts["bytes"] < total:
                doc = next(docs)
                record = {"id": doc.id, "text": doc.text, "source": doc.source}
                line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
                f.write(line)
                in_file += len(line)
                counts.update(bytes=len(line), documents=1, other_language=doc.lang != "en")
                counts[doc.kind] += 1
    return counts


def generate(out_dir: Path, mb: float, corpus: Path, file_mb: float = 16, seed: int = 0) -> dict:
    """Write the corpus; {files, bytes, mb, documents, distinct, exact, near, ..., seconds}."""
    start = time.perf_counter()
    pool = load_pool(Path(corpus), seed)
    counts = write_parts(documents(pool, seed), Path(out_dir), mb * 1e6, file_mb * 1e6)
    keys = ("files", "bytes", "documents", "distinct", "exact", "near", "other_language")
    result: dict = {k: counts[k] for k in keys}
    result.update(mb=result["bytes"] / 1e6, real_pieces=len(pool.real))
    result["seconds"] = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--mb", type=float, required=True, help="total size, MB (10^6 bytes)")
    parser.add_argument("--file-mb", type=float, default=16, help="size of each part file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
    try:
        r = generate(args.out_dir, args.mb, args.corpus, args.file_mb, args.seed)
    except FileNotFoundError as e:
        sys.exit(f"corpus_gen: {e}")
    print(SUMMARY.format(**r, out=args.out_dir))
    return r


if __name__ == "__main__":
    main()
