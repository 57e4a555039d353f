"""Dedup over compact keys: what a dedup stage needs of a document, and the stage built from it.

A dedup stage is two parts:
- `keys`: documents -> `Keyed` records, one per document, computed from that document alone
  (its exact hash, its MinHash signature and sketch...); no shuffle;
- `on_keys`: `Keyed` records -> (kept records, drops, extras): every grouping of the stage.

In one Beam graph (the distributed runners) `KeyedDedup` chains them and then keeps the documents
whose id got no drop. A local run in phases makes the keys inside each partition (phase 1),
runs `on_keys` over the keys of every partition (phase 2), and drops the documents by id inside
each partition again (phase 3): whole documents never cross a shuffle, and both ways give the
same drops, counts, report rows and index files.
"""

from __future__ import annotations

import pickle
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa

from gristmill.transforms.accounting import text_bytes
from gristmill.transforms.dedup.survivors import snippet


class Keyed(NamedTuple):
    """A document as the dedup stages see it. `url_or_path`: where it came from (its drop
    row says so); `nbytes`: its text's UTF-8 bytes (what the accounting counts); `snippet`:
    the masked start of its text (the report's cluster examples); `key`: the stage's own
    value (a hash, a signature...)."""

    id: str
    source: str
    url_or_path: str
    nbytes: int
    snippet: str
    key: Any


def keyed(doc, key: Any) -> Keyed:
    return Keyed(doc.id, doc.source, doc.url_or_path, text_bytes(doc.text), snippet(doc.text), key)


DOC, DROPPED = 0, 1


class _KeepUndropped(beam.DoFn):
    """(id, [(DOC, doc)..., (DROPPED, None)...]) -> the documents of an id no stage dropped;
    two streaming passes, never a list."""

    def process(self, grouped):
        _, values = grouped
        if any(tag == DROPPED for tag, _ in values):
            return
        for tag, doc in values:
            if tag == DOC:
                yield doc


class DropListed(beam.PTransform):
    """(records with .id, drops) -> the records whose id no drop names."""

    def expand(self, pcolls):
        records, drops = pcolls
        return (
            (
                records | "KeyRecords" >> beam.Map(lambda r: (r.id, (DOC, r))),
                drops | "KeyDrops" >> beam.Map(lambda d: (d.id, (DROPPED, None))),
            )
            | "Flatten" >> beam.Flatten()
            | "ById" >> beam.GroupByKey()
            | "Keep" >> beam.ParDo(_KeepUndropped())
        )


class KeyedDedup(beam.PTransform):
    """documents -> (kept documents, drops, extras): keys, the stage on its keys, then the
    documents whose id was not dropped."""

    def __init__(self, keys: beam.PTransform, on_keys: beam.PTransform):
        super().__init__()
        self.keys = keys
        self.on_keys = on_keys

    def expand(self, docs):
        keys = docs | "Keys" >> self.keys
        _, drops, extras = keys | "OnKeys" >> self.on_keys
        kept = (docs, drops) | "KeepDocuments" >> DropListed()
        return kept, drops, extras


# ---- staged between the phases of a local run --------------------------------------------------

KEYS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("url_or_path", pa.string()),
        ("nbytes", pa.int64()),
        ("snippet", pa.string()),
        ("key", pa.binary()),
    ]
)


def keys_table(rows: list[Keyed]) -> pa.Table:
    """Keyed records as a staged table; the stage's own key travels pickled."""
    cols = {
        "id": [r.id for r in rows],
        "source": [r.source for r in rows],
        "url_or_path": [r.url_or_path for r in rows],
        "nbytes": [r.nbytes for r in rows],
        "snippet": [r.snippet for r in rows],
        "key": [pickle.dumps(r.key, protocol=5) for r in rows],
    }
    return pa.table(cols, schema=KEYS_SCHEMA)


def keyed_from_row(row: dict) -> Keyed:
    fields = {name: row[name] for name in Keyed._fields if name != "key"}
    return Keyed(**fields, key=pickle.loads(row["key"]))


def keyed_order(record: Keyed) -> tuple:
    return (record.id, record.nbytes, record.snippet)


# ---- edits: a KEYS stage that changes a document's text rather than dropping it ---------------

EDITS = "edits"  # the staged table of a stage's edits (phase 2), read again by the rest
EDITS_SCHEMA = pa.schema([("id", pa.string()), ("spans", pa.list_(pa.int64()))])


class Edit(NamedTuple):
    """Character spans to delete from a document's text: flat (start, end) pairs, in order,
    not overlapping. Both ways of running a job apply them with `cut_spans`."""

    id: str
    spans: tuple[int, ...]


def cut_spans(text: str, spans) -> str:
    """`text` less the (start, end) spans (flat pairs, in order)."""
    pieces, at = [], 0
    for k in range(0, len(spans), 2):
        pieces.append(text[at : spans[k]])
        at = spans[k + 1]
    pieces.append(text[at:])
    return "".join(pieces)


def edits_table(rows: list[Edit]) -> pa.Table:
    cols = {"id": [r.id for r in rows], "spans": [list(r.spans) for r in rows]}
    return pa.table(cols, schema=EDITS_SCHEMA)


def edit_from_row(row: dict) -> Edit:
    return Edit(row["id"], tuple(row["spans"]))


def edit_order(edit: Edit) -> tuple:
    return (edit.id, edit.spans)
