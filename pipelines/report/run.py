"""The run report (reports/run.html): built only from what the release holds.

Everything on the page comes from the release's own files — manifest.json, reports/run.json
(stage counts, the stages' report rows, timings), reports/privacy.json, and the Parquet tables
for what no row recorded — so `gristmill report RELEASE` rebuilds it at any time, and a section
whose stage did not run is simply left out. The data is gathered in data.py, the
sections are drawn in flow.py (the documents' way through the stages) and
outputs.py (what was written and how), with the pieces of charts.py.
"""

from __future__ import annotations

import argparse
import sys

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines.report import charts as ch
from gristmill.pipelines.report import flow as report_flow
from gristmill.pipelines.report import outputs as report_outputs
from gristmill.pipelines.report.data import (  # re-exported: the job and the tests use them here
    AFTER,
    BEFORE,
    LENGTHS,
    LengthHistogram,
    collect,
    join,
    length_bin,
    read_json,
)

__all__ = [
    "AFTER",
    "BEFORE",
    "LENGTHS",
    "RUN_HTML",
    "LengthHistogram",
    "collect",
    "length_bin",
    "main",
    "read_json",
    "render",
    "write_run_report",
]

RUN_HTML = "reports/run.html"


def render(d: dict) -> str:
    drawn = [(a, draw(d)) for a, draw in (*report_flow.SECTIONS, *report_outputs.SECTIONS)]
    present = [(a, html) for a, html in drawn if html]
    nav = [(a, a.capitalize()) for a, _ in present]
    subtitle = f"{d['root']} · created {d['manifest'].get('created_at', '?')}"
    return ch.page("gristmill run report", subtitle, nav, [html for _, html in present])


def write_run_report(root: str, manifest: dict | None = None) -> None:
    """Writes reports/run.html. The release step passes the manifest it is about to write, so
    that manifest.json stays the last file of a release; `gristmill report` reads it from disk."""
    html = render(collect(root, manifest))
    with FileSystems.create(
        join(root, RUN_HTML), compression_type=CompressionTypes.UNCOMPRESSED
    ) as fh:
        fh.write(html.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    """`gristmill report RELEASE`: rebuild reports/run.html from the release's files."""
    parser = argparse.ArgumentParser(
        prog="gristmill report",
        description="Rebuild reports/run.html from a release's own files.",
        epilog="exit status: 0 written, 2 not a release",
    )
    parser.add_argument("release", help="release directory (holds manifest.json)")
    args = parser.parse_args(argv)
    try:
        write_run_report(args.release)
    except FileNotFoundError as err:
        print(f"gristmill report: {err}", file=sys.stderr)
        return 2
    print(join(args.release, RUN_HTML))
    return 0
