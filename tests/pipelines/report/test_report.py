"""The run report: built from a real release's own files, every section that has data shown,
the rest left out, and rebuilt the same by `gristmill report`."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to
from helpers import REPO

from gristmill.pipelines.report import run as report
from gristmill.schemas.records import Document

REPO = REPO


@pytest.fixture(scope="module")
def release(tmp_path_factory, demo_run) -> Path:
    """A copy of the demo release (wiki redirects, web pages and the quality rules give drops),
    which these tests may change."""
    root = tmp_path_factory.mktemp("report") / "release"
    shutil.copytree(demo_run[0], root)
    return root


def _html(root: Path) -> str:
    report.write_run_report(str(root))
    return (root / "reports/run.html").read_text(encoding="utf-8")


def _sections(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', html)


def _with_stage_reports(root: Path, reports: dict) -> None:
    run = json.loads((root / "reports/run.json").read_text(encoding="utf-8"))
    run["stage_reports"].update(reports)
    (root / "reports/run.json").write_text(json.dumps(run), encoding="utf-8")


@pytest.mark.job
def test_report_of_a_real_release(release):
    html = _html(release)
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    sections = _sections(html)
    core = ["overview", "funnel", "drops", "lengths", "shards", "privacy", "timings", "inputs"]
    assert [s for s in sections if s in core] == core and sections[-1] == "config"
    run = json.loads((release / "reports/run.json").read_text(encoding="utf-8"))
    langs = any(k.startswith("languages/") for v in run["stage_reports"].values() for k in v)
    assert ("languages" in sections) == langs
    # the funnel names every stage with its counts
    for stage in manifest["stages"]:
        assert f'<td>{stage["name"]}</td><td class="num">{stage["in"]:,}</td>' in html
    # drop reasons come with their sources, as counted
    read = manifest["stages"][0]
    assert read["dropped"]["wiki_redirect"] > 0
    assert f"{read['name']}: drop reasons by source" in html
    assert f"wiki_redirect — wiki: {read['dropped']['wiki_redirect']:,}" in html
    # every output file is listed, and the config hash is shown
    for out in manifest["outputs"]:
        assert out["path"] in html
    assert manifest["config_sha256"] in html
    if "pii" in run["stage_reports"]:
        assert "Findings removed, by entity type" in html
    else:
        assert "The PII stage did not run" in html
    # the charts are inline SVG with bars; nothing is fetched from anywhere
    assert html.count("<svg") >= 4 and html.count("<rect") > 10
    assert "<script" not in html and not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "http://" not in html and "https://" not in html


def test_length_histogram_counts_every_document(release):
    html = _html(release)
    texts = []
    for part in sorted((release / "documents").glob("*.parquet")):
        texts += pq.read_table(part, columns=["text"]).column(0).to_pylist()
    bins = Counter(report.length_bin(len(t.encode("utf-8"))) for t in texts)
    data = report.collect(str(release))
    assert data["lengths"]["after"] == {str(k): n for k, n in sorted(bins.items())}
    before = data["lengths"]["before"]  # every document the read stage kept, before the stages
    assert before and sum(before.values()) >= len(texts)
    assert "No read-stage length histogram" not in html
    assert sum(data["lengths"]["after"].values()) == len(texts)


def test_stage_reports_get_their_sections(release, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(release, root)
    _with_stage_reports(
        root,
        {
            "read": {"length_histogram": {"0": 3, "1024": 5, "65536": 2}},
            "langid": {
                "languages/books": {"en": {"documents": 6, "bytes": 9, "kept": 6, "kept_bytes": 9}},
                "languages/wiki": {
                    "en": {"documents": 90, "bytes": 9, "kept": 90, "kept_bytes": 9},
                    "de": {"documents": 4, "bytes": 9, "kept": 0, "kept_bytes": 0},
                },
            },
            "dedup_near": {
                "cluster_sizes": {"2": 7, "3-4": 2},
                "removed_by_source": {"wiki": 11},
                "largest_clusters": [
                    {
                        "survivor": "abc123",
                        "size": 4,
                        "members": [],
                        "snippet": "Jane Roe, 12 Elm St",
                    }
                ],
                "groups": 9,
            },
            "tokenizer": {"tokenizer": {"vocab_size": 30522, "trained": True}},
            "mlm": {
                "split:train": {"tokens": 12345, "documents": 100, "unk_tokens": 3},
                "shards/train-00000-of-00001.arrow": {"rows": 10, "tokens": 12345},
            },
            "pii": {
                "sources": {
                    "mail": {
                        "documents": 26,
                        "documents_with_findings": 20,
                        "entities": {
                            "EMAIL_ADDRESS": {"findings": 10, "documents": 9},
                            "PHONE_NUMBER": {"findings": 2, "documents": 2},
                        },
                    }
                },
                "examples": {"mail": {"EMAIL_ADDRESS": ["write to <EMAIL_ADDRESS> today"]}},
                "residual": {"verdict": "pass", "pattern_findings": 0},
            },
        },
    )
    (root / "reports/privacy.json").unlink(missing_ok=True)  # the rows above speak instead
    (root / "reports/privacy.html").write_text("<html></html>")
    html = _html(root)
    for anchor in ("languages", "clusters", "lengths", "tokens", "privacy"):
        assert anchor in _sections(html)
    assert "en — wiki: 90" in html and "de — wiki: 4" in html
    assert "dedup_near: duplicate clusters by size" in html and "3-4 — " not in html
    assert '<td>abc123</td><td class="num">4</td>' in html
    assert "Jane Roe" not in html  # snippets are raw text: they stay out of the report
    assert "before (read)" in html and "after (documents/)" in html
    assert "12,345" in html and "30522" in html
    assert 'href="privacy.html"' in html and "Findings removed, by entity type" in html
    assert "EMAIL_ADDRESS: 10" in html and "<td>verdict</td><td>pass</td>" in html
    assert "write to" not in html  # examples stay in privacy.html
    assert "groups" in html  # any other row shows as a value


def test_report_without_run_json_still_renders(release, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(release, root)
    (root / "reports/run.json").unlink()
    html = _html(root)
    assert "funnel" in _sections(html) and "timings" not in _sections(html)


def test_gristmill_report_rebuilds_the_same_page(release, capsys):
    first = _html(release)
    (release / "reports/run.html").unlink()
    assert report.main([str(release)]) == 0
    assert capsys.readouterr().out.strip().endswith("reports/run.html")
    assert (release / "reports/run.html").read_text(encoding="utf-8") == first


def test_report_of_a_directory_without_manifest(tmp_path, capsys):
    assert report.main([str(tmp_path)]) == 2
    assert "not a complete release" in capsys.readouterr().err


@pytest.mark.job
def test_length_histogram_transform_emits_one_report_row():
    docs = [Document(str(i), "s", "p", "x" * n) for i, n in enumerate([10, 63, 64, 127, 128, 5000])]
    expected = [("read", "length_histogram", {"0": 2, "64": 2, "128": 1, "4096": 1})]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        rows = p | beam.Create(docs) | report.LengthHistogram("read")
        assert_that(rows, equal_to(expected))


# ---- examples per drop reason and cluster (pipelines/report/examples.py) --------------------


@pytest.mark.job
def test_one_example_per_drop_reason_the_lowest_id(release):
    from gristmill.pipelines.report.examples import drop_examples

    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    drops = pq.read_table(release / "drops").to_pylist()
    found = drop_examples(str(release), manifest)
    reasons = {(s["name"], r) for s in manifest["stages"] for r in s["dropped"]}
    assert set(found) == reasons
    for (stage, reason), row in found.items():
        lowest = min(d["id"] for d in drops if (d["stage"], d["reason"]) == (stage, reason))
        assert row["id"] == lowest
    html = _html(release)
    for (_, reason), row in found.items():
        assert f"<td>{reason}</td><td>{row['source']} · {row['id'][:12]}…</td>" in html


@pytest.mark.job
def test_duplicate_examples_show_the_kept_text_scrubbed_and_masked(release, tmp_path):
    """The survivor's text is read from documents/ and masked again: plant personal data in it
    and the report shows masks, never the values."""
    import pyarrow as pa

    root = tmp_path / "planted"
    shutil.copytree(release, root)
    drops = pq.read_table(root / "drops").to_pylist()
    dup = next(d for d in drops if "survivor=" in d["detail"])
    survivor = dup["detail"].split("survivor=")[1].split()[0]
    planted = "Write to jane.doe@example.org or call +1 (415) 555-0100, see https://x.example/a"
    for part in sorted((root / "documents").glob("*.parquet")):
        table = pq.read_table(part)
        texts = [
            planted if i == survivor else t
            for i, t in zip(table["id"].to_pylist(), table["text"].to_pylist(), strict=True)
        ]
        table = table.set_column(table.schema.get_field_index("text"), "text", pa.array(texts))
        pq.write_table(table, part)
    html = _html(root)
    assert "jane.doe" not in html and "555-0100" not in html and "x.example" not in html
    assert "Write to &lt;email&gt; or call +&lt;number&gt;, see &lt;url&gt;" in html


@pytest.mark.job
def test_tokens_per_source_and_language_and_the_validation_warning(release, tmp_path):
    root = tmp_path / "tokens"
    shutil.copytree(release, root)
    html = _html(root)
    assert "Tokens per source, by language" in html and "Tokens per language, by source" in html
    assert "Validation split:" in html and 'class="warn"' not in html
    run = json.loads((root / "reports/run.json").read_text(encoding="utf-8"))
    stage = next(s for s, keys in run["stage_reports"].items() if "validation" in keys)
    warning = "no validation split: 3 document(s) with tokens, too few"
    _with_stage_reports(
        root, {stage: {**run["stage_reports"][stage], "validation": {"warning": warning}}}
    )
    html = _html(root)
    assert f'<p class="warn" role="alert">Validation split: {warning}</p>' in html
