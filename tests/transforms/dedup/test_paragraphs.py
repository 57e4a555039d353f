"""Repeated-paragraph removal: units and their hashes, what a removal keeps, and the stage on a
real Beam pipeline (removed at N documents, untouched at N-1, a document dropped when too little
remains, the survivor never dropped), in one graph and through staged keys and edits."""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import Accounted, text_bytes
from gristmill.transforms.dedup import paragraphs
from gristmill.transforms.dedup.keyed import (
    EDITS,
    cut_spans,
    edit_from_row,
    edits_table,
    keyed_from_row,
    keys_table,
)
from gristmill.transforms.dedup.paragraphs_params import ParagraphsParams
from gristmill.transforms.dedup.paragraphs_text import (
    kept_bytes,
    normalize,
    removed_spans,
    split_units,
    unit_hash,
    units_of,
)
from gristmill.transforms.stage import StageContext

FOOTER = "To unsubscribe from this list, send mail to list-request with 'leave' as the subject."
THREE = "This paragraph is in exactly three of the documents and goes from two."
KINDS = {"mail": "mail", "web": "web", "books": "books"}
SINK: dict[str, list] = {}


def test_units_split_and_join_back_exactly():
    text = "  first para\nstill first\n\n\nsecond\n \nthird\n"
    units, seps = split_units(text, "paragraph")
    assert units == ["  first para\nstill first", "second", "third\n"]
    assert seps == ["", "\n\n\n", "\n \n"]
    lines, line_seps = split_units(text, "line")
    assert lines[:2] == ["  first para", "still first"] and line_seps[1] == "\n"
    for unit in ("paragraph", "line"):
        us, ss = split_units(text, unit)
        assert "".join(s + u for s, u in zip(ss, us, strict=True)) == text


def test_normalized_hash_ignores_case_digits_punctuation_and_spacing():
    assert normalize("Call  me, ISHMAEL!\n(2024)") == "call me ishmael 0000"
    assert unit_hash("Sent on 12 May: see you", 5) == unit_hash("sent on 31 may see  you", 5)
    assert unit_hash("Thanks,", 20) == 0  # too short: never counted
    assert unit_hash("Hello world, again", 5) != unit_hash("Hello world, agai", 5)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="ab é\n\t.", max_size=30), min_size=1, max_size=8),
    st.sampled_from(["paragraph", "line"]),
    st.data(),
)
def test_cut_spans_keep_what_kept_bytes_counts(pieces, unit, data):
    text = "\n\n".join(pieces)
    units = units_of(text, unit, 1)
    n = len(units.hashes)
    removed = set(data.draw(st.lists(st.integers(0, n - 1), max_size=n)))
    out = cut_spans(text, removed_spans(units, removed))
    us, ss = split_units(text, unit)
    kept = [i for i in range(n) if i not in removed]
    expect = us[kept[0]] + "".join(ss[i] + us[i] for i in kept[1:]) if kept else ""
    assert out == expect
    assert text_bytes(out) == kept_bytes(units, removed)


def _doc(i: str, source: str, *paras: str) -> Document:
    return Document(i, source, f"path/{i}", "\n\n".join(paras))


def docs() -> list[Document]:
    """FOOTER in 4 mail/web documents, THREE in 3, one book with the footer (not scanned)."""
    return [
        _doc("m1", "mail", "Meeting moved to Thursday afternoon, same room.", FOOTER, THREE),
        _doc("m2", "mail", "The build is broken again on the main branch.", FOOTER, THREE),
        _doc("m3", "mail", FOOTER, "Thanks,"),  # all but a short unit goes: dropped
        _doc("w1", "web", "A page about the migration of birds in autumn.", FOOTER, THREE),
        _doc("w2", "web", "Only two documents hold this paragraph, so it stays.", "x"),
        _doc("w3", "web", "Only two documents hold this paragraph, so it stays.", "y"),
        _doc("b1", "books", "Chapter one begins on a cold night.", FOOTER),
    ]


def _append(item, key: str) -> None:
    SINK.setdefault(key, []).append(item)


def _collect(pcoll, key: str) -> None:
    SINK[key] = []
    pcoll | f"Sink/{key}" >> beam.Map(_append, key)


def _params(**changes) -> ParagraphsParams:
    return dataclasses.replace(ParagraphsParams(), **changes)


def _ctx() -> StageContext:
    return StageContext(paragraphs.NAME, "/unused", 0, KINDS)


def _run_one_graph(label: str, params: ParagraphsParams) -> None:
    with beam.Pipeline(runner=FnApiRunner()) as p:
        result = (
            p
            | "Create" >> beam.Create(docs())
            | label >> Accounted(paragraphs.NAME, paragraphs.build(params, _ctx()))
        )
        _collect(result.kept, f"{label}.kept")
        _collect(result.drops, f"{label}.drops")
        _collect(result.extras["report"], f"{label}.report")
        _collect(result.tallies | beam.Flatten(), f"{label}.tallies")


@pytest.fixture(scope="module")
def at_three():
    _run_one_graph("Three", _params(min_documents=3))
    return {k.split(".")[1]: v for k, v in SINK.items() if k.startswith("Three.")}


def test_removed_from_all_but_the_survivor_and_untouched_below_n(at_three):
    kept = {d.id: d.text for d in at_three["kept"]}
    assert FOOTER in kept["m1"] and THREE in kept["m1"]  # m1: the lowest id of both
    assert kept["m2"] == "The build is broken again on the main branch."
    assert kept["w1"] == "A page about the migration of birds in autumn."
    assert kept["w2"].startswith("Only two") and kept["w3"].startswith("Only two")  # 2 < 3
    assert FOOTER in kept["b1"]  # books are not scanned
    assert [(d.id, d.reason) for d in at_three["drops"]] == [("m3", "mostly_repeated")]
    assert at_three["drops"][0].detail == "kept=0.074 removed=1/2"


def test_counts_and_report_add_up(at_three):
    tallies: dict[tuple, tuple[int, int]] = {}
    for key, (n, nbytes) in at_three["tallies"]:
        have = tallies.get(key, (0, 0))
        tallies[key] = (have[0] + n, have[1] + nbytes)
    edited = sum(text_bytes(d.text) for d in at_three["kept"] if d.source == "mail")
    assert tallies[(paragraphs.NAME, "mail", "kept", "")] == (2, edited)
    assert tallies[(paragraphs.NAME, "mail", "dropped", "mostly_repeated")] == (1, 0)
    report = {key: value for _, key, value in at_three["report"]}
    assert report["repeated_units"] == 2
    assert report["by_source"]["mail"]["documents_edited"] == 1
    assert report["by_source"]["mail"]["documents_dropped"] == 1
    assert report["by_source"]["web"]["units_removed"] == 2
    assert [r["documents"] for r in report["most_repeated"]] == [4, 3]
    assert {r["survivor"] for r in report["most_repeated"]} == {"m1"}


def test_no_document_loses_a_unit_found_in_fewer_than_n():
    _run_one_graph("Four", _params(min_documents=4))
    kept = {d.id: d.text for d in SINK["Four.kept"]}
    for doc_id in ("m1", "m2", "w1"):
        assert THREE in kept[doc_id]  # in 3 documents only
    assert FOOTER not in kept["m2"] and FOOTER not in kept["w1"]
    _run_one_graph("Five", _params(min_documents=5))
    assert {d.id: d.text for d in SINK["Five.kept"]} == {
        d.id: d.text for d in docs()
    }  # nothing occurs in 5
    assert SINK["Five.drops"] == []


def test_the_survivor_is_never_dropped():
    """a1 keeps the footer's first occurrence and loses THREE to a0: kept, edited, although
    almost all of it went; every other edited document is dropped at this share."""
    items = [
        _doc("a0", "mail", THREE),
        _doc("a1", "mail", FOOTER, THREE, "A short closing line."),
        *docs(),
    ]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        got = p | beam.Create(items) | paragraphs.build(_params(min_kept_share=0.99), _ctx())
        _collect(got[0], "Survivor.kept")
        _collect(got[1], "Survivor.drops")
    kept = {d.id: d.text for d in SINK["Survivor.kept"]}
    assert kept["a0"] == THREE
    assert kept["a1"] == FOOTER + "\n\n" + "A short closing line."
    assert {d.id for d in SINK["Survivor.drops"]} == {"m1", "m2", "m3", "w1"}


def test_staged_keys_and_edits_give_the_one_graph_documents(tmp_path):
    """Phase 1 stages the keys, phase 2 runs on_keys over them read back and stages the edits,
    the rest cuts them by id: the same documents as the one-graph build."""
    params, ctx = _params(), _ctx()
    with beam.Pipeline(runner=FnApiRunner()) as p:
        made = p | "Create" >> beam.Create(docs()) | "Keys" >> paragraphs.keys(params, ctx)
        _collect(made, "Staged.keys")
    rows = keys_table(SINK["Staged.keys"]).to_pylist()
    _on_keys_both_ways(params, ctx, rows)
    assert SINK["Staged.edits"] and SINK["Staged.drops"]
    edits = {e.id: e for e in map(edit_from_row, edits_table(SINK["Staged.edits"]).to_pylist())}
    dropped = {d.id for d in SINK["Staged.drops"]}
    staged = {
        d.id: cut_spans(d.text, edits[d.id].spans) if d.id in edits else d.text
        for d in docs()
        if d.id not in dropped
    }
    _run_one_graph("Graph", params)
    assert staged == {d.id: d.text for d in SINK["Graph.kept"]}
    assert sorted(SINK["Staged.drops"]) == sorted(SINK["Graph.drops"])


def _on_keys_both_ways(params, ctx, rows) -> None:
    """on_keys over staged rows as a group-everything graph ("Staged") and in phase 2's form,
    marks as side inputs over fresh reads ("Reread"): the same kept, drops, edits, report."""
    for form in ("Staged", "Reread"):
        with beam.Pipeline(runner=FnApiRunner()) as p:
            records = p | "Records" >> beam.Create([keyed_from_row(r) for r in rows])
            inner = paragraphs.on_keys(params, ctx)
            if form == "Reread":
                inner.reread = lambda label, p=p: (
                    p | f"Again/{label}" >> beam.Create([keyed_from_row(r) for r in rows])
                )
            kept, drops, extras = records | "OnKeys" >> inner
            _collect(kept, f"{form}.kept")
            _collect(drops, f"{form}.drops")
            _collect(extras[EDITS], f"{form}.edits")
            _collect(extras["report"], f"{form}.report")
    for part in ("kept", "drops", "edits", "report"):
        assert sorted(map(repr, SINK[f"Reread.{part}"])) == sorted(
            map(repr, SINK[f"Staged.{part}"])
        )


def test_an_id_two_sources_share_is_left_alone_both_ways():
    params, ctx = _params(), _ctx()
    shared = _doc("m2", "web", "A web page that happens to share an id with a message.")
    with beam.Pipeline(runner=FnApiRunner()) as p:
        made = (
            p | "Create" >> beam.Create([*docs(), shared]) | "Keys" >> paragraphs.keys(params, ctx)
        )
        _collect(made, "Shared.keys")
    _on_keys_both_ways(params, ctx, keys_table(SINK["Shared.keys"]).to_pylist())
    untouched = [r for r in SINK["Reread.kept"] if r.id == "m2"]
    assert len(untouched) == 2  # m2 alone loses FOOTER and THREE; sharing its id, it keeps them
    assert "m2" not in {e.id for e in SINK["Reread.edits"]}
