"""Near dedup's candidate sketches in phase 2: written to files, loaded once per process."""

from __future__ import annotations

import gc

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from gristmill.transforms.dedup import sketch_store
from gristmill.transforms.dedup.sketch_store import WriteSketches


def _write(tmp_path, items) -> list[str]:
    """The items written; the paths the step yields are the files it wrote."""
    folder = tmp_path / "sk"

    def named_files(paths):
        assert sorted(paths) == sorted(str(f) for f in folder.glob("*.parquet"))

    with beam.Pipeline(runner=FnApiRunner()) as p:
        written = p | beam.Create(items) | beam.ParDo(WriteSketches(str(folder)))
        assert_that(written, named_files)
    return sorted(str(f) for f in folder.glob("*.parquet"))


@pytest.mark.unit
def test_written_sketches_load_back_by_id(tmp_path):
    items = [(f"d{i:04d}", bytes([i % 256]) * 16) for i in range(3000)]  # > one row batch
    paths = _write(tmp_path, items)
    assert paths and all(p.startswith(str(tmp_path / "sk")) for p in paths)
    assert sketch_store.load(paths) == dict(items)
    assert sketch_store.load([]) == {}


@pytest.mark.unit
def test_an_id_written_twice_keeps_one_sketch_whatever_the_order(tmp_path):
    a = _write(tmp_path / "a", [("x", b"\x02"), ("y", b"\x01")])
    b = _write(tmp_path / "b", [("x", b"\x01")])
    assert sketch_store.load(a + b) == sketch_store.load(b + a) == {"x": b"\x01", "y": b"\x01"}


@pytest.mark.unit
def test_steps_of_a_process_share_one_copy_until_none_holds_it(tmp_path):
    paths = _write(tmp_path, [("x", b"\x01")])
    first = sketch_store.shared(paths)
    assert sketch_store.shared(list(reversed(paths))) is first  # one copy
    key = tuple(sorted(paths))
    del first
    gc.collect()
    assert key not in sketch_store._LOADED  # gone with its last holder
    again = sketch_store.shared(paths)
    assert again == {"x": b"\x01"}


@pytest.mark.unit
def test_scoring_steps_read_the_files_through_a_side_input(tmp_path):
    from gristmill.transforms.dedup.lsh import Scored

    sketches = [("a", b"\x00" * 8), ("b", b"\x00" * 8), ("c", b"\xff" * 8)]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        stored = (
            p
            | "Sketches" >> beam.Create(sketches)
            | beam.ParDo(WriteSketches(str(tmp_path / "sk")))
        )
        edges = p | "Edges" >> beam.Create([((0, "a"), (1, "b")), ((0, "a"), (2, "z"))])
        scored = (edges, stored) | Scored("dedup_near", 0, by_side=True)
        out = scored | beam.Map(lambda s: (s[0][1], s[1][1], s[2]))
        assert_that(out, equal_to([("a", "b", 1.0)]))  # "z" has no sketch: left out
