"""bench/corpus_gen.py on a small made-up corpus of the same layout (no ../shared/corpus needed)."""

from __future__ import annotations

import json
import random
import re
import string
from itertools import combinations, islice
from pathlib import Path

import pytest

from bench import corpus_gen

MB = 0.3


def _prose(rng: random.Random, vocab: list[str], paragraphs: int) -> str:
    """Paragraphs of random sentences: made-up text whose 5-grams do not repeat by chance."""
    paras = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(2, 6)):
            words = [rng.choice(vocab) for _ in range(rng.randint(6, 18))]
            sentences.append(" ".join(words).capitalize() + rng.choice(".!?"))
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Two books with Gutenberg boilerplate, three SOTU lines and six e-mails with headers."""
    root = tmp_path_factory.mktemp("corpus")
    rng = random.Random(7)
    vocab = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(4000)]
    (root / "books").mkdir()
    for name in ("pg1-one.txt", "pg2-two.txt"):
        body = _prose(rng, vocab, 150)
        head, foot = (
            "BOILERPLATE\n*** START OF THIS BOOK ***",
            "*** END OF THIS BOOK ***\nBOILERPLATE",
        )
        (root / "books" / name).write_text(f"\ufeff{head}\n{body}\n{foot}\n", "utf-8")
    (root / "articles").mkdir()
    rows = [{"id": str(i), "text": _prose(rng, vocab, 20).replace("\n\n", " ")} for i in range(3)]
    (root / "articles" / "sotu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    mail = root / "email" / "spamassassin" / "easy-ham-1"
    mail.mkdir(parents=True)
    for i in range(6):
        head = f"From: a{i}@example.org\nX-Marker: HEADERONLY\nSubject: s{i}\n"
        (mail / f"{i:05d}.txt").write_bytes((head + "\n" + _prose(rng, vocab, 4)).encode())
    return root


@pytest.fixture(scope="module")
def small_docs():
    """Documents of 300 B-3 KB, so that 0.3 MB holds a few hundred of them."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(corpus_gen, "MIN_CHARS", 300)
        mp.setattr(corpus_gen, "MAX_CHARS", 3000)
        yield


def _lines(out: Path) -> list[bytes]:
    return [
        line for p in sorted(out.glob("part-*.jsonl")) for line in p.read_bytes().splitlines(True)
    ]


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    toks = re.findall(r"\w+", text.lower())
    return {tuple(toks[i : i + n]) for i in range(max(1, len(toks) - n + 1))}


def _jaccard(a: str, b: str) -> float:
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb)


@pytest.mark.unit
def test_same_arguments_write_identical_files_of_the_target_size(corpus, small_docs, tmp_path):
    """The scale bench compares runs: their input must not change under them."""
    one = corpus_gen.generate(tmp_path / "a", MB, corpus, file_mb=0.1)
    two = corpus_gen.generate(tmp_path / "b", MB, corpus, file_mb=0.1)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [f"part-{i:05d}.jsonl" for i in range(one["files"])] and one["files"] >= 3
    assert all(
        (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names
    )
    assert {k: v for k, v in one.items() if k != "seconds"} == {
        k: v for k, v in two.items() if k != "seconds"
    }
    lines = _lines(tmp_path / "a")
    total = sum(map(len, lines))
    assert total == one["bytes"] and total >= MB * 1e6 > total - len(lines[-1])
    records = [json.loads(line) for line in lines]
    assert all(set(r) == {"id", "text", "source"} and r["text"] for r in records)
    assert len({r["id"] for r in records}) == len(records) == one["documents"]
    assert {r["source"] for r in records} == {"books", "sotu", "mail"}
    assert not any("BOILERPLATE" in r["text"] or "HEADERONLY" in r["text"] for r in records)
    other = corpus_gen.generate(tmp_path / "c", MB, corpus, file_mb=0.1, seed=1)
    assert other["documents"] and _lines(tmp_path / "c") != lines


@pytest.mark.unit
def test_copies_are_as_intended_and_distinct_documents_are_far_apart(corpus, small_docs, tmp_path):
    """Dedup at Jaccard 0.8 must find every planted copy and nothing else."""
    result = corpus_gen.generate(tmp_path / "out", MB, corpus, file_mb=1)
    docs = list(islice(corpus_gen.documents(corpus_gen.load_pool(corpus)), result["documents"]))
    texts = [json.loads(line)["text"] for line in _lines(tmp_path / "out")]
    assert [d.text for d in docs] == texts  # the stream is what was written
    kinds = {k: [d for d in docs if d.kind == k] for k in ("distinct", "exact", "near")}
    assert [len(kinds[k]) for k in ("exact", "near")] == [result["exact"], result["near"]]
    assert 0.06 < len(kinds["exact"]) / len(docs) < 0.15
    assert 0.06 < len(kinds["near"]) / len(docs) < 0.15
    assert all(d.text == docs[d.of].text and docs[d.of].kind == "distinct" for d in kinds["exact"])
    for d in kinds["near"]:
        assert d.text != docs[d.of].text and 0.8 <= _jaccard(d.text, docs[d.of].text) < 1
    assert result["real_pieces"] < len(kinds["distinct"])  # splices were made too
    pairs = random.Random(0).sample(list(combinations(kinds["distinct"], 2)), 3000)
    assert max(_jaccard(a.text, b.text) for a, b in pairs) < 0.5


@pytest.mark.unit
def test_a_missing_corpus_is_one_clear_line(tmp_path):
    with pytest.raises(SystemExit) as exit_:
        corpus_gen.main([str(tmp_path / "out"), "--mb", "1", "--corpus", str(tmp_path / "none")])
    assert str(exit_.value) == f"corpus_gen: no corpus folder at {tmp_path / 'none'} (see --corpus)"
