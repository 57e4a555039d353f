"""The pii stage's report rows of two partitions merge into the rows of the whole run."""

from __future__ import annotations

import pytest

from gristmill.transforms.pii.report_rows import (
    DocStats,
    ResidualStats,
    SummariseResidual,
    SummariseSources,
    example_rank,
    merge_row,
)

pytestmark = pytest.mark.unit


def _pick(contexts: list[str], k: int) -> list[str]:
    return sorted(contexts, key=lambda c: (example_rank(c), c))[:k]


def test_examples_merged_are_the_pick_over_both_partitions():
    left = [f"call <PHONE_NUMBER> about item {i}" for i in range(9)]
    right = [f"mail <EMAIL_ADDRESS> re: order {i}" for i in range(7)] + left[:2]  # repeats too
    a = {"web": {"PHONE_NUMBER": _pick(left, 3)}}
    b = {"web": {"PHONE_NUMBER": _pick(right, 3)}, "mail": {"IBAN_CODE": ["x <IBAN_CODE>"]}}
    merged = merge_row("examples", a, b, 3)
    assert merged["web"]["PHONE_NUMBER"] == _pick(left + right, 3)
    assert merged["mail"] == {"IBAN_CODE": ["x <IBAN_CODE>"]}


def _sources(stats: list[DocStats]) -> dict:
    fn = SummariseSources()
    acc = fn.create_accumulator()
    for s in stats:
        acc = fn.add_input(acc, s)
    return fn.extract_output(acc)


def test_sources_merged_add_counts_and_histograms_bin_by_bin():
    one = DocStats("web", 100, {"EMAIL_ADDRESS": 2}, {"EMAIL_ADDRESS": [0] * 9 + [2]}, {}, 0, False)
    two = DocStats(
        "web", 50, {"EMAIL_ADDRESS": 1}, {"EMAIL_ADDRESS": [0] * 8 + [1, 0]}, {}, 0, False
    )
    three = DocStats("mail", 10, {}, {}, {"timeout": 1}, 0, True)
    whole = _sources([one, two, three])
    assert merge_row("sources", _sources([one]), _sources([two, three]), 5) == whole
    assert whole["web"]["entities"]["EMAIL_ADDRESS"]["score_histogram"][8:] == [1, 2]


def test_residual_merged_adds_counts_and_keeps_its_settings():
    fn = SummariseResidual()
    settings = {"enabled": True, "sample_rate": 0.05, "max_rate": 0.001, "mode": "full"}

    def row(stats):
        acc = fn.create_accumulator()
        for s in stats:
            acc = fn.add_input(acc, s)
        return {**settings, **fn.extract_output(acc)}

    a = [ResidualStats("web", 100, {"EMAIL_ADDRESS": 1})]
    b = [ResidualStats("web", 40, {}), ResidualStats("mail", 7, {"PERSON": 2})]
    assert merge_row("residual", row(a), row(b), 5) == row(a + b)
    assert merge_row("config", {"threshold": 0.5}, {"threshold": 0.5}, 5) == {"threshold": 0.5}
