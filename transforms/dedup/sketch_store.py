"""The candidates' sketches in a local run's near dedup: staged as files, loaded once per process.

Phase 2 runs near dedup's verdicts on Beam's in-process runner, and two of its steps score edges
against the sketches of every candidate node (Verified, then ScoreRoot). As a Beam side input
(`AsDict`) each step decoded its own copy beside the runner's encoded one: on a 2 GB corpus,
27k sketches of 2 KB took 99 MB decoded and 89 MB encoded. Here they are written to Parquet files
under the stage's spill folder, the steps take only the files' paths as a side input, and the
first step that scores loads them into one dict that every step of the process shares while one
of them holds it (`shared`); it goes with the last step that holds it.
"""

from __future__ import annotations

import posixpath
import threading
import uuid
import weakref

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from gristmill.transforms.sinks import parquet_file

SCHEMA = pa.schema([("id", pa.string()), ("sketch", pa.binary())])
ROWS = 1024  # rows held before they are written


class WriteSketches(beam.DoFn):
    """(id, sketch) -> one Parquet file per bundle under `folder`; yields each file's path."""

    def __init__(self, folder: str):
        self.folder = folder

    def setup(self):
        self.token, self.seq = uuid.uuid4().hex, 0

    def start_bundle(self):
        self.rows: list = []
        self.path, self.fh, self.writer = None, None, None

    def process(self, item):
        self.rows.append(item)
        if len(self.rows) >= ROWS:
            self._flush()

    def finish_bundle(self):
        self._flush()
        if self.writer is None:
            return
        self.writer.close()
        self.fh.close()
        self.seq += 1
        yield WindowedValue(self.path, MIN_TIMESTAMP, [GlobalWindow()])

    def _flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None:
            self.path = posixpath.join(self.folder, f"{self.token}-{self.seq:06d}.parquet")
            if "://" not in self.path and not FileSystems.exists(self.folder):
                FileSystems.mkdirs(self.folder)
            self.fh = FileSystems.create(self.path, compression_type=CompressionTypes.UNCOMPRESSED)
            self.writer = pq.ParquetWriter(self.fh, SCHEMA)
        ids, sketches = zip(*self.rows, strict=True)
        self.writer.write_table(pa.table([list(ids), list(sketches)], schema=SCHEMA))
        self.rows = []


class Sketches(dict):
    """id -> sketch bytes (a dict that can be referenced weakly)."""


_LOCK = threading.Lock()
_LOADED: dict[tuple[str, ...], weakref.ref] = {}


def load(paths: list[str]) -> Sketches:
    """The sketches the files hold, by id."""
    out = Sketches()
    for path in sorted(paths):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for batch in parquet_file(fh).iter_batches(batch_size=ROWS):
                ids, sketches = batch.column(0).to_pylist(), batch.column(1).to_pylist()
                for i, sketch in zip(ids, sketches, strict=True):
                    have = out.get(i)  # an id two sources share: the same pick in any order
                    out[i] = sketch if have is None else min(have, sketch)
    return out


def shared(paths: list[str]) -> Sketches:
    """The files' sketches, loaded once in this process while some holder keeps them."""
    key = tuple(sorted(paths))
    with _LOCK:
        ref = _LOADED.get(key)
        got = ref() if ref is not None else None
        if got is None:
            got = load(list(key))
            _LOADED[key] = weakref.ref(got, lambda _, k=key: _LOADED.pop(k, None))
        return got
