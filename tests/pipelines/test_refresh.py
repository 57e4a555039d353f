"""Refresh: the demo release plus a new batch that repeats half of the old documents.

The parent is the session's demo release. The batch repeats every other demo SOTU address
(alternately verbatim and edited: one word in a hundred changed), adds four addresses the demo
does not hold (tests/fixtures/refresh/), and lists the demo's book files again (same path and
bytes: skipped unread). The new release must hold the four new addresses and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import REPO, check_release, read_rows, sha256_file, write

from gristmill.pipelines.config import ConfigError, load
from gristmill.schemas.mlm_shards import read_metadata
from gristmill.transforms.dedup.exact import exact_key

NEW = REPO / "tests" / "fixtures" / "refresh" / "sotu-new.jsonl"


def _edited(text: str) -> str:
    words = text.split(" ")
    for k in range(0, len(words), 100):
        words[k] += "x"
    return " ".join(words)


def _index_hashes(root: Path) -> dict[str, str]:
    return {
        row["id"]: row["hash"]
        for part in sorted((root / "index").glob("exact-*.parquet"))
        for row in pq.read_table(part).to_pylist()
    }


def _in_repo(fn):
    cwd = os.getcwd()
    os.chdir(REPO)  # the demo's paths are relative to the repository root
    try:
        return fn()
    finally:
        os.chdir(cwd)


def _refresh(parent: Path, output: Path, sources: list[dict], sets: list[str] = ()):
    from gristmill.pipelines.job import run_job

    cfg = load(
        "sample/demo.yaml",
        [f"sources={json.dumps(sources)}", f"refresh.parent={parent}", *sets],
        output=str(output),
    )
    return run_job(cfg)


@pytest.fixture(scope="module")
def refreshed(demo_run, tmp_path_factory):
    parent, _ = demo_run
    batch = tmp_path_factory.mktemp("batch")
    old = sorted(
        (d for d in read_rows(parent, "documents") if d["source"] == "sotu"), key=lambda d: d["id"]
    )
    repeats = old[::2]
    rows, expect = [], {}
    for i, doc in enumerate(repeats):
        edited = i % 2 == 1
        rows.append({"id": f"again-{i}", "text": _edited(doc["text"]) if edited else doc["text"]})
        expect[f"again-{i}"] = (doc["id"], edited)
    write(batch / "repeat.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    shutil.copy(NEW, batch / NEW.name)
    sources = [
        {"name": "batch", "kind": "articles", "paths": [str(batch)]},
        {"name": "books", "kind": "books", "paths": ["sample/books/*.txt"]},
    ]
    out = tmp_path_factory.mktemp("child") / "release"
    manifest = _in_repo(lambda: _refresh(parent, out, sources))
    return parent, out, manifest, expect


@pytest.mark.job
def test_refresh_keeps_only_new_documents(refreshed):
    parent, out, manifest, expect = refreshed
    tables = _in_repo(lambda: check_release(out, manifest))
    kept = {json.loads(d["meta"])["id"] for d in tables["documents"]}
    new_ids = {json.loads(line)["id"] for line in NEW.read_text().splitlines()}
    assert kept == new_ids

    # every repeat is dropped as already present, naming the demo document it repeats
    parent_docs = {d["id"]: d for d in read_rows(parent, "documents")}
    hashes = _index_hashes(parent)
    assert all(d["stage"] == "dedup_parent" for d in tables["drops"])
    assert len(tables["drops"]) == len(expect)
    survivors = {
        dict(kv.split("=") for kv in d["detail"].split())["survivor"]: d for d in tables["drops"]
    }
    assert set(survivors) == {pid for pid, _ in expect.values()}
    for pid, edited in expect.values():
        drop = survivors[pid]
        fields = dict(kv.split("=") for kv in drop["detail"].split())
        assert fields["release"] == "0"
        # verbatim text whose hash the index holds (the PII stage did not rewrite it): exact
        same_text = exact_key(parent_docs[pid]["text"]).hex() == hashes[pid]
        reason = "already_present_exact" if not edited and same_text else "already_present_near"
        assert drop["reason"] == reason, (pid, fields)
        if reason == "already_present_near":
            assert float(fields["jaccard"]) >= 0.8

    # the manifest says where the rest lives, and its counts add up
    section = manifest["refresh"]
    assert section["parent"] == str(parent)
    assert section["lineage"] == [str(parent)]
    stage = next(s for s in manifest["stages"] if s["name"] == "dedup_parent")
    present = section["already_present"]
    assert present["exact"] + present["near"] == len(expect) == sum(stage["dropped"].values())
    assert present["exact"] >= 1 and present["near"] >= len(expect) // 2
    read = manifest["stages"][0]
    assert read["in"] == section["documents_added"] + manifest["counts"]["drops"]
    assert section["documents_added"] == len(new_ids) == manifest["counts"]["documents"]


def test_run_report_shows_the_refresh(refreshed):
    _, out, manifest, _ = refreshed
    html = (out / "reports" / "run.html").read_text(encoding="utf-8")
    assert 'id="refresh"' in html
    assert str(manifest["refresh"]["parent"]) in html


def test_refresh_skips_inputs_already_read(refreshed):
    parent, _, manifest, _ = refreshed
    skipped = manifest["refresh"]["inputs_skipped"]
    books = sorted(str(p.relative_to(REPO)) for p in (REPO / "sample" / "books").glob("*.txt"))
    assert [s["path"] for s in skipped] == books
    parent_inputs = {
        i["path"]: i["sha256"] for i in json.loads((parent / "manifest.json").read_text())["inputs"]
    }
    assert all(parent_inputs[s["path"]] == s["sha256"] for s in skipped)
    assert not any(i["source"] == "books" for i in manifest["inputs"])
    assert manifest["refresh"]["inputs_read"] == len(manifest["inputs"]) == 2


def test_refresh_reuses_the_parent_tokenizer(refreshed):
    parent, out, manifest, _ = refreshed
    assert manifest["refresh"]["tokenizer"] == "reused"
    assert sha256_file(out / "tokenizer.json") == sha256_file(parent / "tokenizer.json")
    shards = sorted((out / "shards").glob("*.arrow"))
    assert shards
    tok = manifest["tokenizer"]["sha256"]
    assert all(read_metadata(str(s))["tokenizer_sha256"] == tok for s in shards)
    from gristmill.pipelines.tools.validate import main as validate

    assert validate([str(out)]) == 0


@pytest.mark.job
def test_refresh_of_a_refresh_meets_the_whole_lineage(refreshed, tmp_path):
    parent, child, _, expect = refreshed
    pid = next(p for p, edited in expect.values() if not edited)
    old_text = next(d["text"] for d in read_rows(parent, "documents") if d["id"] == pid)
    batch = write(
        tmp_path / "again.jsonl",
        NEW.read_text() + json.dumps({"id": "old", "text": _edited(old_text)}) + "\n",
    )
    sources = [{"name": "again", "kind": "articles", "paths": [str(batch)]}]
    out = tmp_path / "grandchild"
    manifest = _in_repo(
        lambda: _refresh(child, out, sources, ["tokenizer.enabled=false", "mlm.enabled=false"])
    )
    assert manifest["refresh"]["lineage"] == [str(child), str(parent)]
    assert manifest["counts"]["documents"] == 0
    drops = read_rows(out, "drops")
    releases = sorted(dict(kv.split("=") for kv in d["detail"].split())["release"] for d in drops)
    assert releases == ["0"] * 4 + ["1"]


def _copy(demo_run, tmp_path) -> Path:
    copy = tmp_path / "parent"
    shutil.copytree(demo_run[0], copy)
    return copy


def _prepare(parent: Path, tmp_path: Path, sets: list[str] = ()):
    from gristmill.pipelines.refresh import prepare

    cfg = load(
        "sample/demo.yaml", [f"refresh.parent={parent}", *sets], output=str(tmp_path / "out")
    )
    return cfg, prepare(cfg)


def test_parent_without_manifest_is_a_config_error(demo_run, tmp_path):
    parent = _copy(demo_run, tmp_path)
    (parent / "manifest.json").unlink()
    with pytest.raises(ConfigError, match="no manifest.json, so not a finished release"):
        _in_repo(lambda: _prepare(parent, tmp_path))


def test_parent_whose_tokenizer_does_not_match_is_a_config_error(demo_run, tmp_path):
    parent = _copy(demo_run, tmp_path)
    tok = parent / "tokenizer.json"
    tok.write_bytes(tok.read_bytes().replace(b"[MASK]", b"[MASQ]", 1))
    with pytest.raises(ConfigError, match=r"refresh.parent: .*tokenizer.json: sha256"):
        _in_repo(lambda: _prepare(parent, tmp_path))


def test_parent_without_an_index_is_a_config_error(demo_run, tmp_path):
    parent = _copy(demo_run, tmp_path)
    manifest = json.loads((parent / "manifest.json").read_text())
    manifest["outputs"] = [o for o in manifest["outputs"] if not o["path"].startswith("index/")]
    (parent / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="no dedup index"):
        _in_repo(lambda: _prepare(parent, tmp_path))


def test_parent_with_a_missing_index_file_is_a_config_error(demo_run, tmp_path):
    parent = _copy(demo_run, tmp_path)
    gone = sorted((parent / "index").glob("bands-*.parquet"))[0]
    gone.unlink()
    with pytest.raises(ConfigError, match=rf"{gone.name}: missing \(listed in manifest.json\)"):
        _in_repo(lambda: _prepare(parent, tmp_path))


def test_tokenizer_reuse_or_retrain(demo_run, tmp_path):
    parent = demo_run[0]
    cfg, plan = _in_repo(lambda: _prepare(parent, tmp_path))
    assert plan.tokenizer == "reused"
    assert cfg.section("tokenizer")["path"] == f"{parent}/tokenizer.json"
    cfg, plan = _in_repo(lambda: _prepare(parent, tmp_path, ["refresh.tokenizer=retrain"]))
    assert plan.tokenizer == "retrained"
    assert cfg.section("tokenizer")["path"] is None


def test_skip_needs_same_path_size_and_checksum(tmp_path):
    from gristmill.pipelines.refresh import Refresh
    from gristmill.transforms.sources.read import MatchedFile, file_sha256

    same = write(tmp_path / "same.txt", "unchanged text")
    edited = write(tmp_path / "edited.txt", "edited text 1")
    grown = write(tmp_path / "grown.txt", "grown text, longer now")
    consumed = {
        ("path", str(same)): (*file_sha256(str(same)), 0),
        ("path", str(edited)): (len("edited text 2"), "0" * 64, 0),  # same size, other bytes
        ("path", str(grown)): (5, "0" * 64, 1),
    }
    plan = Refresh("p", {}, ["p"], consumed, "none")
    files = {"s": [MatchedFile(str(p), p.name, p.stat().st_size) for p in (same, edited, grown)]}
    kept = plan.skip_consumed(files)
    assert [f.path for f in kept["s"]] == [str(edited), str(grown)]
    assert [s["path"] for s in plan.skipped] == [str(same)]


def test_inputs_recorded_by_hmac_are_matched_by_hmac_from_any_folder(tmp_path, monkeypatch):
    """A parent built with the pii stage records scrubbed paths and their HMACs: a refresh
    matches its inputs by the HMAC of their absolute path under the same key."""
    from gristmill.pipelines.refresh import Refresh, _consumed
    from gristmill.transforms.pii.outside import path_hmac
    from gristmill.transforms.sources.read import MatchedFile, file_sha256

    key = b"k" * 32
    same = write(tmp_path / "in" / "calls_549-480-7107.txt", "unchanged text")
    other = write(tmp_path / "in" / "other.txt", "other text")
    size, sha = file_sha256(str(same))
    monkeypatch.chdir(tmp_path)  # the parent read it by a relative path
    parent = {"inputs": [{"path": "in/calls_<PHONE_NUMBER>.txt", "bytes": size, "sha256": sha,
                          "path_hmac": path_hmac(key, "in/calls_549-480-7107.txt")}]}  # fmt: skip
    consumed = _consumed((parent,))
    assert list(consumed) == [("hmac", parent["inputs"][0]["path_hmac"])]
    monkeypatch.chdir(tmp_path / "in")  # this run names it absolutely, from elsewhere
    files = {"s": [MatchedFile(str(p), p.name, p.stat().st_size) for p in (same, other)]}
    assert Refresh("p", {}, ["p"], consumed, "none").skip_consumed(files)["s"] == files["s"]
    plan = Refresh("p", {}, ["p"], consumed, "none", key=key)
    assert plan.skip_consumed(files)["s"] == files["s"][1:]
    wrong = Refresh("p", {}, ["p"], consumed, "none", key=b"x" * 32)
    assert wrong.skip_consumed(files)["s"] == files["s"]


# ---- the parent's configuration is inherited (pipelines/recorded.py) ------------------------


def _fake_parent(tmp_path: Path, sets: list[str]) -> Path:
    """A folder whose manifest records the config of a job run with `sets` (enough for load)."""
    parent_cfg = load(None, sets, ["books=old/*.txt"], str(tmp_path / "parent"))
    parent = tmp_path / "parent"
    manifest = {"config": parent_cfg.recorded(), "tokenizer": {"path": "tokenizer.json"}}
    write(parent / "manifest.json", json.dumps(manifest))
    return parent


def test_refresh_inherits_the_parent_configuration_sources_aside(tmp_path, monkeypatch):
    monkeypatch.setenv("GM_TEST_SALT", "weekly")
    sets = ["tokenizer.enabled=true", "mlm.enabled=true", "mlm.max_seq_length=64"]
    sets += ["pii.mode=full", "pii.salt=env:GM_TEST_SALT", "dedup.threshold=0.7"]
    sets += ["quality.gopher_quality.min_words=20", "tokenizer.path=elsewhere/tokenizer.json"]
    parent = _fake_parent(tmp_path, sets)
    cfg = load(None, [f"refresh.parent={parent}"], ["articles=new/*.jsonl"], str(tmp_path / "r2"))
    assert [s.name for s in cfg.sources] == ["articles"]  # the given sources, not the parent's
    assert cfg.enabled("tokenizer") and cfg.enabled("mlm")
    assert cfg.section("mlm")["max_seq_length"] == 64
    assert cfg.section("pii")["mode"] == "full" and cfg.section("pii")["salt"] == "env:GM_TEST_SALT"
    assert cfg.section("dedup")["threshold"] == 0.7
    assert cfg.section("quality")["gopher_quality"]["min_words"] == 20
    assert cfg.section("tokenizer")["path"] is None  # the parent's own tokenizer is reused
    # no sources given: the parent's (its files already read are skipped at plan time)
    cfg = load(None, [f"refresh.parent={parent}"], output=str(tmp_path / "r2"))
    assert [s.name for s in cfg.sources] == ["books"]
    # what the command line gives wins
    cfg = load(
        None, [f"refresh.parent={parent}", "dedup.threshold=0.9"], output=str(tmp_path / "o")
    )
    assert cfg.section("dedup")["threshold"] == 0.9


def test_refresh_of_a_parent_whose_secret_was_given_by_value_asks_for_it(tmp_path):
    parent = _fake_parent(tmp_path, ["pii.salt=by-value"])
    with pytest.raises(ConfigError, match=r"^pii.salt: .*fingerprint only"):
        load(None, [f"refresh.parent={parent}"], output=str(tmp_path / "o"))


@pytest.mark.job
def test_cli_refresh_keeps_training_and_lists_what_changed(demo_run, tmp_path, caplog):
    """`gristmill refresh PARENT --source ... --output NEW`: no job file, yet the parent's
    tokenizer and shards settings hold; the one setting changed is listed and recorded."""
    import logging

    from gristmill.pipelines import cli

    parent, parent_manifest = demo_run
    out = tmp_path / "r2"
    argv = ["refresh", str(parent), "--source", f"articles={NEW}", "--output", str(out)]
    with caplog.at_level(logging.INFO, logger="gristmill"):
        code = _in_repo(
            lambda: cli.main([*argv, "--set", "dedup.threshold=0.85", "--progress", "off"])
        )
    assert code == 0
    assert "1 setting(s) differ from the parent" in caplog.text
    assert "dedup.threshold: 0.8 -> 0.85" in caplog.text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["refresh"]["config_changes"] == [
        {"key": "dedup.threshold", "was": 0.8, "now": 0.85}
    ]
    assert manifest["refresh"]["tokenizer"] == "reused"
    assert sha256_file(out / "tokenizer.json") == sha256_file(parent / "tokenizer.json")
    assert sorted((out / "shards").glob("train-*.arrow"))
    mine, theirs = manifest["config"], parent_manifest["config"]
    for key in theirs:
        if key not in ("sources", "refresh", "dedup", "tokenizer"):
            assert mine[key] == theirs[key], key
    assert {**mine["tokenizer"], "path": None} == theirs["tokenizer"]
