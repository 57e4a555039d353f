"""The tokenizer's training sample: the documents whose seeded id hash falls below
`sample_rate`, cut to the lowest hashes that fit in `sample_bytes`, so it depends only on the
data, never on the runner or how it split the work."""

from __future__ import annotations

import apache_beam as beam
import xxhash
from apache_beam.metrics import Metrics

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import text_bytes

NAME = "tokenizer"
# A document adds at most this much text to the sample: past it a tokenizer learns little more,
# and one huge document must not crowd out the rest of the sample.
MAX_SAMPLE_DOC_CHARS = 1 << 20

# (hash, id, text, utf-8 bytes): ordered by (hash, id), the sample is a prefix of this order.
SampleItem = tuple[int, str, str, int]


def sample_hash(seed: int, doc_id: str) -> int:
    return xxhash.xxh64_intdigest(f"tokenizer\x00{seed}\x00{doc_id}".encode())


class SampleDocs(beam.DoFn):
    """Documents whose hash falls below the rate, as sample items (text cut to a bounded size)."""

    def __init__(self, seed: int, rate: float):
        self.seed = seed
        self.threshold = int(rate * 2.0**64) if rate < 1.0 else 1 << 64
        self.taken = Metrics.counter(NAME, "sample.eligible")

    def process(self, doc: Document):
        key = sample_hash(self.seed, doc.id)
        if key < self.threshold and doc.text:
            text = doc.text[:MAX_SAMPLE_DOC_CHARS]
            self.taken.inc()
            yield key, doc.id, text, text_bytes(text)


class BoundedSample(beam.CombineFn):
    """The lowest-(hash, id) items whose bytes add up to at most `cap`.

    Any partial accumulator may drop what falls outside its own prefix: an item outside the
    prefix of a subset is outside the prefix of the whole, so the result is the same however
    the runner splits and merges."""

    def __init__(self, cap: int):
        self.cap = cap

    def _trim(self, items: list[SampleItem]) -> tuple[list[SampleItem], int]:
        items.sort(key=lambda it: (it[0], it[1]))
        kept: list[SampleItem] = []
        total = 0
        for item in items:
            if total + item[3] > self.cap:
                break
            kept.append(item)
            total += item[3]
        return kept, total

    def create_accumulator(self):
        return [], 0

    def add_input(self, acc, item: SampleItem):
        items, total = acc
        items.append(item)
        total += item[3]
        return self._trim(items) if total > 2 * self.cap else (items, total)

    def merge_accumulators(self, accs):
        items: list[SampleItem] = []
        total = 0
        for part, size in accs:
            items.extend(part)
            total += size
        return self._trim(items) if total > self.cap else (items, total)

    def extract_output(self, acc) -> list[SampleItem]:
        return self._trim(list(acc[0]))[0]
