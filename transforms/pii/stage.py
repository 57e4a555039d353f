"""The pii stage: find personal data with presidio, scrub it, record findings, feed the privacy report.

Modes (`pii.mode`): `fast` (default) finds the pattern entities (`pii.entities`: e-mail, phone,
IP, card with Luhn, US SSN, IBAN with checksum, and any other presidio pattern entity named
there) through the pre-screen; `full` adds PERSON and LOCATION (`pii.ner_entities`) from spaCy
NER for documents in `pii.ner_languages` (a document without a language label counts as
`pii.default_lang`). Findings at or above `pii.score_threshold` are replaced by the operator of
their type (`pii.operators`, else `pii.operator`): `replace` (`<EMAIL_ADDRESS>`), `mask`,
`hash` (salted HMAC) or `redact`.

Fields outside the text: `url_or_path` and every `meta` value are scanned by the same engine in
the same mode and scrubbed by the same operators (`fields`); every finding names its field
(`text`, `url_or_path`, `meta.author`...), and those outside the text are counted in
`meta.pii_fields`. A drop's `url_or_path` is scrubbed by the same engine where the release's
drops are written (pipelines/graph.py), not here: drops come from every stage. Report examples
show scrubbed context as word shapes (`shapes`).

Outputs: the scrubbed documents; `pii/findings-*.parquet` (doc id, source, field, type,
offsets, score, recognizer, HMAC of the value); report rows for `reports/privacy.*` (see
`pii_report`), including a residual scan: a deterministic sample (`pii.residual.sample_rate`,
chosen by a hash of seed and document id) of the scrubbed output is scanned again in `full` mode
without the pre-screen, and whatever is still found is counted per type.

`pii.salt` keys every HMAC (see `hashing`): `env:VARNAME`, or empty for the key file
`pii.salt_file` (made on first use, owner-only, outside the release). The driver makes the key
file; workers only read it, so every worker of a run uses one key. A declared demo salt
(`demo:...`) is public and said so.

Bad input: a recognizer that raises costs only its entity type (counted as
`pii/<source>.errors.<group>`), the document is still scrubbed by what ran; a document nothing
could scan is dropped (`pii_scan_failed`), never written unscrubbed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import apache_beam as beam
import xxhash
from apache_beam.utils.windowed_value import WindowedValue

from gristmill.schemas.records import Document, Drop
from gristmill.transforms.accounting import SourceCounters, text_bytes
from gristmill.transforms.params import as_dict
from gristmill.transforms.pii.config import PiiParams, describe, engine_settings, recorded_config
from gristmill.transforms.pii.fields import (
    URL_OR_PATH,
    field_values,
    label,
    replaced_meta,
    scan_text,
    shifted,
)
from gristmill.transforms.pii.findings import PiiFinding, findings_spec
from gristmill.transforms.pii.hashing import (
    DEMO_PREFIX,
    key_path,
    resolve_salt,
    value_hash,
)
from gristmill.transforms.pii.report_rows import (
    DocStats,
    ReportRows,
    ResidualStats,
    example_rank,
    merge_row,
    score_bin,
)
from gristmill.transforms.pii.shapes import shaped
from gristmill.transforms.sorted_runs import ShardedTable
from gristmill.transforms.stage import DROPPED, KEPT, Cost, Stage, StageContext

log = logging.getLogger("gristmill")

NAME = "pii"
TEXT = "text"  # the field of findings in the document's text
SCAN_FAILED = "pii_scan_failed"
FINDINGS, STATS, EXAMPLES, RESIDUAL = "findings", "stats", "examples", "residual"


def _unit(seed: int, *parts: object) -> float:
    """A number in [0, 1) from (seed, parts): the deterministic coin of sampling and examples."""
    key = ":".join(str(p) for p in (seed, *parts))
    return xxhash.xxh64_intdigest(key.encode("utf-8")) / 2**64


class PiiScrub(beam.DoFn):
    """Scans documents in batches (NER wants batches), scrubs them, emits findings and stats."""

    def __init__(self, section: dict, seed: int):
        self.section = section
        self.seed = seed
        self.full = section["mode"] == "full"
        self.residual = section["residual"]["enabled"]
        self.sample_rate = float(section["residual"]["sample_rate"])
        self.engine = None

    def setup(self):
        from gristmill.transforms.pii.engine import PiiEngine

        s = self.section
        self.key = resolve_salt(s["salt"], s["salt_file"])
        # the engine before the scrubber's module: it imports presidio without torch (lean.py)
        self.engine = PiiEngine(engine_settings(s), with_ner=self.full or self.residual)
        from gristmill.transforms.pii.scrub import Scrubber, operator_config

        options = {"mask": s["mask"], "hash_chars": s["hash_chars"]}
        self.scrubber = Scrubber(
            {k: operator_config(v, options, self.key) for k, v in s["operators"].items()},
            operator_config(s["operator"], options, self.key),
        )
        self._counters = SourceCounters(NAME)
        self._buffer: list = []
        self._chars = 0

    def start_bundle(self):
        self._buffer, self._chars = [], 0

    def process(
        self, doc: Document, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam
    ):
        self._buffer.append((doc, window, timestamp))
        self._chars += len(doc.text)
        if (
            len(self._buffer) >= self.section["batch_docs"]
            or self._chars >= self.section["batch_chars"]
        ):
            yield from self._flush()

    def finish_bundle(self):
        yield from self._flush()

    def _flush(self):
        batch, self._buffer, self._chars = self._buffer, [], 0
        if not batch:
            return
        docs = [d for d, _, _ in batch]
        for (_, window, ts), outputs in zip(batch, self._scan_batch(docs), strict=True):
            for tag, value in outputs:
                wv = WindowedValue(value, ts, [window])
                yield wv if tag == KEPT else beam.pvalue.TaggedOutput(tag, wv)

    def _scan_batch(self, docs: list[Document]) -> list[list]:
        scan_fields = self.section.get("scan_fields", True)
        fields = [field_values(d.url_or_path, d.meta) if scan_fields else [] for d in docs]
        try:
            scanned = self._scan(docs, fields)
        except Exception:  # the batch as a whole failed: one document at a time
            scanned = []
            for d, f in zip(docs, fields, strict=True):
                try:
                    scanned.append(self._scan([d], [f])[0])
                except Exception as err:
                    scanned.append((err, []))
        return [
            self._finish(doc, scan, f, fs)
            for doc, f, (scan, fs) in zip(docs, fields, scanned, strict=True)
        ]

    def _scan(self, docs: list[Document], fields: list) -> list[tuple[Any, list]]:
        """Per document: (the text's scan, its fields' scans), all in one engine call."""
        views = [scan_text(steps, v)[0] for f in fields for steps, v in f]
        langs = [d.lang for d, f in zip(docs, fields, strict=True) for _ in f]
        scans = self.engine.scan_many(
            [d.text for d in docs] + views, [d.lang for d in docs] + langs, ner=self.full
        )
        out, pos = [], len(docs)
        for i, f in enumerate(fields):
            out.append((scans[i], scans[pos : pos + len(f)]))
            pos += len(f)
        return out

    def _finding(self, doc: Document, h, value: str, where: str = TEXT) -> tuple:
        digest = value_hash(self.key, h.entity_type, value[h.start : h.end])
        finding = PiiFinding(
            doc.id, doc.source, where, h.entity_type, h.start, h.end, h.score, h.recognizer, digest
        )
        return (FINDINGS, finding)

    def _scrub_fields(self, doc: Document, fields: list, scans: list) -> tuple:
        """url_or_path and meta scrubbed: (document, findings, counts per field, hits)."""
        url, changes, out, per_field, found = doc.url_or_path, [], [], {}, []
        for (steps, value), scan in zip(fields, scans, strict=True):
            hits = shifted(scan.hits, scan_text(steps, value)[1])
            if not hits:
                continue
            new, _ = self.scrubber.scrub(value, hits)
            where = label(steps) if steps is not None else URL_OR_PATH
            per_field[where] = len(hits)
            found.extend(hits)
            out.extend(self._finding(doc, h, value, where) for h in hits)
            if steps is None:
                url = new
            else:
                changes.append((steps, new))
        meta = replaced_meta(doc.meta, changes) if changes else dict(doc.meta)
        return dataclasses.replace(doc, url_or_path=url, meta=meta), out, per_field, found

    def _finish(self, doc: Document, scan, fields: list, field_scans: list) -> list:
        nbytes = text_bytes(doc.text)
        failed = isinstance(scan, Exception) or scan.ran == 0
        failed = failed or any(fs.ran == 0 for fs in field_scans) or len(field_scans) < len(fields)
        if failed:
            reason = type(scan).__name__ if isinstance(scan, Exception) else "nothing ran"
            errors = {} if isinstance(scan, Exception) else scan.errors
            return self._failed(doc, nbytes, reason, errors)
        try:
            text, pieces = self.scrubber.scrub(doc.text, scan.hits)
            scrubbed, out, per_field, field_hits = self._scrub_fields(doc, fields, field_scans)
        except Exception as err:
            return self._failed(doc, nbytes, type(err).__name__, scan.errors)
        counts: dict[str, int] = {}
        hists: dict[str, list[int]] = {}
        for h in [*scan.hits, *field_hits]:
            counts[h.entity_type] = counts.get(h.entity_type, 0) + 1
            hists.setdefault(h.entity_type, [0] * 10)[score_bin(h.score)] += 1
        out[:0] = [self._finding(doc, h, doc.text) for h in scan.hits]
        for kind, n in sorted(counts.items()):
            self._counters.inc(doc.source, f"findings.{kind}", n)
        for group, n in sorted(scan.errors.items()):
            self._counters.inc(doc.source, f"errors.{group}", n)
        if per_field:
            self._counters.inc(doc.source, "fields_with_findings", len(per_field))
        meta = dict(scrubbed.meta)
        if counts:
            meta["pii"] = dict(sorted(counts.items()))
            self._counters.inc(doc.source, "documents_with_findings")
        if per_field:
            meta["pii_fields"] = dict(sorted(per_field.items()))
        out.append((KEPT, dataclasses.replace(scrubbed, text=text, meta=meta)))
        ner_bytes = nbytes if self.full and self.engine.ner_applies(doc.lang) else 0
        stats = DocStats(doc.source, nbytes, counts, hists, dict(scan.errors), ner_bytes, False)
        out.append((STATS, stats))
        out.extend(self._examples(doc, text, pieces))
        if self.residual and _unit(self.seed, "residual", doc.id) < self.sample_rate:
            out.extend(self._residual(doc, text, pieces))
        return out

    def _failed(self, doc: Document, nbytes: int, reason: str, errors: dict) -> list:
        self._counters.inc(doc.source, "scan_failed")
        for group, n in sorted(errors.items()):
            self._counters.inc(doc.source, f"errors.{group}", n)
        why = f"no recognizer completed ({reason})"
        drop = Drop(doc.id, doc.source, NAME, SCAN_FAILED, why, doc.url_or_path)
        return [
            (DROPPED, drop),
            (STATS, DocStats(doc.source, nbytes, {}, {}, dict(errors), 0, True)),
        ]

    def _examples(self, doc: Document, text: str, pieces) -> list:
        """Per entity type, the document's candidate example: the finding with the smallest
        (seed, id, offset) hash, as a context in which every replaced span is a placeholder."""
        if not pieces or not self.section["examples_per_type"]:
            return []
        best: dict[str, tuple[float, Any]] = {}
        for p in pieces:
            rank = _unit(self.seed, "example", doc.id, p.in_start)
            if p.entity_type not in best or rank < best[p.entity_type][0]:
                best[p.entity_type] = (rank, p)
        out = []
        for kind, (_, piece) in sorted(best.items()):
            context = shaped(masked_context(text, pieces, piece, self.section["context_chars"]))
            out.append((EXAMPLES, ((doc.source, kind), (example_rank(context), context))))
        return out

    def _residual(self, doc: Document, text: str, pieces) -> list:
        """The scrubbed text scanned again, `full` mode, no pre-screen; our own replacements
        are not findings."""
        try:
            scan = self.engine.scan_many([text], [doc.lang], ner=True, prescreen=False)[0]
        except Exception:
            self._counters.inc(doc.source, "errors.residual")
            return []
        counts: dict[str, int] = {}
        for h in scan.hits:
            if any(h.start < p.out_end and p.out_start < h.end for p in pieces):
                continue
            counts[h.entity_type] = counts.get(h.entity_type, 0) + 1
        for kind, n in sorted(counts.items()):
            self._counters.inc(doc.source, f"residual.{kind}", n)
        return [(RESIDUAL, ResidualStats(doc.source, text_bytes(text), counts))]


def masked_context(text: str, pieces, piece, chars: int) -> str:
    """`chars` characters either side of a replacement, every replacement shown as <TYPE>."""
    lo, hi = max(0, piece.out_start - chars), min(len(text), piece.out_end + chars)
    parts, pos = [], lo
    for p in pieces:
        if p.out_end <= lo or p.out_start >= hi:
            continue
        parts.append(text[pos : max(pos, p.out_start)])
        parts.append(f"<{p.entity_type}>")
        pos = max(pos, p.out_end)
    parts.append(text[pos:hi])
    context = " ".join("".join(parts).split())
    return ("…" if lo > 0 else "") + context + ("…" if hi < len(text) else "")


class PiiStage(beam.PTransform):
    def __init__(self, section: dict, ctx: StageContext):
        super().__init__()
        self.section = section
        self.ctx = ctx

    def expand(self, docs):
        s = self.section
        out = docs | "Scan" >> beam.ParDo(PiiScrub(s, self.ctx.seed)).with_outputs(
            DROPPED, FINDINGS, STATS, EXAMPLES, RESIDUAL, main=KEPT
        )
        spec = findings_spec(s["findings_shards"])
        files = out[FINDINGS] | "WriteFindings" >> ShardedTable(
            self.ctx.output, self.ctx.spill, spec
        )
        residual = {
            "enabled": s["residual"]["enabled"],
            "sample_rate": s["residual"]["sample_rate"],
            "max_rate": s["residual"]["max_rate"],
            "mode": "full",
            "prescreen": False,
        }
        report = (out[STATS], out[EXAMPLES], out[RESIDUAL]) | "Report" >> ReportRows(
            describe(s), recorded_config(s), s["examples_per_type"], residual
        )
        return out[KEPT], out[DROPPED], {"files": files, "report": report}


def build(params: PiiParams, ctx: StageContext) -> PiiStage:
    section = as_dict(params)
    salt = section["salt"]
    resolve_salt(salt, section["salt_file"], create=True)  # the key file, made once, here
    if not salt:
        _check_key_outside(section["salt_file"], ctx.output)
    if salt.startswith(DEMO_PREFIX):
        log.warning("pii: the demo salt is public; HMACs made with it can be reversed")
    if os.environ.get("GRISTMILL_PII_SALT") and not salt:
        log.warning(
            "pii: GRISTMILL_PII_SALT is set but pii.salt does not use it (salt: env:GRISTMILL_PII_SALT)"
        )
    return PiiStage(section, ctx)


def findings_tables(params: PiiParams, ctx: StageContext) -> list:
    return [findings_spec(params.findings_shards)]


def merge_report(params: PiiParams, key: str, a: Any, b: Any) -> Any:
    return merge_row(key, a, b, params.examples_per_type)


def _check_key_outside(salt_file: str, output: str) -> None:
    """The key file must not be part of the release (it would publish the key)."""
    if "://" in output:
        return
    key = key_path(salt_file).resolve()
    out = Path(output).resolve()
    if key == out or out in key.parents:
        raise ValueError(f"pii.salt_file: {salt_file} is inside the output; keep it outside")


STAGE = Stage(
    name=NAME,
    section="pii",
    params=PiiParams,
    build=build,
    cost=Cost(136, 3.2, 74, 2.8),
    recorded=recorded_config,
    report=("privacy",),
    tables=findings_tables,
    merge_report=merge_report,
    summary="presidio recognizers find personal data; values scrubbed, findings kept as HMACs",
)
