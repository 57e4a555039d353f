"""Phase 3 reads phase 2's drop and edit lists for its own partition's documents only."""

from __future__ import annotations

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from gristmill.pipelines.phases.edits import ApplyStagedEdits, apply_edits
from gristmill.pipelines.phases.staged import SkipListed, id_set, read_ids
from gristmill.schemas import tables
from gristmill.schemas.records import Document, Drop
from gristmill.transforms.dedup.keyed import Edit, edits_table


def _doc(i: str, text: str = "one two three") -> Document:
    return Document(id=i, source="s", text=text, url_or_path=f"/in/{i}.txt")


def _stage(tmp_path, ids_in_partition, dropped, edits):
    mine = tmp_path / "documents.parquet"
    pq.write_table(tables.documents_table([_doc(i) for i in ids_in_partition]), mine)
    drops = tmp_path / "drops.parquet"
    rows = [Drop(i, "s", "dedup_exact", "duplicate", "", f"/in/{i}.txt") for i in dropped]
    pq.write_table(tables.drops_table(rows), drops)
    edited = tmp_path / "edits.parquet"
    pq.write_table(edits_table([Edit(i, spans) for i, spans in edits]), edited)
    return str(mine), str(drops), str(edited)


@pytest.mark.unit
def test_lists_are_read_for_the_partitions_ids_only(tmp_path):
    mine, drops, edited = _stage(
        tmp_path, ["a", "b", "c"], ["b", "x", "y", "z"], [("c", (0, 4)), ("w", (0, 1))]
    )
    assert sorted(id_set([mine]).to_pylist()) == ["a", "b", "c"]
    assert list(read_ids(drops)) == ["b", "x", "y", "z"]
    assert list(read_ids(drops, id_set([mine]))) == ["b"]

    skip = SkipListed([drops], [mine])
    skip.setup()
    assert skip.ids == {"b"}  # not the corpus's list
    edit = ApplyStagedEdits([edited], [mine])
    edit.setup()
    assert set(edit.spans) == {"c"}


@pytest.mark.unit
def test_a_partitions_documents_lose_their_drops_and_take_their_edits(tmp_path):
    mine, drops, _ = _stage(tmp_path, ["a", "b", "c"], ["b", "x"], [("c", (0, 4)), ("w", (0, 1))])
    keyed = tmp_path / "keyed"
    keyed.mkdir()
    (tmp_path / "edits.parquet").rename(keyed / "edits-00000-of-00001.parquet")
    with beam.Pipeline() as p:
        docs = p | beam.Create([_doc("a"), _doc("b"), _doc("c")])
        kept = docs | beam.ParDo(SkipListed([drops], [mine]))
        out = apply_edits(kept, [str(keyed)], [mine]) | beam.Map(lambda d: (d.id, d.text))
        assert_that(out, equal_to([("a", "one two three"), ("c", "two three")]))
