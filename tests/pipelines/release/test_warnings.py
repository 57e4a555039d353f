"""A stage's report row that warns reaches the manifest and the end-of-run summary."""

from gristmill.pipelines.release.manifest import warnings
from gristmill.pipelines.summary import as_json, human


def test_report_warnings_reach_the_manifest_and_the_summary():
    summary = {
        "report": [
            ["mlm", "validation", {"share": 0.0, "warning": "one document: no validation split"}],
            ["mlm", "validation_ok", {"share": 0.01, "warning": None}],
            ["langid", "languages", {"en": 3}],
        ]
    }
    found = warnings(summary)
    assert found == ["mlm: one document: no validation split"]
    manifest = {
        "stages": [],
        "counts": {"documents": 1, "drops": 0, "dead_letters": 0},
        "outputs": [],
        "inputs": [],
        "config_sha256": "x",
        "warnings": found,
    }
    assert "warning:  mlm: one document: no validation split" in human(manifest, "out/r")
    assert as_json(manifest, "out/r")["warnings"] == found
