"""Decontamination without Beam: GPT-3's normalisation, the index of the shipped evaluation
sets, and recall on passages planted into real documents (the committed sample corpus)."""

from __future__ import annotations

import gzip
import json
import random

import pytest
import zstandard
from helpers import REPO

from gristmill.transforms.decontam.index import (
    build_index,
    load_index,
    ngram_hashes,
    normalize,
    passages,
    words_with_spans,
)
from gristmill.transforms.decontam.stage import DecontamParams, EvalSet, decide

pytestmark = pytest.mark.unit

FIXTURES = REPO / "tests" / "fixtures" / "decontam"
SETS = (
    EvalSet("trivia", (str(FIXTURES / "trivia.jsonl"),), fields=("question", "answers")),
    EvalSet("essays", (str(FIXTURES / "essays.txt"),), format="text"),
    EvalSet("sentences", (str(FIXTURES / "sentences.txt"),), format="lines"),
)
DROP = DecontamParams(enabled=True, sets=SETS)


@pytest.fixture(scope="module")
def index():
    return load_index(SETS, 13)


def real_documents() -> list[str]:
    """The 39 State of the Union addresses and 7 Shakespeare texts of sample/."""
    raw = zstandard.ZstdDecompressor().stream_reader(
        (REPO / "sample" / "articles" / "sotu-sample.jsonl.zst").open("rb")
    )
    docs = [json.loads(line)["text"] for line in raw.read().decode("utf-8").splitlines()]
    docs += [p.read_text(encoding="utf-8") for p in sorted((REPO / "sample" / "books").glob("*"))]
    return docs


def test_normalisation_is_gpt3s():
    assert normalize("Hello, World!  It's\tme — “quoted” (x)...") == [
        "hello",
        "world",
        "its",
        "me",
        "quoted",
        "x",
    ]
    words, spans = words_with_spans("  Hello, World!  — it's")
    assert words == ["hello", "world", "its"]
    assert spans == [(2, 8), (9, 15), (19, 23)]


def test_ngram_hashes_are_position_free_and_order_sensitive():
    a = ngram_hashes(["a", "b", "c", "d", "e"], 3)
    b = ngram_hashes(["x", "a", "b", "c"], 3)
    assert len(a) == 3 and a[0] == b[1]
    assert ngram_hashes(["c", "b", "a"], 3)[0] != a[0]
    assert len(ngram_hashes(["a", "b"], 3)) == 0


def test_the_shipped_sets_are_read_by_format():
    trivia = list(passages(SETS[0]))
    assert len(trivia) == 16  # 8 questions + 8 answers (a list field)
    assert len(list(passages(SETS[1]))) == 1  # the whole file
    assert len(list(passages(SETS[2]))) == 3  # a line each
    nested = EvalSet("t", SETS[0].paths, fields=("meta.source", "missing.field"))
    assert list(passages(nested)) == ["written for gristmill tests"] * 8


def test_index_masks_name_every_set_holding_an_ngram():
    shared = "one two three four five six seven eight nine ten eleven twelve thirteen"
    idx = build_index([("a", iter([shared])), ("b", iter([shared + " fourteen"]))], 13)
    assert len(idx.keys) == 2
    masks = idx.lookup(ngram_hashes(normalize(shared + " fourteen"), 13))
    assert [idx.set_names(int(m)) for m in masks] == [["a", "b"], ["b"]]


def test_bad_eval_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{not json\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not a JSON line"):
        load_index([EvalSet("x", (str(bad),))], 13)
    packed = tmp_path / "packed.jsonl.gz"  # compression is sniffed from the content
    packed.write_bytes(gzip.compress(b'{"text": "' + b"w " * 20 + b'"}\n'))
    assert len(load_index([EvalSet("x", (str(packed),))], 13).keys) == 1  # 8 n-grams, all equal


def _variants(passage: str, rng: random.Random) -> dict[str, str]:
    words = passage.split()
    spaced = "".join(w + rng.choice(["  ", "\n", "\t", " \n  ", "\r\n"]) for w in words)
    return {
        "verbatim": passage,
        "upper": passage.upper(),
        "title": passage.title(),
        "whitespace": spaced.strip(),
        "whitespace+case": spaced.swapcase().strip(),
        "punctuation": " ".join(
            w.strip(",.;?!'") + rng.choice([",", "", ";", " -"]) for w in words
        ),
    }


def _plant(doc: str, passage: str, rng: random.Random) -> str:
    """The passage inserted between two words of the document."""
    cuts = [i for i, c in enumerate(doc) if c == " "]
    at = rng.choice(cuts)
    return f"{doc[:at]} {passage} {doc[at:]}"


def _eval_passages() -> list[tuple[str, str]]:
    out = [(s.name, p) for s in SETS for p in passages(s) if len(normalize(p)) >= 13]
    essay = normalize(next(passages(SETS[1])))
    out.append(("essays", " ".join(essay[40:53])))  # 13 words from the middle only
    return out


def test_recall_on_planted_passages_and_no_drop_elsewhere(index):
    rng = random.Random(19)
    docs = real_documents()
    planted = missed = 0
    for name, passage in _eval_passages():
        for variant, text in _variants(passage, rng).items():
            doc = _plant(rng.choice(docs), text, rng)
            verdict = decide(doc, index, DROP).verdict
            planted += 1
            if verdict is None or verdict[0] != "contaminated" or name not in verdict[1]:
                missed += 1
                print("missed", name, variant, text[:60])
    # 8 questions, 1 answer of 13+ words, the essay, 3 sentences, 1 window; 6 variants each
    assert planted == 14 * 6 and missed == 0  # recall 1.0
    assert [decide(d, index, DROP).verdict for d in docs] == [None] * len(docs)


def test_drop_detail_names_the_sets(index):
    question = next(passages(SETS[0]))
    doc = _plant(real_documents()[0], question, random.Random(1))
    decision = decide(doc, index, DROP)
    n_words = len(normalize(question))
    assert decision.verdict == ("contaminated", f"trivia: {n_words - 12} 13-grams")
    assert decision.matched == {"trivia": n_words - 12}


def test_cut_removes_the_overlap_and_its_margins(index):
    cut = DecontamParams(enabled=True, sets=SETS, mode="cut")
    doc = real_documents()[3]
    sentence = next(passages(SETS[2]))
    at = doc.index(" ", len(doc) // 2)
    planted = f"{doc[:at]} {sentence} {doc[at:]}"
    text, verdict, matched, cut_chars = decide(planted, index, cut)
    assert verdict is None and matched == {"sentences": len(normalize(sentence)) - 12}
    assert sentence not in text and "island polling" not in text.lower()
    # the sentence and about 200 characters each side went; the rest is the document's
    assert len(sentence) + 380 <= cut_chars <= len(sentence) + 420
    head = doc[:at].strip()[:-250]
    assert text.startswith(head[:1000]) and doc[at:].strip()[-1000:] in text


def test_cut_drops_what_is_left_in_too_many_or_no_pieces(index):
    cut = DecontamParams(enabled=True, sets=SETS, mode="cut")
    sentence = next(passages(SETS[2]))
    filler = "word " * 200  # 1000 characters between overlaps: eleven pieces of 600 or more
    many = (filler + sentence + " ") * 10 + filler
    assert decide(many, index, cut).verdict[0] == "contaminated_pieces"
    assert decide(sentence, index, cut).verdict[0] == "contaminated_all"
    few = DecontamParams(enabled=True, sets=SETS, mode="cut", max_pieces=11)
    assert decide(many, index, few).verdict is None


def test_the_index_is_built_once_and_then_loaded_from_its_file(tmp_path, monkeypatch):
    from gristmill.transforms.decontam import index as module

    folder = str(tmp_path / "cache")
    evals = tmp_path / "e.txt"
    evals.write_text("one two three four five six seven eight nine ten eleven twelve thirteen")
    sets = [EvalSet("e", (str(evals),), format="text")]
    built = module.cached_index(sets, 13, folder)
    assert len(built.keys) == 1 and len(list((tmp_path / "cache").iterdir())) == 1

    def no_build(*args):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(module, "load_index", no_build)
    loaded = module.cached_index(sets, 13, folder)
    assert (loaded.keys == built.keys).all() and (loaded.masks == built.masks).all()
    evals.write_text(evals.read_text() + " fourteen")  # new content: a new key, a new build
    with pytest.raises(AssertionError, match="rebuilt"):
        module.cached_index(sets, 13, folder)
