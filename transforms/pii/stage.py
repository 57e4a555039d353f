"""The pii stage: find personal data with presidio, scrub it, record findings, feed the privacy report.

Modes (`pii.mode`): `fast` (default) finds the pattern entities (`pii.entities`: e-mail, phone,
IP, card with Luhn, US SSN, IBAN with checksum, and any other presidio pattern entity named
there) through the pre-screen; `full` adds PERSON and LOCATION (`pii.ner_entities`) from spaCy
NER for documents in `pii.ner_languages` (a document without a language label counts as
`pii.default_lang`). Findings at or above `pii.score_threshold` are replaced by the operator of
their type (`pii.operators`, else `pii.operator`): `replace` (`<EMAIL_ADDRESS>`), `mask`,
`hash` (salted HMAC) or `redact`.

Outputs: the scrubbed documents; `pii/findings-*.parquet` (doc id, source, type, offsets, score,
recognizer, HMAC of the value); report rows for `reports/privacy.*` (see `pii_report`),
including a residual scan: a deterministic sample (`pii.residual.sample_rate`, chosen by a hash
of seed and document id) of the scrubbed output is scanned again in `full` mode without the
pre-screen, and whatever is still found is counted per type.

`pii.salt` keys every HMAC. Its default is public, so hashes made with it can be reversed by
anyone who guesses the value: set it for real use, preferably as `env:VARNAME` so that the salt
itself is read from the environment and never written into the job file or the manifest.

Bad input: a recognizer that raises costs only its entity type (counted as
`pii/<source>.errors.<group>`), the document is still scrubbed by what ran; a document nothing
could scan is dropped (`pii_scan_failed`), never written unscrubbed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import apache_beam as beam
import xxhash
from apache_beam.utils.windowed_value import WindowedValue

from gristmill.schemas.records import Document, Drop
from gristmill.transforms.accounting import SourceCounters, text_bytes
from gristmill.transforms.params import as_dict
from gristmill.transforms.pii.config import PiiParams, describe, engine_settings, recorded_config
from gristmill.transforms.pii.findings import (
    FINDINGS_PREFIX,
    PiiFinding,
    finding_key,
    findings_table,
)
from gristmill.transforms.pii.hashing import DEFAULT_SALT, resolve_salt, value_hash
from gristmill.transforms.pii.report_rows import DocStats, ReportRows, ResidualStats, score_bin
from gristmill.transforms.sinks import WriteShardedParquet
from gristmill.transforms.stage import DROPPED, KEPT, Cost, Stage, StageContext

log = logging.getLogger("gristmill")

NAME = "pii"
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
        from gristmill.transforms.pii.scrub import Scrubber, operator_config

        s = self.section
        self.key = resolve_salt(s["salt"])
        self.engine = PiiEngine(engine_settings(s), with_ner=self.full or self.residual)
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
        try:
            scans = self.engine.scan_many(
                [d.text for d in docs], [d.lang for d in docs], ner=self.full
            )
        except Exception:  # the batch as a whole failed: one document at a time
            scans = []
            for d in docs:
                try:
                    scans.append(self.engine.scan_many([d.text], [d.lang], ner=self.full)[0])
                except Exception as err:
                    scans.append(err)
        return [self._finish(doc, scan) for doc, scan in zip(docs, scans, strict=True)]

    def _finish(self, doc: Document, scan) -> list:
        nbytes = text_bytes(doc.text)
        if isinstance(scan, Exception) or scan.ran == 0:
            reason = type(scan).__name__ if isinstance(scan, Exception) else "nothing ran"
            return self._failed(
                doc, nbytes, reason, {} if isinstance(scan, Exception) else scan.errors
            )
        try:
            text, pieces = self.scrubber.scrub(doc.text, scan.hits)
        except Exception as err:
            return self._failed(doc, nbytes, type(err).__name__, scan.errors)
        counts: dict[str, int] = {}
        hists: dict[str, list[int]] = {}
        out: list = []
        for h in scan.hits:
            counts[h.entity_type] = counts.get(h.entity_type, 0) + 1
            hists.setdefault(h.entity_type, [0] * 10)[score_bin(h.score)] += 1
            value = doc.text[h.start : h.end]
            digest = value_hash(self.key, h.entity_type, value)
            out.append(
                (
                    FINDINGS,
                    PiiFinding(
                        doc.id,
                        doc.source,
                        h.entity_type,
                        h.start,
                        h.end,
                        h.score,
                        h.recognizer,
                        digest,
                    ),
                )
            )
        for kind, n in sorted(counts.items()):
            self._counters.inc(doc.source, f"findings.{kind}", n)
        for group, n in sorted(scan.errors.items()):
            self._counters.inc(doc.source, f"errors.{group}", n)
        meta = dict(doc.meta)
        if counts:
            meta["pii"] = dict(sorted(counts.items()))
            self._counters.inc(doc.source, "documents_with_findings")
        kept = dataclasses.replace(doc, text=text, meta=meta)
        out.append((KEPT, kept))
        ner_bytes = nbytes if self.full and self.engine.ner_applies(doc.lang) else 0
        out.append(
            (
                STATS,
                DocStats(doc.source, nbytes, counts, hists, dict(scan.errors), ner_bytes, False),
            )
        )
        out.extend(self._examples(doc, text, pieces))
        if self.residual and _unit(self.seed, "residual", doc.id) < self.sample_rate:
            out.extend(self._residual(doc, text, pieces))
        return out

    def _failed(self, doc: Document, nbytes: int, reason: str, errors: dict) -> list:
        self._counters.inc(doc.source, "scan_failed")
        for group, n in sorted(errors.items()):
            self._counters.inc(doc.source, f"errors.{group}", n)
        drop = Drop(doc.id, doc.source, NAME, SCAN_FAILED, f"no recognizer completed ({reason})")
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
        for kind, (rank, piece) in sorted(best.items()):
            context = masked_context(text, pieces, piece, self.section["context_chars"])
            out.append((EXAMPLES, ((doc.source, kind), (rank, context))))
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
        files = out[FINDINGS] | "WriteFindings" >> WriteShardedParquet(
            self.ctx.output,
            FINDINGS_PREFIX,
            s["findings_shards"],
            findings_table,
            lambda f: f.doc_id,
            finding_key,
        )
        residual = {
            "enabled": s["residual"]["enabled"],
            "sample_rate": s["residual"]["sample_rate"],
            "mode": "full",
            "prescreen": False,
        }
        report = (out[STATS], out[EXAMPLES], out[RESIDUAL]) | "Report" >> ReportRows(
            describe(s), recorded_config(s), s["examples_per_type"], residual
        )
        return out[KEPT], out[DROPPED], {"files": files, "report": report}


def build(params: PiiParams, ctx: StageContext) -> PiiStage:
    section = as_dict(params)
    if section["salt"] == DEFAULT_SALT:
        log.warning(
            "pii: using the default salt; set pii.salt (e.g. env:GRISTMILL_PII_SALT) for real data"
        )
    if os.environ.get("GRISTMILL_PII_SALT") and section["salt"] == DEFAULT_SALT:
        log.warning(
            "pii: GRISTMILL_PII_SALT is set but pii.salt does not use it (salt: env:GRISTMILL_PII_SALT)"
        )
    return PiiStage(section, ctx)


STAGE = Stage(
    name=NAME,
    section="pii",
    params=PiiParams,
    build=build,
    cost=Cost(136, 3.2, 74, 2.8),
    recorded=recorded_config,
    report=("privacy",),
    summary="presidio recognizers find personal data; values scrubbed, findings kept as HMACs",
)
