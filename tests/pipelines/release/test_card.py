"""The dataset card: a release is a Hugging Face dataset (`load_dataset(RELEASE)` gives the
documents and only them, the `mlm` config the shards), and its language-partitioned documents
read as one table in pandas, pyarrow, polars and duckdb."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from training_helpers import run_release

from gristmill.pipelines.release.card import (
    CARD,
    documents_pattern,
    render_card,
    shard_parameters,
)
from gristmill.pipelines.release.guard import check_output
from gristmill.pipelines.tools.validate import validate_release
from gristmill.schemas.mlm_shards import open_shard
from gristmill.schemas.tables import DOCUMENT_SCHEMA

COLUMNS = DOCUMENT_SCHEMA.names


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, dict]:
    """Books and mail through langid (English and German), documents under language folders."""
    out = tmp_path_factory.mktemp("card") / "release"
    return out, run_release(out, "langid.partition_output=true")


def _header(text: str) -> str:
    assert text.startswith("---\n")
    return text.split("---\n", 2)[1]


@pytest.mark.job
def test_the_card_is_written_listed_and_validates(release):
    out, manifest = release
    data = (out / CARD).read_bytes()
    entry = next(o for o in manifest["outputs"] if o["path"] == CARD)
    assert entry == {
        "path": CARD,
        "rows": 0,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert validate_release(str(out)) == []
    assert check_output(str(out), [], overwrite=True), "a release with its card is replaceable"
    header = _header(data.decode())
    assert "path: documents/*/*.parquet" in header
    assert "path: mlm/train-*.parquet" in header and "path: mlm/validation-*.parquet" in header
    assert 'load_dataset(RELEASE, "mlm")' in data.decode() and "data_dir" not in data.decode()
    # the same manifest at another time gives the same card: created_at is never read
    shards = shard_parameters(str(out), manifest["outputs"])
    assert shards["masking"] == "static" and shards["max_seq_length"] == 64
    again = render_card({**manifest, "created_at": "2000-01-01T00:00:00+00:00"}, shards)
    assert again.encode() == data


@pytest.mark.job
def test_load_dataset_gives_the_documents_and_the_shards(release, tmp_path):
    datasets = pytest.importorskip("datasets", reason="datasets is in the train extra")
    out, manifest = release
    docs = datasets.load_dataset(str(out), cache_dir=str(tmp_path))
    assert list(docs) == ["train"]
    assert docs["train"].column_names == COLUMNS
    assert docs["train"].num_rows == manifest["counts"]["documents"]
    RELEASE = str(out)  # noqa: N806 - as the card's snippet spells it
    mlm = datasets.load_dataset(RELEASE, "mlm", cache_dir=str(tmp_path))
    assert sorted(mlm) == ["train", "validation"]
    for split in ("train", "validation"):
        shards = sorted((out / "shards").glob(f"{split}-*.arrow"))
        assert shards, f"the release has {split} shards"
        tables = [open_shard(str(path)) for path in shards]
        assert mlm[split].num_rows == sum(t.num_rows for t in tables) > 0
        assert mlm[split].column_names == tables[0].schema.names
        # the same rows, in the same order, as the Arrow shards
        first = tables[0].column("input_ids")[0].as_py()
        assert mlm[split][0]["input_ids"] == first
    assert mlm["train"].column_names[:4] == [
        "input_ids",
        "token_type_ids",
        "attention_mask",
        "special_tokens_mask",
    ]


def _expected(out: Path) -> tuple[int, dict[str, int]]:
    langs: dict[str, int] = {}
    for part in sorted((out / "documents").glob("*/*.parquet")):
        values = set(pq.read_table(part, columns=["lang"]).column("lang").to_pylist())
        assert values == {part.parent.name}, "one language per folder, named by its code"
        langs[part.parent.name] = langs.get(part.parent.name, 0) + pq.read_metadata(part).num_rows
    return sum(langs.values()), langs


@pytest.mark.job
def test_partitioned_documents_read_in_every_dataframe_library(release):
    out, manifest = release
    docs = out / "documents"
    total, langs = _expected(out)
    assert total == manifest["counts"]["documents"] and len(langs) >= 2
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_parquet(docs)
    assert list(frame.columns) == COLUMNS and len(frame) == total
    assert frame["lang"].value_counts().to_dict() == langs
    table = pq.read_table(docs)
    assert table.schema.names == COLUMNS and table.num_rows == total
    en = pq.read_table(docs, filters=[("lang", "=", "en")])
    assert en.num_rows == langs["en"]
    try:
        import polars
    except ImportError:
        polars = None
    if polars is not None:
        frame = polars.read_parquet(docs)
        assert frame.columns == COLUMNS and frame.height == total
    duckdb = pytest.importorskip("duckdb", reason="duckdb: pip install duckdb")
    query = f"select lang, count(*) from read_parquet('{docs}/**/*.parquet') group by lang"
    assert dict(duckdb.sql(query).fetchall()) == langs
    names = duckdb.sql(f"select * from read_parquet('{docs}/*/*.parquet') limit 1").columns
    assert names == COLUMNS


@pytest.mark.unit
def test_unpartitioned_documents_and_no_shards():
    outputs = [
        {"path": "documents/part-00000-of-00001.parquet", "rows": 3, "bytes": 1, "sha256": "x"},
        {"path": "drops/part-00000-of-00001.parquet", "rows": 0, "bytes": 1, "sha256": "y"},
    ]
    assert documents_pattern(outputs) == "documents/*.parquet"
    manifest = {"outputs": outputs, "counts": {"documents": 3}, "stages": [], "tokenizer": None}
    before = json.dumps(manifest)
    header = _header(render_card(manifest))
    assert "mlm" not in header and "path: documents/*.parquet" in header
    assert json.dumps(manifest) == before, "the card never changes the manifest it reads"
