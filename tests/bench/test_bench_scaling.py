"""bench/scaling.py's pure helpers: the figures are only as good as these."""

from __future__ import annotations

import pytest

from bench import scaling

WIKI = (
    "<mediawiki>\n  <siteinfo/>\n"
    "  <page>\n    <title>A</title>\n  </page>\n"
    "  <page>\n    <title>B</title>\n  </page>\n"
    "  <page>\n    <title>C</title>\n  </page>\n"
    "</mediawiki>\n"
)


def test_split_wiki_keeps_a_valid_export_of_any_subset():
    head, pages, tail = scaling.split_wiki(WIKI)
    assert head + "".join(pages) + tail == WIKI
    assert [p.count("<page>") for p in pages] == [1, 1, 1]
    assert "<title>B</title>" in pages[1]
    assert tail == "</mediawiki>\n"


def test_closest_picks_the_file_nearest_the_fraction_of_the_group():
    sizes = {"a": 10, "b": 95, "c": 400, "d": 495}
    assert scaling.closest(sizes, 0.1) == "b"  # a tenth of 1000
    assert scaling.closest(sizes, 0.5) == "d"


@pytest.mark.parametrize(
    "worker",
    [
        ["/venv/bin/python", "-m", "apache_beam.runners.worker.sdk_worker_main"],
        ["/venv/bin/python", "-c", "from multiprocessing.spawn import spawn_main; spawn_main()"],
    ],
)
def test_roles_tell_workers_from_their_shell_wrappers(worker):
    shell = ["/bin/sh", "-c", " ".join(worker)]
    assert scaling.role(worker, False) == "worker"
    assert scaling.role(shell, False) == "other"
    assert scaling.role(worker, True) == "driver"
    assert scaling.role(["/venv/bin/python", "-m", "gristmill"], False) == "other"


def test_sampled_bytes_scale_the_sampled_mean_to_every_element():
    from apache_beam.metrics import monitoring_infos as mi
    from apache_beam.metrics.cells import DistributionData

    infos = [
        mi.int64_counter(mi.ELEMENT_COUNT_URN, 1000, pcollection="p"),
        mi.int64_distribution(
            mi.SAMPLED_BYTE_SIZE_URN, DistributionData(500, 50, 5, 20), pcollection="p"
        ),
        mi.int64_counter(mi.ELEMENT_COUNT_URN, 7, pcollection="other"),
    ]
    assert scaling.sampled_bytes(infos, {"p"}) == {"p": (1000, pytest.approx(10_000))}


def _run(mb: float, seconds: float, cpu: float, driver: float, workers: list[float]) -> dict:
    return {
        "input_bytes": int(mb * 1e6),
        "documents": 1,
        "load_1m": 2.0,
        "seconds": seconds,
        "cpu_s": cpu,
        "stage_seconds": {"read": seconds / 4, "dedup_near": seconds / 2},
        "driver_peak_mb": driver,
        "peaks": {"driver": [driver], "worker": workers},
        "shuffle": [{"gbk": "G", "elements": 3, "bytes": int(mb * 2e6), "sampled_estimate": 1}],
    }


def test_summarize_ratios_and_the_marginal_rate():
    out = scaling.summarize(
        {
            ("1x", 1): _run(5, 50, 50, 800, []),
            ("1x", 2): _run(5, 40, 60, 600, [700, 710]),
            ("10x", 2): _run(50, 130, 150, 900, [750, 781]),
        }
    )
    assert out["speedup_2w_over_1w"] == 1.25
    assert out["marginal_2w"] == {"mb_per_s": 0.5, "mb_per_cpu_s": 0.5}
    assert out["worker_peak_10x_over_1x"] == 1.1
    assert out["driver_peak_10x_over_1x"] == 1.5
    assert out["runs"][0]["worker_peaks_mb"] == "in driver"
    assert out["shuffle"]["10x"]["per_input_byte"] == 2.0
    assert out["per_stage_mb_per_core_s"][0] == {
        "stage": "read",
        "1x 1w": 0.4,
        "1x 2w": 0.5,
        "10x 2w": 1.54,
    }
