"""Arrow schemas of the release tables, and the row conversions that fill them."""

from __future__ import annotations

import json

import pyarrow as pa

from gristmill.schemas.records import DeadLetter, Document, Drop, PiiFinding

DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("url_or_path", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("lang_score", pa.float32(), nullable=False),
        pa.field("meta", pa.string(), nullable=False),
    ]
)

DROP_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("url_or_path", pa.string(), nullable=False),
    ]
)

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
    ]
)


PII_FINDING_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("field", pa.string(), nullable=False),
        pa.field("entity_type", pa.string(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),
        pa.field("end", pa.int64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("recognizer", pa.string(), nullable=False),
        pa.field("value_hash", pa.string(), nullable=False),
    ]
)


# The release on disk (DESIGN.md): each table's folder and schema, and every entry a run writes.
FINDINGS_DIR = "pii"
TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "documents": DOCUMENT_SCHEMA,
    "drops": DROP_SCHEMA,
    "dead_letters": DEAD_LETTER_SCHEMA,
    FINDINGS_DIR: PII_FINDING_SCHEMA,
}
RELEASE_ENTRIES = (
    *TABLE_SCHEMAS,
    "_job",
    "reports",
    "index",
    "shards",
    "mlm",  # Parquet copies of the shards, the card's `mlm` config
    "tokenizer.json",
    "README.md",  # the dataset card (pipelines/release/card.py)
)


def meta_json(meta: dict) -> str:
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def documents_table(docs: list[Document]) -> pa.Table:
    return pa.table(
        {
            "id": [d.id for d in docs],
            "source": [d.source for d in docs],
            "url_or_path": [d.url_or_path for d in docs],
            "text": [d.text for d in docs],
            "lang": [d.lang for d in docs],
            "lang_score": [d.lang_score for d in docs],
            "meta": [meta_json(d.meta) for d in docs],
        },
        schema=DOCUMENT_SCHEMA,
    )


def drops_table(drops: list[Drop]) -> pa.Table:
    cols = {name: [getattr(d, name) for d in drops] for name in DROP_SCHEMA.names}
    return pa.table(cols, schema=DROP_SCHEMA)


def dead_letters_table(letters: list[DeadLetter]) -> pa.Table:
    cols = {name: [getattr(d, name) for d in letters] for name in DEAD_LETTER_SCHEMA.names}
    return pa.table(cols, schema=DEAD_LETTER_SCHEMA)


def document_from_row(row: dict) -> Document:
    return Document(
        id=row["id"],
        source=row["source"],
        url_or_path=row["url_or_path"],
        text=row["text"],
        lang=row["lang"],
        lang_score=float(row["lang_score"]),
        meta=json.loads(row["meta"]),
    )


def drop_from_row(row: dict) -> Drop:
    return Drop(**{name: row[name] for name in DROP_SCHEMA.names})


def dead_letter_from_row(row: dict) -> DeadLetter:
    return DeadLetter(row["source"], row["file"], row["offset"], row["error"], row["detail"])


def findings_table(rows: list[PiiFinding]) -> pa.Table:
    cols = {name: [getattr(r, name) for r in rows] for name in PII_FINDING_SCHEMA.names}
    return pa.table(cols, schema=PII_FINDING_SCHEMA)
