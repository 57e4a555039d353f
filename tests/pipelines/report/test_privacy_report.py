"""reports/privacy.json and privacy.html from the rows of a real pii stage run."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from gristmill.pipelines.report.privacy import build_report, residual_summary, write_privacy_report
from gristmill.schemas.records import Document
from gristmill.transforms.params import defaults
from gristmill.transforms.params import load as load_params
from gristmill.transforms.pii import stage as pii
from gristmill.transforms.stage import StageContext

SALT = "report test salt, long enough"
DOCS = [
    ("mail", "Hi, reach me at ann.lee@example.com or +1 212 555 0143. Card 4111-1111-1111-1111."),
    ("mail", "Server 192.168.10.4 rebooted; ping ops@example.net. Ann Lee signed off."),
    ("mail", "Nothing personal in this note at all, just the weather in general terms."),
    ("web", "Support: help@example.org, phone (415) 555-0199, SSN form 536-22-8745 attached."),
    ("web", "Plain text about rivers and hills without any contact details whatsoever."),
]
RAW = [
    "ann.lee@example.com",
    "212 555 0143",
    "4111-1111-1111-1111",
    "192.168.10.4",
    "ops@example.net",
    "help@example.org",
    "(415) 555-0199",
    "536-22-8745",
]


def _write_rows(rows, path):
    Path(path).write_text(json.dumps(sorted(rows)))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, list, dict]:
    root = tmp_path_factory.mktemp("release")
    s = copy.deepcopy(defaults(pii.PiiParams))
    s.update(salt=SALT, examples_per_type=2)
    s["residual"]["sample_rate"] = 1.0
    load_params(pii.PiiParams, s)
    docs = [Document(f"d{i}", src, "p", text, "en") for i, (src, text) in enumerate(DOCS)]
    rows_path = root / "rows.json"
    with beam.Pipeline(runner=FnApiRunner()) as p:
        _, _, extras = p | beam.Create(docs) | pii.build(s, StageContext("pii", str(root), 0, {}))
        _ = (
            extras["report"]
            | beam.Map(list)
            | beam.combiners.ToList()
            | beam.Map(_write_rows, str(rows_path))
        )
    rows = [tuple(r) for r in json.loads(rows_path.read_text())]
    write_privacy_report(str(root), rows, {"pii": s})
    return root, rows, s


@pytest.mark.job
def test_report_json_counts_and_residual(release):
    root, rows, _ = release
    report = json.loads((root / "reports" / "privacy.json").read_text())
    totals = report["totals"]
    assert totals["documents"] == 5
    assert totals["documents_with_findings"] == 3
    assert totals["bytes"] == sum(len(t) for _, t in DOCS)
    by_type = totals["by_type"]
    assert by_type["EMAIL_ADDRESS"]["findings"] == 3
    assert by_type["PHONE_NUMBER"]["findings"] == 2
    assert by_type["CREDIT_CARD"]["findings"] == by_type["US_SSN"]["findings"] == 1
    assert by_type["IP_ADDRESS"]["findings"] == 1
    assert sum(by_type["EMAIL_ADDRESS"]["score_histogram"]) == 3
    assert report["sources"]["mail"]["documents"] == 3
    assert report["sources"]["web"]["entities"]["PHONE_NUMBER"]["per_mb"] > 0
    assert report["checks"] == {"findings_rows": 8, "findings_counted": 8, "findings_match": True}
    residual = report["residual"]
    # five clean documents: at 95% confidence the residual rate is only known to be < 45%
    assert residual["documents"] == 5 and residual["verdict"] == "inconclusive"
    assert residual["pattern_findings"] == 0 and residual["documents_with_pattern_findings"] == 0
    assert residual["upper_bound_95"] == round(1 - 0.05 ** (1 / 5), 6)
    assert residual["documents_needed"] == 299 and "at most 45.07%" in residual["bound"]
    scanned = report["scanned"]
    assert scanned["fields"][:2] == ["text", "url_or_path"] and scanned["mode"] == "fast"
    assert scanned["salt"]["status"].startswith("given in the job file")
    assert scanned["salt"]["fingerprint"] == report["config"]["salt"]["fingerprint"]
    assert (
        residual["findings"].get("PERSON", 0) >= 1
    )  # fast mode leaves "Ann Lee"; the scan sees it
    assert report["engine"]["spacy_model"]["version"] == "3.8.0"
    assert report["engine"]["presidio-analyzer"]


def test_report_never_holds_values_or_the_salt(release):
    root, _, _ = release
    for name in ("privacy.json", "privacy.html"):
        text = (root / "reports" / name).read_text()
        for value in [*RAW, SALT]:
            assert value not in text, (name, value)
    report = json.loads((root / "reports" / "privacy.json").read_text())
    assert SALT not in json.dumps(report)
    assert set(report["config"]["salt"]) == {"fingerprint", "default", "from_env", "source"}
    assert len(report["config"]["salt"]["fingerprint"]) == 16
    examples = report["examples"]["mail"]["EMAIL_ADDRESS"]
    assert 1 <= len(examples) <= 2 and all("<EMAIL_ADDRESS>" in e for e in examples)
    every = json.dumps(report["examples"])
    assert "Ann" not in every and "Lee" not in every  # the name fast mode left: shown as Xxx


def test_examples_are_deterministic(release):
    root, rows, s = release
    again = build_report(rows, {"pii": s})
    first = json.loads((root / "reports" / "privacy.json").read_text())
    assert again["examples"] == first["examples"]


def test_html_is_self_contained(release):
    root, _, _ = release
    page = (root / "reports" / "privacy.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<style>" in page
    for external in (
        r"\bsrc\s*=",
        r"\bhref\s*=",
        r"url\(",
        r"@import",
        r"<script",
        r"<link",
        r"https?://",
    ):
        assert not re.search(external, page, re.I), external
    assert "Residual scan" in page and ">inconclusive<" in page and "What was scanned" in page


def test_residual_verdict():
    small = residual_summary({"documents": 3, "bytes": 10, "findings": {}}, "fast", 100)
    assert small["verdict"] == "inconclusive" and "sample_rate 1 would" in small["bound"]
    big = residual_summary({"documents": 299, "bytes": 10, "findings": {}}, "fast", 29_900)
    assert big["verdict"] == "pass" and big["upper_bound_95"] <= 0.01
    failed = residual_summary(
        {"documents": 3, "bytes": 10, "findings": {"PHONE_NUMBER": 1}}, "fast"
    )
    assert failed["verdict"] == "fail" and failed["pattern_findings"] == 1
    names = residual_summary({"documents": 3, "bytes": 10, "findings": {"PERSON": 4}}, "fast")
    assert names["verdict"] == "inconclusive" and names["other_findings"] == 4 and names["note"]
    assert residual_summary({"enabled": False}, "fast")["verdict"] == "not run"


def test_upper_bound_is_clopper_pearson():
    from gristmill.pipelines.report.privacy_residual import needed_documents, upper_bound

    assert upper_bound(299, 0) < 0.01 < upper_bound(298, 0)
    assert needed_documents(0.01) == 299 and needed_documents(0.001) == 2995
    assert abs(upper_bound(100, 2) - 0.0616) < 0.0005  # the textbook value
    assert upper_bound(10, 10) == 1.0 and upper_bound(0, 0) == 1.0


def test_examples_show_shapes_not_words():
    from gristmill.transforms.pii.shapes import shaped

    context = "…Account <IBAN_CODE> I met Dr Megan Hardy at the station on 12 May…"
    out = shaped(context)
    assert out == "…Account <IBAN_CODE> I xxx Xx Xxxxx Xxxxx at the xxxxxxx on 00 May…"
    assert shaped(out) == out


@pytest.mark.job
def test_score_histograms_have_a_counted_y_axis(release):
    """Each type's histogram names what its bars count and ticks 0 and its largest bin, the
    tallest bar reaching that tick: the heights read as numbers, not just shapes."""
    root, _, _ = release
    page = (root / "reports" / "privacy.html").read_text()
    report = json.loads((root / "reports" / "privacy.json").read_text())
    cards = re.findall(r'<div class="card"><b>([^<]+)</b><br>(<svg.*?</svg>)', page)
    assert {kind for kind, _ in cards} == set(report["totals"]["by_type"])
    for kind, svg in cards:
        bins = report["totals"]["by_type"][kind]["score_histogram"]
        assert ">findings</text>" in svg and ">score</text>" in svg, kind
        ticks = re.findall(r'text-anchor="end">([\d,]+)</text>', svg)
        assert ticks[0] == "0" and ticks[-1] == f"{max(bins):,}", (kind, ticks)
        tick_y = {
            t: float(y) for y, t in re.findall(r'y="([\d.]+)" text-anchor="end">([\d,]+)<', svg)
        }
        bars = [float(y) for y in re.findall(r'<rect x="[\d.]+" y="([\d.]+)"', svg)]
        assert len(bars) == len(bins) == 10
        assert min(bars) == pytest.approx(tick_y[f"{max(bins):,}"] - 3.5), kind
        assert 'viewBox="0 0 230 ' in svg and "max-width:100%" in svg  # fits a 400 px card


@pytest.mark.job
def test_report_states_the_measured_precision_and_recall(release):
    """The bench's figures (transforms/pii/measured.json) for the run's mode and types, said to
    be measured on a labelled sample and not on the run's data."""
    from gristmill.transforms.pii.measured import MEASURED

    root, _, _ = release
    shipped = json.loads(MEASURED.read_text())
    report = json.loads((root / "reports" / "privacy.json").read_text())
    measured = report["measured"]
    assert measured["mode"] == report["mode"] == "fast"
    assert "labelled sample" in measured["note"] and "not on this run's data" in measured["note"]
    assert measured["commit"] == shipped["commit"] and measured["date"] == shipped["date"]
    expected = shipped["modes"]["fast"]
    assert set(measured["by_type"]) == set(report["scanned"]["entities"]) & set(expected)
    assert "PERSON" not in measured["by_type"]  # fast mode does not look for names
    page = (root / "reports" / "privacy.html").read_text()
    assert "Measured precision and recall (bench, labelled sample)" in page
    assert "not on this run&#x27;s data" in page
    for kind, figures in measured["by_type"].items():
        assert figures["precision"] == expected[kind]["precision"]
        assert figures["recall"] == expected[kind]["recall"]
        assert figures["values"] == expected[kind]["values"] > 0
        row = f"<tr><td>{kind}</td><td>{figures['precision']}</td><td>{figures['recall']}</td>"
        assert row in page, kind


def test_measured_figures_follow_the_mode(tmp_path):
    """Full mode quotes the name figures too; a mode never measured says so."""
    from gristmill.pipelines.report.privacy import _measured_html
    from gristmill.transforms.pii import measured

    full = measured.for_run("full", ["PERSON", "EMAIL_ADDRESS"])
    assert set(full["by_type"]) == {"PERSON", "EMAIL_ADDRESS"}
    assert full["by_type"]["PERSON"]["recall"] is not None
    missing = measured.for_run("fast", [], tmp_path / "absent.json")
    assert missing["by_type"] == {} and missing["note"] == measured.NOTE
    assert "No figures measured for mode fast" in "".join(_measured_html({"measured": missing}))
