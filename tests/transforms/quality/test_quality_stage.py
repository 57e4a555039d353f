"""The quality stage in a real Beam pipeline (FnApiRunner): what is kept, what is dropped and why,
and that the counts add up. Nothing here reads the shared corpus."""

from __future__ import annotations

import random

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import Accounted, stage_counts
from gristmill.transforms.quality.stage import QualityFilter, QualityParams
from gristmill.transforms.stage import FilterStage

KINDS = {"gutenberg": "books", "crawl": "web", "speeches": "articles"}
GERMAN = ("der", "die", "und", "das", "mit")
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "fi", "zo", "ha"]


def prose(n_words: int, seed: int = 0, stop=("the", "of", "and", "to")) -> str:
    """Varied text in 12-word lines: no repeated 5-grams, a stop word every 7th word."""
    rng = random.Random(seed)
    words = [
        rng.choice(stop) if i % 7 == 0 else "".join(rng.choices(SYLLABLES, k=rng.randint(1, 3)))
        for i in range(n_words)
    ]
    return "\n".join(" ".join(words[i : i + 12]) + "." for i in range(0, n_words, 12))


NAV = "Home | About | Contact\nPlease enable JavaScript to view this page properly.\n"
LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"

DOCS = [
    # (document, expected reason or None when kept)
    (Document("b1", "gutenberg", "b1.txt", prose(400, 1)), None),
    (Document("b2", "gutenberg", "b2.txt", "Too short to be a book."), "too_few_words"),
    (
        Document("b3", "gutenberg", "b3.txt", "A line that repeats itself.\n" * 40 + prose(96)),
        "dup_line_frac",
    ),
    (Document("b4", "gutenberg", "b4.txt", "x" * 5001), "too_long"),
    (Document("w1", "crawl", "https://a.example/1", NAV + prose(96, 2)), None),
    (Document("w2", "crawl", "https://a.example/2", NAV + LOREM + prose(96, 3)), "c4_lorem_ipsum"),
    # a navigation page: FineWeb's duplicated-line rule sees it before C4 rewrites it
    (Document("w3", "crawl", "https://a.example/3", NAV * 20), "fineweb_dup_line_chars"),
    (
        Document(
            "w4",
            "crawl",
            "https://a.example/4",
            prose(96, 7) + "\nClick here for the NSFW pictures today.",
        ),
        "bad_words",
    ),
    (Document("b5", "gutenberg", "b5.txt", prose(400, 8) + "\nNSFW pics here."), None),
    (Document("s1", "speeches", "s1", prose(300, 4, GERMAN), lang="de"), None),
    (Document("s2", "speeches", "s2", prose(300, 4, GERMAN), lang="en"), "stop_words"),
]
PARAMS = QualityParams.from_dict({"length": {"max_chars": 5000}, "bad_words": {"kinds": ["web"]}})


@pytest.mark.job
def test_quality_stage_in_a_pipeline():
    kept_ids = sorted(d.id for d, reason in DOCS if reason is None)
    drops = sorted(
        (d.id, "quality", reason, d.url_or_path) for d, reason in DOCS if reason is not None
    )

    def balanced(rows):
        (counts,) = stage_counts(["quality"], dict(rows))
        assert counts.balanced(), counts
        assert (counts.docs_in, counts.kept) == (len(DOCS), len(kept_ids))
        assert counts.dropped == {reason: 1 for _, _, reason, _ in drops}
        assert counts.by_source["gutenberg"] == {
            "in": 5,
            "kept": 2,
            "dropped": {"dup_line_frac": 1, "too_few_words": 1, "too_long": 1},
        }

    pipeline = beam.Pipeline(runner=FnApiRunner())
    docs = pipeline | beam.Create([d for d, _ in DOCS])
    stage = docs | Accounted("quality", FilterStage(QualityFilter(PARAMS, KINDS)))
    assert_that(stage.kept | "KeptIds" >> beam.Map(lambda d: d.id), equal_to(kept_ids), "kept")
    assert_that(
        stage.drops | "DropKeys" >> beam.Map(lambda d: (d.id, d.stage, d.reason, d.url_or_path)),
        equal_to(drops),
        "drops",
    )
    assert_that(
        stage.drops | "Details" >> beam.Map(lambda d: bool(d.detail)),
        equal_to([True] * len(drops)),
        "details",
    )
    web = (
        stage.kept
        | "Web" >> beam.Filter(lambda d: d.id == "w1")
        | "WebText" >> beam.Map(lambda d: (d.text, d.meta))
    )
    assert_that(web, equal_to([(prose(96, 2), {"c4_lines_removed": 2})]), "rewritten")
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
        for c in result.metrics().query(MetricsFilter().with_namespace("quality"))["counters"]
    }
    for source in KINDS:
        dropped = sum(v for k, v in counters.items() if k.startswith(f"{source}.dropped."))
        assert counters[f"{source}.in"] == counters.get(f"{source}.kept", 0) + dropped
    assert counters["crawl.dropped.c4_lorem_ipsum"] == 1
    assert counters["crawl.dropped.fineweb_dup_line_chars"] == 1
    assert counters["crawl.dropped.bad_words"] == 1
    assert counters["speeches.kept"] == 1 and counters["speeches.dropped.stop_words"] == 1
    assert counters["crawl.c4_lines_removed"] == 2  # counted for kept pages only


def test_unknown_source_is_a_configuration_error():
    dofn = QualityFilter(PARAMS, KINDS)
    with pytest.raises(ValueError, match="'mystery' has no kind"):
        dofn.check(Document("m1", "mystery", "m1", prose(100)))


def test_books_keep_their_lines():
    book = prose(400, 5).replace(".", "")  # hard-wrapped lines without terminal marks
    doc = Document("b", "gutenberg", "b.txt", book, meta={"offset": 0})
    assert QualityFilter(QualityParams(), KINDS).check(doc) is None
    assert doc.text == book and doc.meta == {"offset": 0}
    doc = Document("w", "crawl", "https://a.example/w", book)
    assert QualityFilter(QualityParams(), KINDS).check(doc)[0] == "fineweb_line_punct"
    c4_only = QualityParams.from_dict({"fineweb": {"kinds": []}})
    assert QualityFilter(c4_only, KINDS).check(doc)[0] == "c4_too_few_sentences"
    assert doc.text == book  # a dropped page keeps its text for the drop record's sake


def test_kept_web_page_is_rewritten_even_without_removed_lines():
    page = "  " + prose(96, 6).replace("\n", " [1]\n\n") + "  "
    doc = Document("w", "crawl", "https://a.example/w", page)
    # lines ending in a citation mark are unpunctuated for FineWeb, which would drop the page
    assert QualityFilter(QualityParams(), KINDS).check(doc)[0] == "fineweb_line_punct"
    c4_only = QualityParams.from_dict({"fineweb": {"kinds": []}})
    assert QualityFilter(c4_only, KINDS).check(doc) is None
    assert doc.text == prose(96, 6) and doc.meta == {}
