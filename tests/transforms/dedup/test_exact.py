"""Exact dedup: survivor rules, drop details, report, index; and both dedup stages in the whole
job on sample books, where the release accounting must still add up."""

from __future__ import annotations

import json
import random
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from helpers import REPO, check_release, run_corpus

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import Accounted
from gristmill.transforms.dedup import exact as dedup_exact
from gristmill.transforms.dedup.params import defaults
from gristmill.transforms.stage import StageContext

ROOT = REPO
SINK: dict[str, list] = {}


def _append(item, key: str) -> None:
    SINK.setdefault(key, []).append(item)


def test_exact_key_ignores_whitespace_only():
    key = dedup_exact.exact_key
    assert key("a  b\n\tc ") == key("a b c") and len(key("a b c")) == 16
    assert key("a b c") != key("A b c")
    assert key("") == key("   \n")


def docs() -> list[Document]:
    text = "It was the best of times, it was the worst of times."
    return [
        Document("a2", "web", "x", text),
        Document("a1", "web", "x", text),
        Document("a3", "books", "x", text),
        Document("b2", "books", "x", "Call me  Ishmael.\n"),
        Document("b1", "web", "x", "Call me Ishmael."),
        Document("c1", "web", "x", "call me ishmael."),  # case differs: not an exact duplicate
        Document("d1", "mail", "x", ""),
        Document("d2", "mail", "x", " \n"),
    ]


def stage(p, name: str, items: list[Document], out: Path, **section):
    cfg = defaults()
    cfg.update(section)
    ctx = StageContext("dedup_exact", str(out), 0, {})
    result = (
        p
        | f"Create{name}" >> beam.Create(items)
        | name >> Accounted("dedup_exact", dedup_exact.STAGE.build(cfg, ctx))
    )
    for part in ("kept", "drops"):
        SINK.pop(f"{name}.{part}", None)
        getattr(result, part) | f"{name}/{part}" >> beam.Map(_append, f"{name}.{part}")
    SINK.pop(f"{name}.report", None)
    result.extras["report"] | f"{name}/report" >> beam.Map(_append, f"{name}.report")
    return result


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    base = tmp_path_factory.mktemp("exact")
    shuffled = docs()
    random.Random(3).shuffle(shuffled)
    with beam.Pipeline(runner=FnApiRunner()) as p:
        stage(p, "Lowest", docs(), base / "lowest")
        stage(p, "Shuffled", shuffled, base / "shuffled")
        stage(
            p,
            "Priority",
            docs(),
            base / "priority",
            survivor="source_priority",
            source_priority=["books"],
            index={"enabled": False, "shards": 4},
        )
    return base


def outcome(name: str) -> dict[str, str]:
    out = {d.id: "kept" for d in SINK[f"{name}.kept"]}
    out.update({d.id: d.detail for d in SINK[f"{name}.drops"]})
    return out


@pytest.mark.job
def test_lowest_id_survives(exact):
    assert outcome("Lowest") == {
        "a1": "kept",
        "a2": "survivor=a1",
        "a3": "survivor=a1",
        "b1": "kept",
        "b2": "survivor=b1",
        "c1": "kept",
        "d1": "kept",
        "d2": "survivor=d1",
    }
    assert {(d.stage, d.reason) for d in SINK["Lowest.drops"]} == {
        ("dedup_exact", "exact_duplicate")
    }
    assert outcome("Shuffled") == outcome("Lowest")


def test_source_priority_then_lowest_id(exact):
    got = outcome("Priority")
    assert got["a3"] == "kept" and got["a1"] == got["a2"] == "survivor=a3"
    assert got["b2"] == "kept" and got["b1"] == "survivor=b2"
    assert got["d2"] == "survivor=d1"  # mail is not listed: lowest id among equals


def test_report_rows(exact):
    report = {key: value for stage_name, key, value in SINK["Lowest.report"]}
    assert all(row[0] == "dedup_exact" for row in SINK["Lowest.report"])
    assert report["removed_by_source"] == {"books": 2, "mail": 1, "web": 1}
    assert report["cluster_sizes"] == {"2": 2, "3-4": 1}
    assert report["groups"] == 3
    largest = report["largest_clusters"]
    assert [c["survivor"] for c in largest] == ["a1", "b1", "d1"]
    assert largest[0] == {
        "survivor": "a1",
        "size": 3,
        "members": ["a2", "a3"],
        "snippet": "It was the best of times, it was the worst of times.",
    }


def test_index_holds_kept_documents(exact):
    table = pq.read_table(sorted((exact / "lowest" / "index").glob("exact-*.parquet")))
    rows = {r["id"]: r["hash"] for r in table.to_pylist()}
    texts = {d.id: d.text for d in docs()}
    assert set(rows) == {"a1", "b1", "c1", "d1"}
    assert all(rows[i] == dedup_exact.exact_key(texts[i]).hex() for i in rows)
    for path in (exact / "lowest" / "index").glob("*.parquet"):
        assert path.read_bytes() == (exact / "shuffled" / "index" / path.name).read_bytes()


# ---- both dedup stages in the whole job ---------------------------------------------------------


@pytest.mark.job
def test_job_with_dedup_stages(tmp_path):
    books = ROOT / "sample" / "books"
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("hamlet", "macbeth", "sonnets"):
        (inputs / f"{name}.txt").write_text((books / f"{name}.txt").read_text("utf-8"), "utf-8")
    (inputs / "hamlet-copy.txt").write_text((inputs / "hamlet.txt").read_text("utf-8"), "utf-8")
    edited = (inputs / "macbeth.txt").read_text("utf-8").replace("Macbeth", "MacBeth", 40)
    (inputs / "macbeth-edited.txt").write_text(edited, "utf-8")
    out = tmp_path / "release"
    sets = ["dedup.enabled=true", "dedup.near.max_rounds=2"]
    manifest = run_corpus(out, [f"books={inputs}/*.txt"], sets)
    tables = check_release(out, manifest)
    names = [s["name"] for s in manifest["stages"]]
    assert names[-3:] == ["dedup_exact", "dedup_near", "dedup_paragraphs"]
    by_stage = {(d["stage"], d["reason"]): d for d in tables["drops"]}
    paths = {d["id"]: d["url_or_path"] for d in tables["documents"]}
    exact_drop = by_stage[("dedup_exact", "exact_duplicate")]
    near_drop = by_stage[("dedup_near", "near_duplicate")]
    assert len(tables["drops"]) == 2 and len(tables["documents"]) == 3
    survivor = exact_drop["detail"].split("=")[1]
    # the drop names where its document came from: the survivor's copy
    assert {paths[survivor], exact_drop["url_or_path"]} == {"hamlet.txt", "hamlet-copy.txt"}
    near = dict(kv.split("=") for kv in near_drop["detail"].split())
    pair = {paths[near["survivor"]], near_drop["url_or_path"]}
    assert pair == {"macbeth.txt", "macbeth-edited.txt"}
    assert float(near["jaccard"]) > 0.9
    report = json.loads((out / "reports" / "run.json").read_text())["stage_reports"]
    assert report["dedup_exact"]["removed_by_source"] == {"books": 1}
    assert report["dedup_near"]["cluster_sizes"] == {"2": 1}
    listed = {o["path"] for o in manifest["outputs"]}
    assert {"index/exact-00000-of-00004.parquet", "index/bands-00003-of-00004.parquet"} <= listed
    index = out / "index"
    rows = {
        kind: sum(pq.ParquetFile(f).metadata.num_rows for f in index.glob(f"{kind}-*.parquet"))
        for kind in ("exact", "signatures", "bands")
    }
    assert rows == {
        "exact": 4,
        "signatures": 3,
        "bands": 3 * report["dedup_near"]["params"]["bands"],
    }


def test_config_errors_name_the_key(tmp_path):
    from gristmill.pipelines.config import ConfigError, load

    source = [f"books={ROOT}/sample/books/hamlet.txt"]
    cfg = load(
        None,
        ["dedup.threshold=0.9", "dedup.near.bands=8", "dedup.near.rows=16"],
        source,
        str(tmp_path),
    )
    assert cfg.section("dedup")["near"]["bands"] == 8
    for override, message in [
        ("dedup.threshold=1.5", "dedup.threshold: must be at most 1, got 1.5"),
        ("dedup.near.bands=8", "dedup.near.bands: give both bands and rows, or neither"),
        ("dedup.survivor=oldest", "dedup.survivor: must be one of lowest_id, source_priority"),
        ("dedup.near.num_perm=0", "dedup.near.num_perm: must be at least 1, got 0"),
        ("dedup.near.shingles=3", "dedup.near.shingles: unknown key"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load(None, [override], source, str(tmp_path))
