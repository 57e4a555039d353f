"""The demo job end to end on the committed sample corpus, on the real FnApiRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import REPO

from gristmill.pipelines.config import load
from gristmill.pipelines.job import run_job

ROOT = REPO
DEMO = ROOT / "sample" / "demo.yaml"


def _run(tmp: Path, workers: int) -> tuple[Path, dict]:
    out = tmp / f"release-{workers}"
    # with several workers, partitions of 1 MiB: the output must not depend on either
    # and with 4, near dedup's band entries grouped 20 documents' at a time (keys.run_ranges)
    sets = [f"runner.workers={workers}"] + (
        ["runner.partition_bytes=1048576"] if workers > 1 else []
    )
    sets += ["runner.range_docs=20"] if workers == 4 else []
    cfg = load(str(DEMO), sets, output=str(out))
    return out, run_job(cfg)


@pytest.fixture(scope="module")
def demo(demo_run) -> tuple[Path, dict]:
    return demo_run


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    mp.chdir(ROOT)  # the demo job's paths are relative to the repository root
    yield mp
    mp.undo()


def test_every_source_yields_documents(demo):
    out, manifest = demo
    docs = pq.read_table(out / "documents").to_pylist()
    sources = {d["source"] for d in docs}
    assert sources == {"books", "sotu", "wiki", "web", "mail"}
    assert manifest["counts"]["documents"] == len(docs)
    web = [d for d in docs if d["source"] == "web"]
    assert any(d["url_or_path"].startswith("https://udhr.example.org/") for d in web)
    assert any("born free and equal in dignity and rights" in d["text"] for d in web)


def test_stages_balance_and_chain(demo):
    _, manifest = demo
    names = [s["name"] for s in manifest["stages"]]
    assert names == [
        "read",
        "normalize",
        "langid",
        "quality",
        "dedup_exact",
        "dedup_near",
        "dedup_paragraphs",
        "pii",
    ]
    previous = None
    for stage in manifest["stages"]:
        assert stage["in"] == stage["kept"] + sum(stage["dropped"].values()), stage["name"]
        if previous is not None:
            assert stage["in"] == previous["kept"]
        previous = stage
    assert manifest["stages"][0]["in"] == sum(i["records"] for i in manifest["inputs"])


def test_tables_match_manifest(demo):
    out, manifest = demo
    for entry in manifest["outputs"]:
        path = out / entry["path"]
        assert path.stat().st_size == entry["bytes"]
        if path.suffix == ".parquet":
            assert pq.read_metadata(path).num_rows == entry["rows"]
    assert any(o["path"].startswith("shards/train-") for o in manifest["outputs"])
    assert manifest["tokenizer"]["path"] == "tokenizer.json"
    drops = pq.read_table(out / "drops").to_pylist()
    assert len(drops) == manifest["counts"]["drops"]
    counted = {
        (s["name"], reason): n for s in manifest["stages"] for reason, n in s["dropped"].items()
    }
    seen: dict[tuple[str, str], int] = {}
    for d in drops:
        seen[(d["stage"], d["reason"])] = seen.get((d["stage"], d["reason"]), 0) + 1
    assert seen == counted
    # the PNG response is a drop of the read stage, request records are skipped, not documents
    assert ("read", "not_html") in seen
    # every drop names where its document came from (a read drop: the WARC record's URL)
    assert all(d["url_or_path"] for d in drops), [d for d in drops if not d["url_or_path"]]
    not_html = [d for d in drops if d["reason"] == "not_html"]
    assert all(d["url_or_path"].startswith("https://udhr.example.org/") for d in not_html)
    warc = next(i for i in manifest["inputs"] if i["path"].endswith("udhr.warc.gz"))
    assert warc["skipped"].get("request") == 10


def test_ids_unique_and_rows_sorted(demo):
    out, _ = demo
    for part in sorted((out / "documents").glob("*.parquet")):
        ids = pq.read_table(part, columns=["id"]).column("id").to_pylist()
        assert ids == sorted(ids)
    all_ids = pq.read_table(out / "documents", columns=["id"]).column("id").to_pylist()
    assert len(all_ids) == len(set(all_ids))


def test_manifest_written_last_with_required_fields(demo):
    out, manifest = demo
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    for key in (
        "gristmill_version",
        "schema_version",
        "config",
        "config_sha256",
        "inputs",
        "stages",
        "outputs",
        "created_at",
    ):
        assert key in manifest
    assert not (out / "_job").exists()
    assert (out / "reports" / "run.json").exists()


@pytest.mark.job
@pytest.mark.parametrize("workers", [2, 4])
def test_worker_count_byte_identical(demo, tmp_path, monkeypatch_module, workers):
    """The demo job (every stage, tokenizer and shards) on 2 and 4 worker processes, over
    partitions of 1 MiB (and with 4, phase 2's near-dedup candidates found in ranges of 20
    documents), gives the bytes of the 1-worker run in one partition; only the manifest's
    created_at differs."""
    out1, _ = demo
    out2, _ = _run(tmp_path, workers)

    def data_files(root: Path) -> list[Path]:  # every output but the reports and the manifest
        return sorted(
            p.relative_to(root)
            for p in root.rglob("*")
            if p.is_file() and "reports" not in p.parts and p.name != "manifest.json"
        )

    files1, files2 = data_files(out1), data_files(out2)
    assert files1 == files2
    assert any(rel.suffix == ".arrow" for rel in files1)
    for rel in files1:
        assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes(), rel
    m1 = (out1 / "manifest.json").read_text().splitlines()
    m2 = (out2 / "manifest.json").read_text().splitlines()
    differing = [a for a, b in zip(m1, m2, strict=True) if a != b]
    assert len(differing) == 1 and "created_at" in differing[0]


@pytest.mark.job
def test_language_partitioned_output(tmp_path, monkeypatch_module):
    out = tmp_path / "parts"
    cfg = load(
        str(DEMO),
        [
            "langid.partition_output=true",
            "quality.enabled=false",
            "pii.enabled=false",
            "mlm.enabled=false",
            "tokenizer.enabled=false",
        ],
        output=str(out),
    )
    manifest = run_job(cfg)
    folders = sorted(p.name for p in (out / "documents").iterdir())
    assert "en" in folders and "fr" in folders
    rows = 0
    for part in (out / "documents").glob("*/*.parquet"):
        langs = set(pq.read_table(part, columns=["lang"]).column("lang").to_pylist())
        assert langs == {part.parent.name}
        rows += pq.read_metadata(part).num_rows
    assert rows == manifest["counts"]["documents"]
