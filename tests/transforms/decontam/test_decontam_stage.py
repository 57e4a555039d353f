"""The decontam stage in a real Beam pipeline, in the registry and in the job config."""

from __future__ import annotations

import io
import pickle
import tempfile
from contextlib import redirect_stdout

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to
from test_decontam_index import SETS, real_documents

from gristmill.pipelines import registry
from gristmill.pipelines.config import ConfigError, load
from gristmill.schemas.records import Document
from gristmill.transforms.accounting import Accounted, stage_counts
from gristmill.transforms.decontam import stage as decontam
from gristmill.transforms.decontam.index import passages
from gristmill.transforms.stage import FilterStage, Needs, StageContext


@pytest.fixture(autouse=True)
def own_temp(tmp_path, monkeypatch):
    """The index cache file goes to this test's folder, not the machine's temp folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def _docs() -> list[tuple[Document, str | None]]:
    texts = real_documents()[:6]
    question = next(passages(SETS[0]))
    sentence = next(passages(SETS[2]))
    out = [(Document(f"d{i}", "sotu", f"d{i}", t), None) for i, t in enumerate(texts)]
    mid = len(texts[0]) // 2
    planted = texts[0][:mid] + f" {question.upper()} " + texts[0][mid:]
    out.append((Document("p1", "sotu", "p1", planted), "trivia"))
    out.append((Document("p2", "web", "p2", f"Intro.\n\n{sentence}\n\nThe end."), "sentences"))
    return out


@pytest.mark.job
def test_decontam_stage_in_a_pipeline():
    docs = _docs()
    params = decontam.DecontamParams(enabled=True, sets=SETS)
    kept = sorted(d.id for d, hit in docs if hit is None)
    pipeline = beam.Pipeline(runner=FnApiRunner())
    dofn = decontam.DecontamFilter(params)
    stage = pipeline | beam.Create([d for d, _ in docs]) | Accounted("decontam", FilterStage(dofn))
    assert_that(stage.kept | "Ids" >> beam.Map(lambda d: d.id), equal_to(kept), "kept")
    drops = stage.drops | "Drops" >> beam.Map(
        lambda d: (d.id, d.reason, d.detail.split(":")[0], d.url_or_path)
    )
    expected = [("p1", "contaminated", "trivia", "p1"), ("p2", "contaminated", "sentences", "p2")]
    assert_that(drops, equal_to(expected))

    def balanced(rows):
        (counts,) = stage_counts(["decontam"], dict(rows))
        assert counts.balanced() and counts.kept == len(kept), counts

    totals = (
        stage.tallies
        | beam.Flatten()
        | beam.CombinePerKey(lambda pairs: tuple(map(sum, zip(*pairs, strict=True))))
    )
    assert_that(totals, balanced, "balanced")
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("decontam"))["counters"]
    }
    assert counters["sotu.matched.trivia"] == 1 and counters["web.matched.sentences"] == 1
    assert counters["sotu.dropped.contaminated"] == 1


@pytest.mark.unit
def test_cut_mode_keeps_the_document_and_notes_the_cut():
    params = decontam.DecontamParams(enabled=True, sets=SETS, mode="cut")
    dofn = decontam.DecontamFilter(params)
    doc = _docs()[6][0]
    copy = Document(doc.id, doc.source, doc.url_or_path, doc.text)
    assert dofn.check(copy) is None
    assert len(copy.text) < len(doc.text) and copy.meta["decontam_cut_chars"] > 0


@pytest.mark.unit
def test_the_graph_holds_paths_not_the_index():
    params = decontam.DecontamParams(enabled=True, sets=SETS)
    built = decontam.build(params, StageContext("decontam", "o", 0, {"sotu": "articles"}))
    blob = pickle.dumps(built.dofn)
    assert len(blob) < 4000 and pickle.loads(blob).index is None
    built.dofn.setup()
    assert len(built.dofn.index.keys) > 100


@pytest.mark.unit
def test_registered_after_quality_before_dedup_and_off_by_default():
    names = [s.name for s in registry.stages()]
    assert names.index("decontam") == names.index("quality") + 1
    assert names.index("decontam") < names.index("dedup_exact")
    assert decontam.STAGE.needs is Needs.DOCUMENT
    cfg = load(None, cli_sources=["books=x.txt"], output="o")
    assert not decontam.STAGE.enabled(cfg.params_of("decontam"))
    from gristmill.pipelines import cli

    buf = io.StringIO()
    with pytest.raises(SystemExit), redirect_stdout(buf):
        cli.main(["run", "--help"])
    assert "decontam" in buf.getvalue()


@pytest.mark.unit
def test_config_is_checked_before_any_work(tmp_path):
    from gristmill.pipelines.graph import check_across

    with pytest.raises(ConfigError, match=r"^decontam\.sets: name at least one evaluation set"):
        load(None, ["decontam.enabled=true"], cli_sources=["books=x.txt"], output="o")
    with pytest.raises(ConfigError, match=r"decontam\.mode: must be one of drop, cut"):
        load(None, ["decontam.mode=trim"], cli_sources=["books=x.txt"], output="o")
    missing = str(tmp_path / "nope.jsonl")
    sets = f"decontam.sets=[{{name: mmlu, paths: ['{missing}']}}]"
    cfg = load(None, ["decontam.enabled=true", sets], cli_sources=["books=x.txt"], output="o")
    assert cfg.params_of("decontam").sets[0].name == "mmlu"
    with pytest.raises(ConfigError, match=r"^decontam\.sets\[0\]\.paths\[0\]: .* matches no file"):
        check_across(cfg)


@pytest.mark.unit
def test_a_broken_evaluation_file_stops_the_run_before_any_work(tmp_path):
    from gristmill.pipelines.graph import check_across

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{oops\n')
    sets = f"decontam.sets=[{{name: x, paths: ['{bad}']}}]"
    cfg = load(None, ["decontam.enabled=true", sets], cli_sources=["books=x.txt"], output="o")
    with pytest.raises(ConfigError, match=r"^decontam\.sets: .*bad\.jsonl:2: not a JSON line"):
        check_across(cfg)
