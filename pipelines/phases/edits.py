"""Phase 2's edits applied to the staged documents: a KEYS stage may change a document's text
(not only drop it); its staged edits are applied by id before the later stages see it.

An edit is the character spans to delete from one document's text (transforms/dedup/keyed.py:
`Edit`, `cut_spans`), the same spans the one-graph build cuts, so both give the same bytes.

Memory: the edits of every keyed folder are loaded once per worker, in `setup`, as a map from
id to the spans packed as 64-bit integers: about (id length + 90 + 16 x spans) bytes per edited
document, ~130 MB for a million edited documents, the order of what SkipListed holds for the
dropped ones. The documents themselves stream past and are never grouped.
"""

from __future__ import annotations

import dataclasses
from array import array

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines.phases.staged import ReadStaged, staged_files
from gristmill.transforms.dedup.keyed import EDITS, cut_spans, edit_from_row

NAMESPACE = "edits"


class ApplyStagedEdits(beam.DoFn):
    """Documents -> the same documents, each cut by the spans an edit names for its id."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def setup(self):
        self.spans: dict[str, bytes] = {}
        read = ReadStaged(edit_from_row)
        read.setup()
        for path in self.paths:
            for edit in read.process(path):
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


def apply_edits(docs, keyed: list[str]):
    """`docs` with the edits the phase 2 stages staged in `keyed` (their folders) applied; the
    same PCollection when no stage staged any."""
    paths = [path for path in staged_files(keyed, EDITS) if FileSystems.exists(path)]
    if not paths:
        return docs
    return docs | "ApplyEdits" >> beam.ParDo(ApplyStagedEdits(paths))
