"""url_or_path and meta values scrubbed by the same engine and operators as the text."""

from __future__ import annotations

from test_pii import run_dofn, section

from gristmill.schemas.records import Document
from gristmill.transforms.pii.fields import field_values, label, replaced_meta, scan_view
from gristmill.transforms.pii.hashing import value_hash

SALT = "fields test salt"


def test_scan_view_keeps_offsets_and_unglues_numbers():
    path = "calls/call_549-480-7107_ssn-536-22-8745.txt"
    view = scan_view(path)
    assert len(view) == len(path)
    assert " 549-480-7107 " in view and "ssn 536-22-8745.txt" in view


def test_every_meta_value_is_listed_with_its_place():
    meta = {"a": "x", "n": 5494807107, "small": 12, "flag": True, "l": ["y", {"k": "z"}]}
    got = field_values("p/q.txt", meta)
    assert [(label(s) if s is not None else "url_or_path", v) for s, v in got] == [
        ("url_or_path", "p/q.txt"),
        ("meta.a", "x"),
        ("meta.l[0]", "y"),
        ("meta.l[1].k", "z"),
        ("meta.n", "5494807107"),
    ]
    changed = replaced_meta(meta, [(("l", 1, "k"), "Z"), (("n",), "<P>")])
    assert changed["l"][1] == {"k": "Z"} and changed["n"] == "<P>" and meta["n"] == 5494807107


def test_url_and_meta_are_scrubbed_and_their_findings_say_where():
    doc = Document(
        "d1",
        "web",
        "https://x.example/u?mail=carla.mendes@example.com&id=7",
        "Nothing personal in the text at all.",
        "en",
        meta={"author": "zed.example@example.org", "phone": 5494807107, "tags": ["ok"]},
    )
    out = run_dofn(section(salt=SALT), [doc])
    kept = [v for vs in out.values() for v in vs if isinstance(v, Document)][0]
    assert kept.url_or_path == "https://x.example/u?mail=<EMAIL_ADDRESS>&id=7"
    assert kept.meta["author"] == "<EMAIL_ADDRESS>" and kept.meta["tags"] == ["ok"]
    # ten plain digits: found because the key names a phone (the key is the context word)
    assert kept.meta["phone"] == "<PHONE_NUMBER>"
    assert kept.meta["pii_fields"] == {"meta.author": 1, "meta.phone": 1, "url_or_path": 1}
    findings = sorted(out["findings"], key=lambda f: f.field)
    assert [f.field for f in findings] == ["meta.author", "meta.phone", "url_or_path"]
    assert "/" not in findings[0].recognizer  # the field is its own column
    key = SALT.encode()
    assert findings[1].value_hash == value_hash(key, "PHONE_NUMBER", "5494807107")
    assert (findings[1].start, findings[1].end) == (0, 10)  # offsets in the value itself
    assert findings[2].value_hash == value_hash(key, "EMAIL_ADDRESS", "carla.mendes@example.com")
    assert out["stats"][0].counts == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}


def test_paths_outside_the_stage_are_scrubbed_and_matched_by_hmac():
    from gristmill.transforms.pii.outside import path_record, scrub_strings

    s = section(salt=SALT)
    path = "in/calls_549-480-7107/ssn-536-22-8745.txt"
    assert scrub_strings(s, [path, "in/plain.txt"]) == [
        "in/calls_<PHONE_NUMBER>/ssn-<US_SSN>.txt",
        "in/plain.txt",
    ]
    record = path_record(s, path)
    assert "549" not in record["path"] and len(record["path_hmac"]) == 64
    assert path_record(s, path) == record


def test_ipv6_in_meta_and_fields_off():
    doc = Document(
        "d2", "web", "p/a.html", "Plain words.", "en", meta={"ip": "2001:db8::8a2e:370:7334"}
    )
    kept = [
        v
        for vs in run_dofn(section(salt=SALT), [doc]).values()
        for v in vs
        if isinstance(v, Document)
    ]
    assert kept[0].meta["ip"] == "<IP_ADDRESS>"
    off = run_dofn(section(salt=SALT, scan_fields=False), [doc])
    kept = [v for vs in off.values() for v in vs if isinstance(v, Document)]
    assert kept[0].meta["ip"] == "2001:db8::8a2e:370:7334" and "findings" not in off


GLUED = [
    "spamassassin easy-ham 1 00001.7c53336b37003a9286aba55d2945844c.txt",
    "record id: <20020822152545.GJ3670@jinny.ie> <3D64FB27.18538.63DEC17@localhost>",
    "call5494807107 now; id a5494807107; tel 5494807107b; 5494807107x12; 5494807107 ext 7",
    "(212)5550143a and +44 20 7946 0958y and ab 212 555 0143 cd and 02079460958 z",
]


def test_digits_glued_to_a_letter_open_no_phone_window_and_lose_nothing():
    """Hash-named files and Message-IDs: a digit run right next to a letter cannot be a phone
    number (the matcher rejects it), so it opens no window; the findings stay those of every
    recognizer run on the whole value."""
    from gristmill.transforms.pii import prescreen as pre
    from gristmill.transforms.pii.engine import EngineSettings, PiiEngine

    spans = pre.windows(GLUED[0], [pre.PHONE], 4).get(pre.PHONE, [])
    assert not any("53336" in GLUED[0][a:b] or "2945844" in GLUED[0][a:b] for a, b, _ in spans)
    engine = PiiEngine(EngineSettings(), with_ner=False)
    windowed = engine.scan_many(GLUED, ["en"] * len(GLUED), ner=False)
    whole = engine.scan_many(GLUED, ["en"] * len(GLUED), ner=False, prescreen=False)
    assert [s.hits for s in windowed] == [s.hits for s in whole]
    assert any(h.entity_type == "PHONE_NUMBER" for h in windowed[3].hits)
