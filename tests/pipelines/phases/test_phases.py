"""The local job in phases: partitions, the staging area, resume after a kill."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import REPO, write

from gristmill.pipelines.config import ConfigError, load
from gristmill.pipelines.phases import local, staging
from gristmill.pipelines.phases.plan import plan_key, plan_partitions, staging_bytes
from gristmill.schemas.records import FileInfo
from gristmill.transforms.sources.read import MatchedFile


def _files(*sizes: int, source: str = "s") -> dict[str, list[MatchedFile]]:
    return {
        source: [MatchedFile(f"/in/{i:02d}.txt", f"{i:02d}.txt", n) for i, n in enumerate(sizes)]
    }


@pytest.mark.unit
def test_partitions_are_bounded_ordered_and_depend_only_on_the_files():
    files = {**_files(30, 30, 50, 10, source="a"), **_files(5, 200, source="b")}
    parts = plan_partitions(files, 64)
    assert [[(s, f.path) for s, f in p.files] for p in parts] == [
        [("a", "/in/00.txt"), ("a", "/in/01.txt")],
        [("a", "/in/02.txt"), ("a", "/in/03.txt")],  # 60 bytes: b's 5 would make 65
        [("b", "/in/00.txt")],
        [("b", "/in/01.txt")],  # larger than a partition: one of its own
    ]
    assert [p.name for p in parts] == ["p00000", "p00001", "p00002", "p00003"]
    assert parts[3].bytes == 200
    shuffled = {k: list(reversed(v)) for k, v in files.items()}
    assert plan_partitions(shuffled, 64) == parts
    assert plan_key(parts, "c1") == plan_key(plan_partitions(shuffled, 64), "c1")
    assert plan_key(parts, "c1") != plan_key(parts, "c2")
    assert plan_key(parts, "c1") != plan_key(plan_partitions(files, 100), "c1")
    assert staging_bytes(10**9) > 10**9


@pytest.mark.unit
def test_a_partition_counts_as_finished_only_if_every_file_matches(tmp_path):
    folder = tmp_path / "p00000"
    a = write(folder / "a.parquet", b"abc")
    assert not staging.finished(str(folder))
    n, sha = staging.file_digest(str(a))
    staging.mark_finished(str(folder), [FileInfo("a.parquet", 1, n, sha)])
    assert staging.finished(str(folder))
    a.write_bytes(b"abd")  # same size, other bytes
    assert not staging.finished(str(folder))
    a.unlink()
    assert not staging.finished(str(folder))
    (folder / staging.DONE).write_text("{not json")
    assert not staging.finished(str(folder))


@pytest.mark.unit
def test_staging_of_another_plan_goes_and_a_short_disk_stops_the_run(tmp_path, monkeypatch):
    out = tmp_path / "release"
    old = write(out / staging.STAGING / "0123456789abcdef" / "p00000" / "x", "old")
    keep = write(out / staging.STAGING / "feedfacefeedface" / "p00000" / "x", "keep")
    staging.keep_only(str(out), "feedfacefeedface")
    assert not old.exists() and keep.exists()

    book = write(tmp_path / "in" / "b.txt", "Call me Ishmael. " * 100)
    cfg = load(None, cli_sources=[f"books={book}"], output=str(out))
    monkeypatch.setattr(staging, "free_bytes", lambda output: 1000)
    from gristmill.pipelines.job import run_job

    with pytest.raises(
        ConfigError, match=r"^output: .* has 0\.0 GB free; staging this input needs"
    ):
        run_job(cfg)
    assert not (out / "manifest.json").exists()


@pytest.mark.job
def test_a_rerun_after_a_kill_redoes_only_unfinished_partitions(demo_run, tmp_path, monkeypatch):
    """Partitions of 1 MiB; the first run is killed after its first partition is staged; the
    rerun stages only the others and writes the bytes of an uninterrupted run."""
    from gristmill.pipelines import graph
    from gristmill.pipelines.job import run_job

    whole, _ = demo_run
    out = tmp_path / "release"
    monkeypatch.chdir(REPO)
    cfg = load("sample/demo.yaml", ["runner.partition_bytes=1048576"], output=str(out))
    job = graph.plan(cfg)
    phased = local.plan(cfg, job)
    assert len(phased.partitions) >= 3
    first = phased.partitions[0]
    local.front_item((cfg, phased.front_stages), (first, phased.folders[0]))  # then "killed"
    assert staging.finished(phased.folders[0])

    ran: list[str] = []
    real = local.run_front

    def counted(cfg, stages, part, folder):
        ran.append(part.name)
        return real(cfg, stages, part, folder)

    monkeypatch.setattr(local, "run_front", counted)
    cfg = load("sample/demo.yaml", ["runner.partition_bytes=1048576"], output=str(out))
    manifest = run_job(cfg)
    assert first.name not in ran and len(ran) == len(phased.partitions) - 1
    assert not (out / staging.STAGING).exists()
    for rel in sorted(p.relative_to(whole) for p in whole.rglob("*.parquet")):
        assert (out / rel).read_bytes() == (whole / rel).read_bytes(), rel
    assert manifest["counts"] == json.loads((whole / "manifest.json").read_text())["counts"]
    timings = json.loads((out / "reports" / "run.json").read_text())["timings"]
    assert timings["partitions"] == len(phased.partitions)
    assert set(timings["phases"]) == {"partitions", "keys", "documents", "rest"}
    assert os.path.exists(out / "manifest.json") and Path(out / "tokenizer.json").exists()


@pytest.mark.job
def test_a_rerun_redoes_only_the_documents_phase_partitions_not_finished(
    demo_run, tmp_path, monkeypatch
):
    """Phases 1 and 2 done and phase 3 done for the first partition, then "killed"; a run file
    of the second partition's phase 3 exists but is not marked finished. The rerun redoes phase
    3 for every partition but the first, and writes the bytes of an uninterrupted run."""
    from gristmill.pipelines import graph
    from gristmill.pipelines.job import run_job
    from gristmill.pipelines.phases import back, keys

    whole, _ = demo_run
    out = tmp_path / "release"
    monkeypatch.chdir(REPO)
    cfg = load("sample/demo.yaml", ["runner.partition_bytes=1048576"], output=str(out))
    job = graph.plan(cfg)
    phased = local.plan(cfg, job)
    local.run_partitions(cfg, phased, "off")
    local.run_keys(cfg, phased, "off")
    keyed = keys.stage_folders(phased.keys_folder, phased.keyed_stages)
    payload = (cfg, job, phased.back_stages, keyed)
    items = list(zip(phased.partitions, phased.folders, phased.backs, strict=True))
    back.run_back(payload, items[0])
    assert staging.finished(phased.backs[0]) and not staging.finished(phased.backs[1])
    runs = sorted(Path(back.runs_of(phased.backs[0])).rglob("*.parquet"))
    assert runs  # the partition's documents wait as sorted runs for the merge
    write(
        Path(back.runs_of(phased.backs[1])) / "documents" / "part" / "_" / "00000" / "x.parquet",
        "torn",
    )

    ran: list[str] = []
    real = back.run_back

    def counted(payload, item):
        ran.append(item[0].name)
        return real(payload, item)

    monkeypatch.setattr(back, "run_back", counted)
    cfg = load("sample/demo.yaml", ["runner.partition_bytes=1048576"], output=str(out))
    run_job(cfg)
    assert ran == [p.name for p in phased.partitions[1:]]
    for rel in sorted(p.relative_to(whole) for p in whole.rglob("*.parquet")):
        assert (out / rel).read_bytes() == (whole / rel).read_bytes(), rel
    assert not (out / staging.STAGING).exists()
