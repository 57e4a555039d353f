"""Phase 2's edits applied to the staged documents: a KEYS stage may change a document's text
(not only drop it); its staged edits are applied by id before the later stages see it.

An edit is the character spans to delete from one document's text (transforms/dedup/keyed.py:
`Edit`, `cut_spans`), the same spans the one-graph build cuts, so both give the same bytes.

Memory: the edits of the partition's documents (`among`: its staged documents, whose ids filter
the edit files in Arrow) are loaded once per partition, in `setup`, as a map from id to the
spans packed as 64-bit integers: about (id length + 90 + 16 x spans) bytes per edited document
of the partition, not of the corpus. The documents themselves stream past and are never
grouped.
"""

from __future__ import annotations

import dataclasses
from array import array

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines.phases.staged import id_set, read_rows, staged_files
from gristmill.transforms.dedup.keyed import EDITS, cut_spans, edit_from_row

NAMESPACE = "edits"


class ApplyStagedEdits(beam.DoFn):
    """Documents -> the same documents, each cut by the spans an edit names for its id."""

    def __init__(self, paths: list[str], among: list[str] | None = None):
        self.paths = paths
        self.among = among

    def setup(self):
        self.spans: dict[str, bytes] = {}
        among = None if self.among is None else id_set(self.among)
        for path in self.paths:
            for edit in map(edit_from_row, read_rows(path, among)):
                if edit.id in self.spans:  # never: a stage makes one edit per id
                    raise ValueError(f"two edits for document {edit.id}")
                self.spans[edit.id] = array("q", edit.spans).tobytes()
        self._applied = beam.metrics.Metrics.counter(NAMESPACE, "applied")
        self._unedited = beam.metrics.Metrics.counter(NAMESPACE, "unedited")

    def process(self, doc):
        packed = self.spans.get(doc.id)
        if packed is None:
            self._unedited.inc()
            yield doc
            return
        self._applied.inc()
        spans = array("q")
        spans.frombytes(packed)
        yield dataclasses.replace(doc, text=cut_spans(doc.text, spans))


def apply_edits(docs, keyed: list[str], among: list[str] | None = None):
    """`docs` with the edits the phase 2 stages staged in `keyed` (their folders) applied (only
    those of the ids `among`'s tables hold, if given); the same PCollection when no stage
    staged any."""
    paths = [path for path in staged_files(keyed, EDITS) if FileSystems.exists(path)]
    if not paths:
        return docs
    return docs | "ApplyEdits" >> beam.ParDo(ApplyStagedEdits(paths, among))
