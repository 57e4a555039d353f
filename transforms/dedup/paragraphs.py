"""Repeated-paragraph removal (stage "dedup_paragraphs"): units of text (paragraphs, or lines)
found in at least `min_documents` documents leave every document but their survivor.

Mailing-list footers, licence blocks, cookie and navigation text repeat across thousands of
documents and survive document dedup, because each document as a whole is unique (CCNet, dolma).

Counted over hashes, never over text, in the compact-key design of the other dedup stages:
- `keys` (per document, no shuffle): each unit's 64-bit hash of its normalized form and the
  lengths of the units and separators (paragraphs_text.py), with the document's rank key;
- `on_keys`: (hash, rank key) per distinct hash of a document; a CombinePerKey counts the
  documents of each hash exactly and keeps the smallest rank key (the survivor); the hashes in
  at least `min_documents` documents meet their members in a join whose member side is streamed;
  each document then gets, by id, the hashes it loses. What it keeps is decided from the
  lengths alone: an edit (character spans to delete, keyed.Edit) or a drop `mostly_repeated`.
  In a local run's phase 2 (Beam's in-process runner, which holds every group in memory) the
  repeated hashes and their members' marks are side inputs instead, over records read again
  (`reread`): nothing groups every pair or every record.

The edits are an extra output ("edits"): a local run's phase 2 stages them and the rest applies
them by id (pipelines/phases/edits.py); in one graph `ParagraphDedup` applies them in the join
that leaves out the dropped documents. Both cut the same spans with keyed.cut_spans.

Memory: one (count, rank key) accumulator per distinct hash, combined before the shuffle; a
document's group holds its own record and at most one mark per unit of it.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from gristmill.schemas.records import Drop
from gristmill.transforms.accounting import SourceCounters
from gristmill.transforms.dedup.joins import JoinOneToMany
from gristmill.transforms.dedup.keyed import EDITS, Edit, cut_spans, keyed
from gristmill.transforms.dedup.paragraphs_params import ParagraphsParams, Rank, scanned
from gristmill.transforms.dedup.paragraphs_report import ParagraphsReport
from gristmill.transforms.dedup.paragraphs_text import kept_bytes, removed_spans, units_of
from gristmill.transforms.dedup.survivors import detail
from gristmill.transforms.stage import Cost, Needs, Rereads, Stage, StageContext

NAME = "dedup_paragraphs"
REASON = "mostly_repeated"
DOC, SURVIVES, REMOVE, DROPPED, EDIT = 0, 1, 2, 3, 4
OUTPUTS = ("drops", "edits", "stats")  # besides the kept records


class _Keys(beam.DoFn):
    """Documents -> Keyed records whose key is (rank key, Units), or None for a document of a
    kind not scanned or without a unit long enough to count."""

    def __init__(self, params: ParagraphsParams, ctx: StageContext):
        self.params = params
        self.rank = Rank(ctx)
        self.sources = scanned(params, ctx)

    def setup(self):
        self._counters = SourceCounters(NAME)

    def process(self, doc):
        if doc.source not in self.sources:
            self._counters.inc(doc.source, "kind_not_scanned")
            yield keyed(doc, None)
            return
        units = units_of(doc.text, self.params.unit, self.params.min_chars)
        counted = sum(1 for h in units.hashes if h)
        self._counters.inc(doc.source, "units", len(units.hashes))
        self._counters.inc(doc.source, "units_counted", counted)
        if not counted:
            self._counters.inc(doc.source, "no_units")
            yield keyed(doc, None)
            return
        yield keyed(doc, (self.rank(doc.source, doc.id), units))


class ParagraphKeys(beam.PTransform):
    def __init__(self, params: ParagraphsParams, ctx: StageContext):
        super().__init__()
        self.params, self.ctx = params, ctx

    def expand(self, docs):
        return docs | "Hash" >> beam.ParDo(_Keys(self.params, self.ctx))


def _pairs(by_source: bool):
    """A record -> (hash key, rank key) once per distinct counted hash of it."""

    def pairs(record):
        if record.key is None:
            return
        node, units = record.key
        for h in sorted(set(units.hashes) - {0}):
            yield ((record.source, h) if by_source else h), node

    return pairs


class _Count(beam.CombineFn):
    """(documents, smallest rank key) of one hash."""

    def create_accumulator(self):
        return (0, None)

    def add_input(self, acc, node):
        n, best = acc
        return (n + 1, node if best is None or node < best else best)

    def merge_accumulators(self, accs):
        n, best = 0, None
        for k, b in accs:
            n += k
            if b is not None and (best is None or b < best):
                best = b
        return n, best

    def extract_output(self, acc):
        return acc


def _marks(joined):
    """(hash key, (n, survivor) or None, member) -> (member id, (SURVIVES or REMOVE, hash))."""
    key, winner, node = joined
    if winner is None:
        return
    h = key[1] if isinstance(key, tuple) else key
    yield node[1], (SURVIVES if node == winner[1] else REMOVE, h)


class _Decide(beam.DoFn):
    """(id, [records, marks]) -> kept records (text bytes after the edit), drops, edits and
    report stats; the group is read in two streaming passes."""

    def __init__(self, params: ParagraphsParams):
        self.params = params
        self._counters = SourceCounters(NAME)

    def process(self, grouped):
        doc_id, values = grouped
        removed, survives, records = _tally(values)  # pass 1; records wait for pass 2, unlisted
        if not records:
            self._counters.inc("_all", "marks_without_document")
            return
        for tag, record in values:
            if tag == DOC:
                yield from self.decide(record, removed, survives, records)

    def decide(self, record, removed: set[int], survives: bool, records: int):
        """One record, given its id's marks and how many records share the id."""
        if records > 1 and removed:  # a source repeated the id: edits are by id
            self._counters.inc(record.source, "shared_id_untouched")
            yield record._replace(key=None)
            return
        yield from self._one(record, removed, survives)

    def _one(self, record, removed: set[int], survives: bool):
        source = record.source
        units = record.key[1] if record.key is not None else None
        at = {i for i, h in enumerate(units.hashes) if h in removed} if units else set()
        if not at:
            self._counters.inc(source, "survivor" if survives else "untouched")
            yield record._replace(key=None)
            return
        kept = kept_bytes(units, at)
        p = self.params
        if (kept < p.min_kept_bytes or kept < p.min_kept_share * record.nbytes) and not survives:
            self._counters.inc(source, "units_in_dropped", len(at))
            share = kept / record.nbytes if record.nbytes else 0.0
            why = detail(kept=f"{share:.3f}", removed=f"{len(at)}/{len(units.hashes)}")
            drop = Drop(record.id, source, NAME, REASON, why, record.url_or_path)
            yield beam.pvalue.TaggedOutput("drops", drop)
            yield beam.pvalue.TaggedOutput("stats", (source, (0, 1, 0, 0, record.nbytes)))
            return
        if kept < p.min_kept_bytes or kept < p.min_kept_share * record.nbytes:
            self._counters.inc(source, "kept_as_survivor")
        self._counters.inc(source, "edited")
        self._counters.inc(source, "units_removed", len(at))
        self._counters.inc(source, "bytes_removed", record.nbytes - kept)
        yield record._replace(nbytes=kept, key=None)
        yield beam.pvalue.TaggedOutput("edits", Edit(record.id, removed_spans(units, at)))
        stats = (1, 0, len(at), record.nbytes - kept, 0)
        yield beam.pvalue.TaggedOutput("stats", (source, stats))


class _DecideBySide(_Decide):
    """A record, its id's marks and the number of records of each marked id (side inputs) ->
    what _Decide makes of its group: the same decision without grouping every record."""

    def process(self, record, marks, shared):
        removed, survives, _ = _tally(marks.get(record.id, ()))
        yield from self.decide(record, removed, survives, shared.get(record.id, 1))


def _tally(values) -> tuple[set[int], bool, int]:
    """An id's tagged values -> (hashes it loses, whether it survives one, its records)."""
    removed: set[int] = set()
    survives, records = False, 0
    for tag, value in values:
        if tag == DOC:
            records += 1
        elif tag == SURVIVES:
            survives = True
        else:
            removed.add(value)
    return removed, survives, records


def _marks_by_side(pair, repeated):
    key, node = pair
    return _marks((key, repeated.get(key), node))


def _of_marked(record, marked):
    if record.id in marked:
        yield record.id, 1


def _tag(tag: int):
    return lambda kv: (kv[0], (tag, kv[1]))


class ParagraphsOnKeys(beam.PTransform):
    """Keyed records (ParagraphKeys) -> (kept records, drops, {"report", "edits"})."""

    def __init__(self, params: ParagraphsParams, ctx: StageContext):
        super().__init__()
        self.params, self.ctx = params, ctx
        # a local run's phase 2 (keys.py) sets `reread` (stage.py: Rereads)
        self.reread: Rereads | None = None

    def expand(self, keys):
        p = self.params
        pairs = keys | "Pairs" >> beam.FlatMap(_pairs(p.scope == "source"))
        counted = pairs | "Count" >> beam.CombinePerKey(_Count())
        repeated = counted | "Repeated" >> beam.Filter(lambda kv, n: kv[1][0] >= n, p.min_documents)
        if self.reread is None:
            marks = (repeated, pairs) | "Join" >> JoinOneToMany() | "Marks" >> beam.FlatMap(_marks)
            out = (
                (keys | "ById" >> beam.Map(lambda r: (r.id, (DOC, r))), marks)
                | "Flatten" >> beam.Flatten()
                | "Group" >> beam.GroupByKey()
                | "Decide" >> beam.ParDo(_Decide(p)).with_outputs(*OUTPUTS, main="kept")
            )
        else:
            out = self._decided_by_side(repeated)
        report = (out.stats, repeated) | "Report" >> ParagraphsReport(NAME, p)
        return out.kept, out.drops, {"report": report, EDITS: out.edits}

    def _decided_by_side(self, repeated):
        """Phase 2 on an in-process runner, which holds every group in memory: the repeated
        hashes, the marks of their members and the record count of each marked id are side
        inputs (the marks name only members of repeated units), and the records are read
        again past them; no grouping of every pair or every record."""
        assert self.reread is not None
        side = beam.pvalue
        marks = (
            self.reread("marks")
            | "PairsAgain" >> beam.FlatMap(_pairs(self.params.scope == "source"))
            | "MarksBySide" >> beam.FlatMap(_marks_by_side, side.AsDict(repeated))
            | "MarksById" >> beam.GroupByKey()
            | "AsTuples" >> beam.MapTuple(lambda i, marked: (i, tuple(marked)))
        )
        shared = (
            self.reread("shared")
            | "OfMarked" >> beam.FlatMap(_of_marked, side.AsDict(marks))
            | "RecordsPerId" >> beam.CombinePerKey(sum)
        )
        decide = beam.ParDo(_DecideBySide(self.params), side.AsDict(marks), side.AsDict(shared))
        return self.reread("decide") | "Decide" >> decide.with_outputs(*OUTPUTS, main="kept")


class _ApplyToDocs(beam.DoFn):
    """(id, [documents, drops, edits]) -> the documents no drop names, edited where an edit
    names them (one graph; a local run applies the staged edits in pipelines/phases/edits.py)."""

    def process(self, grouped):
        _, values = grouped
        edit = None
        for tag, value in values:
            if tag == DROPPED:
                return
            if tag == EDIT:
                edit = value
        for tag, doc in values:
            if tag == DOC:
                yield (
                    doc
                    if edit is None
                    else dataclasses.replace(doc, text=cut_spans(doc.text, edit.spans))
                )


class ParagraphDedup(beam.PTransform):
    """documents -> (kept documents, edited; drops; extras): keys, the stage on its keys, then
    the verdicts applied by id."""

    def __init__(self, keys: beam.PTransform, on_keys: beam.PTransform):
        super().__init__()
        self.keys, self.on_keys = keys, on_keys

    def expand(self, docs):
        _, drops, extras = docs | "Keys" >> self.keys | "OnKeys" >> self.on_keys
        kept = (
            (
                docs | "KeyDocs" >> beam.Map(lambda d: (d.id, (DOC, d))),
                drops | "KeyDrops" >> beam.Map(lambda d: (d.id, (DROPPED, None))),
                extras[EDITS] | "KeyEdits" >> beam.Map(lambda e: (e.id, (EDIT, e))),
            )
            | "Flatten" >> beam.Flatten()
            | "ById" >> beam.GroupByKey()
            | "Apply" >> beam.ParDo(_ApplyToDocs())
        )
        return kept, drops, {"report": extras["report"]}


def keys(params: ParagraphsParams, ctx: StageContext) -> beam.PTransform:
    return ParagraphKeys(params, ctx)


def on_keys(params: ParagraphsParams, ctx: StageContext) -> beam.PTransform:
    return ParagraphsOnKeys(params, ctx)


def build(params: ParagraphsParams, ctx: StageContext) -> beam.PTransform:
    return ParagraphDedup(keys(params, ctx), on_keys(params, ctx))


STAGE = Stage(
    name=NAME,
    section="paragraphs",
    params=ParagraphsParams,
    build=build,
    keys=keys,
    on_keys=on_keys,
    needs=Needs.KEYS,
    cost=Cost(40, 0.0, 42, 0.0),
    summary="paragraphs repeated in at least 3 documents (web, mail) removed from all but one",
)
