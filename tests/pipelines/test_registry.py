"""The stage registry: a new stage is one module and one registry line, and shows up in the
manifest, the drops, the run report and the live progress with no other edit."""

from __future__ import annotations

import io
import json
import os

import pyarrow.parquet as pq
import pytest
from helpers import REPO, check_release

from gristmill.pipelines import registry
from gristmill.pipelines.config import ConfigError, load
from gristmill.transforms.stage import Needs


@pytest.fixture
def with_toy(monkeypatch):
    import toy_stage

    # the one registry line: after quality, before dedup
    stages = list(registry.STAGES)
    stages.insert(stages.index(registry.quality.STAGE) + 1, toy_stage.STAGE)
    monkeypatch.setattr(registry, "STAGES", stages)
    return toy_stage


@pytest.mark.unit
def test_the_registry_lists_each_section_once_with_one_params_class():
    sections = registry.sections()
    assert list(sections)[:3] == ["normalize", "langid", "quality"]
    assert sections["dedup"] is registry.exact.STAGE.params is registry.near.STAGE.params
    names = [s.name for s in registry.stages()]
    assert len(names) == len(set(names))
    steps = [s.name for s in registry.stages() if s.needs is Needs.CORPUS]
    assert names[-len(steps) :] == steps == ["tokenizer", "mlm"]
    assert {s.name for s in registry.stages() if s.needs is Needs.KEYS} == {
        "dedup_parent",
        "dedup_exact",
        "dedup_near",
        "dedup_paragraphs",
    }


@pytest.mark.unit
def test_a_registered_stage_gets_its_config_section_checked(with_toy):
    cfg = load(None, ["toy.modulus=5"], cli_sources=["books=x.txt"], output="o")
    assert cfg.params_of("toy").modulus == 5
    with pytest.raises(ConfigError, match=r"^toy\.modulus: must be at least 2, got 1$"):
        load(None, ["toy.modulus=1"], cli_sources=["books=x.txt"], output="o")
    with pytest.raises(
        ConfigError, match=r"^toy\.modulo: unknown key \(did you mean 'modulus'\?\)"
    ):
        load(None, ["toy.modulo=4"], cli_sources=["books=x.txt"], output="o")


@pytest.mark.job
def test_a_toy_stage_runs_in_the_demo_job(with_toy, tmp_path, capsys):
    from gristmill.pipelines.job import run_job

    out = tmp_path / "release"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        cfg = load("sample/demo.yaml", ["runner.workers=1"], output=str(out))
        manifest = run_job(cfg, show="plain")
    finally:
        os.chdir(cwd)
    tables = check_release(out, manifest)

    names = [s["name"] for s in manifest["stages"]]
    assert names.index("toy") == names.index("quality") + 1
    toy = manifest["stages"][names.index("toy")]
    assert toy["dropped"]["toy_pick"] > 0 and toy["kept"] > 0
    assert manifest["config"]["toy"] == {"enabled": True, "modulus": 3}

    drops = [d for d in tables["drops"] if d["stage"] == "toy"]
    assert len(drops) == toy["dropped"]["toy_pick"]
    assert {d["reason"] for d in drops} == {"toy_pick"}
    schema = pq.read_schema(next((out / "drops").glob("*.parquet")))
    assert "stage" in schema.names

    run = json.loads((out / "reports" / "run.json").read_text())
    assert "toy" in [s["name"] for s in run["stages"]]
    assert "toy" in run["timings"]["stages"]  # the progress tracker timed it as a phase
    html = (out / "reports" / "run.html").read_text()
    assert ">toy<" in html and "toy_pick" in html
    # the plain progress lines name every stage, the toy too
    assert "toy" in capsys.readouterr().err


@pytest.mark.unit
def test_progress_prices_a_registered_stage(with_toy):
    from gristmill.pipelines.progress.priors import priors_for

    assert priors_for(1)["toy"] == with_toy.STAGE.cost.for_workers(1)
    assert priors_for(2)["dedup_near"] == registry.near.STAGE.cost.for_workers(2)


@pytest.mark.unit
def test_run_help_lists_the_registered_stages(with_toy):
    from gristmill.pipelines import cli

    buf = io.StringIO()
    with pytest.raises(SystemExit) as code:
        from contextlib import redirect_stdout

        with redirect_stdout(buf):
            cli.main(["run", "--help"])
    assert code.value.code == 0
    assert "toy" in buf.getvalue() and "dedup_near" in buf.getvalue()
