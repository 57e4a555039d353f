"""The langid stage on the real lid.176 model: labels, filtering, und, sampling of huge documents,
batching, and a real FnApiRunner pipeline whose counts add up. Nothing here reads ../shared."""

from __future__ import annotations

import gzip
import json
import pickle
import random
import shutil
import time

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.pvalue import TaggedOutput
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.window import (
    FixedWindows,
    GlobalWindow,
    IntervalWindow,
    TimestampedValue,
)
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from gristmill.pipelines.config import ConfigError, section_params
from gristmill.schemas.records import Document
from gristmill.transforms import langid
from gristmill.transforms.accounting import Accounted, stage_counts
from gristmill.transforms.langid import UND, LangIdFn, LangIdParams
from gristmill.transforms.stage import DROPPED, StageContext

TEXTS = {
    "en": "The weather was cold this morning, so we stayed at home and read the newspaper "
    "together. In the afternoon my brother came to visit and we talked about his new job.",
    "de": "Das Wetter war heute Morgen kalt, deshalb sind wir zu Hause geblieben und haben "
    "zusammen die Zeitung gelesen. Am Nachmittag kam mein Bruder zu Besuch.",
    "fr": "Il faisait froid ce matin, alors nous sommes restés à la maison pour lire le journal "
    "ensemble. L'après-midi, mon frère est venu nous rendre visite.",
    "ja": "今朝は寒かったので、私たちは家にいて一緒に新聞を読みました。"
    "午後には兄が遊びに来て、新しい仕事について話しました。",
}
NO_LETTERS = ["", "   \n\t ", "12345 678.90 -- 2024-01-01", "!!! ??? ... ### (1) [2]", "🙂🙂 ★ →"]
CTX = StageContext(stage="langid", output="/nonexistent", seed=0, kinds={})


@pytest.fixture(scope="module")
def model():
    return langid.load_model(None)


def section(**overrides) -> LangIdParams:
    return LangIdParams(**overrides)


def test_short_texts_get_their_language(model):
    preds = langid.predict_batch(model, list(TEXTS.values()), 4096)
    assert [lang for lang, _ in preds] == list(TEXTS)
    assert all(0.65 <= score <= 1.0 for _, score in preds), preds


def test_no_letters_is_und_and_odd_text_gets_a_label(model):
    assert langid.predict_batch(model, NO_LETTERS, 4096) == [(UND, 0.0)] * len(NO_LETTERS)
    odd = [
        "Hello world. Привет, мир! こんにちは世界。 مرحبا بالعالم",  # mixed scripts
        "abc\ud800 def ghi",  # a lone surrogate cannot cross into C++ as is
        "Guten\x00Tag, wie geht es Ihnen heute?",  # NUL would end fastText's line
        "x" * 10_000,  # one long "word"
    ]
    preds = langid.predict_batch(model, odd, 4096)
    for lang, score in preds:
        assert lang in langid.LID176_LABELS and 0.0 < score <= 1.0
    assert preds[2][0] == "de"


def test_huge_document_is_predicted_on_a_bounded_sample(model):
    german = TEXTS["de"] + "\n"
    big = german * (50_000_000 // len(german))  # 50 MB
    assert len(big) >= 49_000_000
    for budget in (256, 4096, 20_000):
        sample = langid.sample_text(big, budget)
        assert len(sample) <= budget and "\n" not in sample and len(sample) > budget * 0.8
    nospace = "字" * 50_000_000
    assert len(langid.sample_text(nospace, 4096)) <= 4096
    started = time.perf_counter()
    preds = langid.predict_batch(model, [big, nospace], 4096)
    assert time.perf_counter() - started < 2.0  # whole-text prediction would take tens of seconds
    assert preds[0][0] == "de" and preds[0][1] > 0.9
    assert preds[1][0] in langid.LID176_LABELS


def test_sample_is_a_prefix_and_evenly_spread_windows():
    words = [f"w{i}" for i in range(200_000)]
    text = " ".join(words)
    sample = langid.sample_text(text, 4096).split()
    assert sample[0] == "w0"
    positions = [int(w[1:]) for w in sample if w[1:].isdigit()]
    assert positions == sorted(positions)  # windows in text order
    fractions = {round(p / len(words) * 8) for p in positions[len(positions) // 2 :]}
    assert {1, 3, 5, 7} <= fractions  # the middle windows sit at 1/8, 3/8, 5/8, 7/8 of the rest
    short = "Line one\nline two"
    assert langid.sample_text(short, 4096) == "Line one line two"


def test_verdicts_filter_label_only_min_score_and_languages():
    p = LangIdParams(languages=frozenset({"en", "de"}), min_score=0.65)
    assert langid.verdict("en", 0.9, p) is None
    assert langid.verdict("fr", 0.987, p) == ("not_selected", "fr 0.98")
    assert langid.verdict("en", 0.6499, p) == ("low_score", "en 0.64 < 0.65")
    assert langid.verdict(UND, 0.0, p) == ("not_selected", "und 0.00")
    assert langid.verdict(UND, 0.0, LangIdParams(languages=frozenset({"en", UND}))) is None
    assert langid.verdict(UND, 0.0, LangIdParams()) == ("low_score", "und 0.00 < 0.65")
    label_only = LangIdParams(languages=frozenset({"en"}), filter=False)
    assert langid.verdict("fr", 0.1, label_only) is None
    assert langid.verdict("fr", 0.1, LangIdParams(min_score=0.0)) is None


def test_config_is_checked_through_the_loader(tmp_path):
    def load(given):
        return section_params("langid", given)

    assert load(None).languages is None
    assert load({"languages": ["en", "de"], "min_score": 1}).min_score == 1
    assert load({"languages": "en, de"}).wanted == {"en", "de"}
    assert load({"languages": "all"}).wanted is None
    bad = {
        "langid.filter: expected true or false": {"filter": "no"},
        "langid.sample_chars: expected an integer": {"sample_chars": 1.5},
        "langid.sample_chars: must be at least 256": {"sample_chars": 100},
        "langid.batch_size: must be at least 1": {"batch_size": 0},
        "langid.min_score: must be at most 1": {"min_score": 1.5},
        "langid.languages: 'english' is not a language label": {"languages": ["english"]},
        "langid.languages: 'nb' is not a lid.176 label (did you mean": {"languages": ["nb"]},
        "langid.languages: empty": {"languages": []},
        "langid.lang: unknown key": {"lang": ["en"]},
        f"langid.model_path: {tmp_path}/none.bin is not a file": {
            "model_path": f"{tmp_path}/none.bin"
        },
    }
    for message, given in bad.items():
        with pytest.raises(ConfigError) as err:
            load(given)
        assert str(err.value).startswith(message), (given, str(err.value))
    # with a model of one's own, any well-formed label is allowed (GlotLID: eng_Latn)
    own = tmp_path / "own.bin"
    own.write_bytes(b"x")
    assert load({"languages": ["eng_Latn"], "model_path": str(own)}).languages == ("eng_Latn",)


def test_configured_model_path_compressed_is_copied_through_beam(tmp_path):
    packed = tmp_path / "lid.176.ftz.gz"
    with open(langid.default_model_path(), "rb") as src, gzip.open(packed, "wb") as out:
        shutil.copyfileobj(src, out)
    model = langid.load_model(str(packed))
    assert langid.predict_batch(model, [TEXTS["fr"]], 4096)[0][0] == "fr"
    assert list(tmp_path.iterdir()) == [packed]  # no temp copy left behind


def _drive(dofn: LangIdFn, docs: list[Document], window=None) -> list[tuple[str, object]]:
    """Runs the DoFn by hand as a runner would (one bundle): (tag, value) of every output.
    With `window`, the documents sit in it (WindowedLangIdFn) and every output must stay there."""
    outputs = []
    dofn.setup()
    dofn.start_bundle()
    for doc in docs:
        args = (doc,) if window is None else (doc, Timestamp(7), window)
        outputs.extend(dofn.process(*args) or [])
    outputs.extend(dofn.finish_bundle() or [])
    got = []
    for out in outputs:
        tag, value = (out.tag, out.value) if isinstance(out, TaggedOutput) else (None, out)
        assert isinstance(value, WindowedValue)
        assert value.windows == ((window,) if window else (GlobalWindow(),))
        if window is not None and tag != langid.STATS:
            assert value.timestamp == Timestamp(7)
        got.append((tag, value.value))
    return got


def _docs(n: int, seed: int) -> list[Document]:
    rng = random.Random(seed)
    pool = [*TEXTS.values(), *NO_LETTERS]
    return [Document(f"d{i}", f"s{i % 2}", f"p{i}", rng.choice(pool)) for i in range(n)]


def test_batching_gives_the_same_result_per_document():
    docs = _docs(40, 1)
    params = LangIdParams(languages=frozenset({"en", "fr", "ja"}))
    results = []
    runs = [(1, docs, None), (3, docs[::-1], None), (7, docs, IntervalWindow(0, 10))]
    runs.append((64, docs[::-1], IntervalWindow(5, 20)))
    for batch_size, order, window in runs:
        fn = LangIdFn if window is None else langid.WindowedLangIdFn
        got = _drive(fn(LangIdParams(**{**vars(params), "batch_size": batch_size})), order, window)
        kept = sorted((v.id, v.lang, v.lang_score) for t, v in got if t is None)
        drops = sorted((v.id, v.detail) for t, v in got if t == DROPPED)
        stats = sorted(v for t, v in got if t == langid.STATS)
        assert len(kept) + len(drops) == len(docs)
        results.append((kept, drops, stats))
    assert all(r == results[0] for r in results[1:])
    kept, drops, _ = results[0]
    assert {lang for _, lang, _ in kept} == {"en", "fr", "ja"}
    assert {d.split()[0] for _, d in drops} == {"de", UND}


def test_input_documents_are_not_modified():
    doc = Document("a", "s", "p", TEXTS["de"], meta={"k": 1})
    ((tag, out),) = [o for o in _drive(LangIdFn(LangIdParams()), [doc]) if o[0] is None]
    assert (out.lang, doc.lang, doc.lang_score) == ("de", "", 0.0)
    assert out.meta == doc.meta and out.meta is not doc.meta


def _pipeline_docs() -> list[Document]:
    docs = []
    for i, text in enumerate(TEXTS.values()):
        docs.append(Document(f"a{i}", "news", f"a{i}", text))
        docs.append(Document(f"b{i}", "books", f"b{i}", text + "\n" + text))
    docs.append(Document("u0", "news", "u0", "12345 678"))
    docs.append(Document("u1", "books", "u1", ""))
    docs.append(Document("m0", "news", "m0", "Yes. Oui. Ja."))  # too short to be sure
    return docs


def _collect(pcoll, path, label: str) -> None:
    _ = (
        pcoll
        | f"{label}Json" >> beam.Map(json.dumps)
        | f"{label}Write" >> beam.io.WriteToText(str(path / label), shard_name_template="")
    )


def _rows(path) -> list:
    def tuples(v):
        return tuple(tuples(x) for x in v) if isinstance(v, list) else v

    return sorted(tuples(json.loads(line)) for line in path.read_text().splitlines())


def _run(sec: dict, tmp_path) -> tuple[list, list, dict, dict]:
    """The stage as the job runs it: built from its config section, wrapped in Accounted."""
    pipeline = beam.Pipeline(runner=FnApiRunner())
    docs = pipeline | beam.Create(_pipeline_docs())
    stage = docs | Accounted("langid", langid.build(sec, CTX))
    kept = stage.kept | "K" >> beam.Map(lambda d: (d.id, d.lang, d.lang_score))
    drops = stage.drops | "D" >> beam.Map(
        lambda d: (d.id, d.source, d.stage, d.reason, d.detail, d.url_or_path)
    )
    totals = (
        stage.tallies
        | beam.Flatten()
        | beam.CombinePerKey(lambda pairs: tuple(map(sum, zip(*pairs, strict=True))))
    )
    for label, pcoll in (("kept", kept), ("drops", drops), ("totals", totals)):
        _collect(pcoll, tmp_path, label)
    _collect(stage.extras["report"], tmp_path, "report")
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("langid"))["counters"]
    }
    kept, drops = _rows(tmp_path / "kept"), _rows(tmp_path / "drops")
    (counts,) = stage_counts(["langid"], dict(_rows(tmp_path / "totals")))
    assert counts.balanced(), counts
    assert counts.docs_in == len(_pipeline_docs()) == len(kept) + len(drops)
    assert counts.dropped == ({"language": len(drops)} if drops else {})
    report = {}
    for line in (tmp_path / "report").read_text().splitlines():
        stage_name, key, value = json.loads(line)
        assert stage_name == "langid"
        report[key] = value
    return kept, drops, report, counters


@pytest.mark.job
def test_pipeline_filters_and_counts_add_up(tmp_path):
    kept, drops, report, counters = _run(section(languages=["en", "fr"]), tmp_path)
    assert {(i, lang) for i, lang, _ in kept} == {
        ("a0", "en"),
        ("b0", "en"),
        ("a2", "fr"),
        ("b2", "fr"),
    }
    by_id = {d[0]: d for d in drops}
    assert set(by_id) == {"a1", "b1", "a3", "b3", "u0", "u1", "m0"}
    assert all(d[2:4] == ("langid", "language") for d in drops)
    assert all(d[5] == d[0] for d in drops)  # each test document's path is its id
    assert by_id["a1"][4].startswith("de 0.") and by_id["a3"][4] == "ja 1.00"
    assert by_id["u0"][4] == by_id["u1"][4] == "und 0.00"
    assert counters["news.lang.de"] == counters["books.lang.de"] == 1
    assert counters["news.lang.und"] == 1 and counters["news.not_selected"] == 4
    assert counters["news.in"] == counters["news.kept"] + counters["news.dropped.language"]
    # report: per source, per language, documents and bytes (kept or not)
    assert set(report) == {"languages/news", "languages/books"}
    books = report["languages/books"]
    assert books["ja"]["documents"] == 1 and books["ja"]["kept"] == 0
    assert books["ja"]["bytes"] == len((TEXTS["ja"] + "\n" + TEXTS["ja"]).encode("utf-8"))
    assert books["en"] == {
        "documents": 1,
        "bytes": 2 * len(TEXTS["en"]) + 1,
        "kept": 1,
        "kept_bytes": 2 * len(TEXTS["en"]) + 1,
    }
    assert list(books) == sorted(books)
    assert sum(v["documents"] for r in report.values() for v in r.values()) == 11


@pytest.mark.job
def test_pipeline_label_only_keeps_everything_labelled(tmp_path):
    kept, drops, report, counters = _run(section(languages=["en"], filter=False), tmp_path)
    assert drops == []
    langs = {i: lang for i, lang, _ in kept}
    assert len(langs) == 11
    assert [langs[f"a{i}"] for i in range(4)] == list(TEXTS)
    assert langs["u0"] == langs["u1"] == UND
    assert counters.get("news.dropped.language", 0) == 0 and counters["news.kept"] == 6
    assert report["languages/news"]["en"]["kept"] == 1


@pytest.mark.job
def test_pipeline_min_score_drop_carries_label_and_score(tmp_path):
    kept, drops, _, counters = _run(section(min_score=0.99), tmp_path)
    low = [d for d in drops if d[4].endswith("< 0.99")]
    assert low and all(d[3] == "language" for d in low)
    kept_scores = [score for _, lang, score in kept]
    assert all(score >= 0.99 for score in kept_scores)
    for d in low:  # "<label> <score> < <min_score>"
        label, score, _, bar = d[4].split()
        assert label in langid.LID176_LABELS | {UND} and float(score) < float(bar)
    assert counters.get("news.low_score", 0) + counters.get("books.low_score", 0) == len(low)


def test_model_loads_once_per_worker_process():
    fn = LangIdFn(LangIdParams())
    copies = [pickle.loads(pickle.dumps(fn)) for _ in range(3)]  # as a runner's threads get it
    for copy in copies:
        copy.setup()
    assert copies[0]._model is copies[1]._model is copies[2]._model


@pytest.mark.job
def test_windowed_input_keeps_its_windows(tmp_path):
    pipeline = beam.Pipeline(runner=FnApiRunner())
    docs = [Document(f"w{i}", "news", f"w{i}", text) for i, text in enumerate(TEXTS.values())]
    stage = (
        pipeline
        | beam.Create([TimestampedValue(d, 5 if i < 2 else 15) for i, d in enumerate(docs)])
        | beam.WindowInto(FixedWindows(10))
        | langid.build(section(filter=False), CTX)
    )
    kept, _, extras = stage
    where = kept | beam.Map(lambda d, w=beam.DoFn.WindowParam: (d.id, d.lang, w.start.micros))
    _collect(where, tmp_path, "kept")
    _collect(extras["report"], tmp_path, "report")
    pipeline.run().wait_until_finish()
    assert _rows(tmp_path / "kept") == [
        ("w0", "en", 0),
        ("w1", "de", 0),
        ("w2", "fr", 10_000_000),
        ("w3", "ja", 10_000_000),
    ]
    lines = (tmp_path / "report").read_text().splitlines()
    report = sorted(sorted(json.loads(line)[2]) for line in lines)
    assert report == [["de", "en"], ["fr", "ja"]]  # one row per window
