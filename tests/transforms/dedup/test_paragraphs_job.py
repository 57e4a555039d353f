"""Repeated-paragraph removal in the whole job: the local run in phases (keys staged in phase 1,
edits staged in phase 2, cut by id in the rest) and the one-graph build of the distributed
runners write the same documents, drops and counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import check_release, read_rows, write

from gristmill.pipelines import job as job_module
from gristmill.pipelines.config import load
from gristmill.pipelines.job import run_job

FOOTER = (
    "_______________________________________________\n"
    "Example-list mailing list -- to unsubscribe visit the list's web page"
)
TOPICS = [
    "The new release of the parser handles nested quotes correctly now.",
    "Could somebody review the patch for the date handling before Friday?",
    "We measured the cache again and the hit rate went up by a third.",
    "Please remember that the server room will be closed on Monday.",
]
SETS = [
    "langid.enabled=false",
    "quality.enabled=false",
    "pii.salt=literal salt of a test",  # pii runs after the stage, on the edited texts
    "paragraphs.min_documents=3",
]


def _mail(folder: Path, i: int, body: str) -> None:
    head = f"From: someone{i}@example.org\nSubject: note {i}\nMessage-ID: <{i}@x>\n\n"
    write(folder / f"{i:03d}.eml", head + body + "\n")


def _corpus(folder: Path) -> None:
    for i, topic in enumerate(TOPICS):
        _mail(folder, i, f"{topic}\n\n{FOOTER}")
    _mail(folder, 10, FOOTER)  # nothing but the footer: dropped (unless the survivor)
    _mail(folder, 13, FOOTER)
    _mail(folder, 11, "Two messages hold this very paragraph, so it is kept.\n\nA")
    _mail(folder, 12, "Two messages hold this very paragraph, so it is kept.\n\nB")


def _run(tmp_path: Path, name: str, corpus: Path) -> tuple[Path, dict]:
    out = tmp_path / name
    cfg = load(None, SETS, cli_sources=[f"mail={corpus}/*.eml"], output=str(out))
    return out, run_job(cfg)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paragraphs_job")
    corpus = tmp / "mail"
    _corpus(corpus)
    phased = _run(tmp, "phased", corpus)
    mp = pytest.MonkeyPatch()
    mp.setattr(job_module, "is_local", lambda section: False)  # graph.build, in process
    try:
        graph = _run(tmp, "graph", corpus)
    finally:
        mp.undo()
    return phased, graph


def test_phased_and_one_graph_write_the_same_release(both):
    (a, ma), (b, mb) = both
    for out, manifest in both:
        check_release(out, manifest)
    assert ma["stages"] == mb["stages"]
    for table in ("documents", "drops"):
        assert read_rows(a, table) == read_rows(b, table)
        files_a = sorted((a / table).glob("*.parquet"))
        assert [f.read_bytes() for f in files_a] == [
            (b / table / f.name).read_bytes() for f in files_a
        ]
    run_a = json.loads((a / "reports" / "run.json").read_text())
    run_b = json.loads((b / "reports" / "run.json").read_text())
    stage = "dedup_paragraphs"
    assert run_a["stage_reports"][stage] == run_b["stage_reports"][stage]


def test_the_footer_goes_from_all_but_one_message(both):
    (out, manifest), _ = both
    texts = [d["text"] for d in read_rows(out, "documents")]
    assert sum("unsubscribe" in t for t in texts) == 1
    assert sum("Two messages hold this very paragraph" in t for t in texts) == 2
    for topic in TOPICS:
        assert sum(topic in t for t in texts) == 1
    stage = next(s for s in manifest["stages"] if s["name"] == "dedup_paragraphs")
    # the footer-only messages are dropped, unless one is the footer's survivor (lowest id)
    survivor = next(t for t in texts if "unsubscribe" in t)
    alone = not any(topic in survivor for topic in TOPICS)
    assert stage["dropped"] == {"mostly_repeated": 1 if alone else 2}
    dropped = [d for d in read_rows(out, "drops") if d["stage"] == "dedup_paragraphs"]
    names = {d["url_or_path"].rsplit("/", 1)[-1] for d in dropped}  # a footer-only message
    assert names <= {"010.eml", "013.eml"} and len(names) == len(dropped)
    assert stage["bytes_kept"] == sum(len(t.encode()) for t in texts)
    assert stage["bytes_kept"] < stage["bytes_in"]
