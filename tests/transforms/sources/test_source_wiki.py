"""Wiki reader (MediaWiki XML export dumps) and wikitext_to_text, on fixtures written for the tests."""

from __future__ import annotations

import bz2
import re
import tracemalloc
from pathlib import Path

import pytest
from helpers import REPO, compress, write

from gristmill.transforms.sources import wiki
from gristmill.transforms.sources.reader_api import BadRecord, RawRecord, ReadContext
from gristmill.transforms.sources.streams import InputFile
from gristmill.transforms.sources.wiki import read_wiki
from gristmill.transforms.sources.wikitext import wikitext_to_text

FIXTURES = REPO / "tests" / "fixtures" / "wiki"
EXPORT = (FIXTURES / "export.xml").read_bytes()

MILLSTONE = (
    "Millstones are stones used in gristmills for grinding grain. They work in pairs.\n"
    "\n"
    "History\n"
    "\n"
    "The oldest known stones are Neolithic querns, some 40 cm wide.\n"
    "See the museum catalogue for more.\n"
    "\n"
    "Dressing\n"
    "\n"
    "Furrows cut into the face\n"
    "Dressing with a mill bill"
)


def read(path: Path, max_record_bytes: int = 64 << 20, **options) -> list:
    ctx = ReadContext("wiki", str(path), path.name, options, max_record_bytes, "replace")
    return list(read_wiki(InputFile(str(path), 1 << 30), ctx))


def page(title: str, text: str, ns: str | None = "0", page_id: int = 1, extra: str = "") -> str:
    ns_tag = f"<ns>{ns}</ns>" if ns is not None else ""
    return (
        f"<page><title>{title}</title>{ns_tag}<id>{page_id}</id>{extra}"
        f"<revision><id>{page_id * 10}</id><timestamp>2024-01-01T00:00:00Z</timestamp>"
        f'<text xml:space="preserve">{text}</text></revision></page>\n'
    )


def dump(
    *pages: str, header: str = '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">'
) -> bytes:
    return (header + "\n" + "".join(pages) + "</mediawiki>\n").encode("utf-8")


# --- the reader ---------------------------------------------------------------------------


def test_export_pages_become_documents_and_drops(tmp_path):
    out = read(write(tmp_path / "export.xml", EXPORT))
    assert [o.offset for o in out] == [0, 1, 2, 3, 4]
    assert all(isinstance(o, RawRecord) for o in out)
    doc = out[0]
    assert doc.drop == ""
    assert doc.text == MILLSTONE
    assert doc.url_or_path == "https://test.example.org/wiki/Millstone"
    assert doc.record_id == "101"
    assert doc.meta == {
        "title": "Millstone",
        "page_id": "101",
        "revision_id": "9001",
        "timestamp": "2024-03-01T12:00:00Z",
    }
    assert (out[1].drop, out[1].detail, out[1].text) == ("wiki_redirect", "Millstone", "")
    assert (out[2].drop, out[2].detail) == ("wiki_namespace", "1")
    assert out[3].drop == "no_text"
    assert out[4].text == "A water wheel turns the runner stone."
    assert out[4].url_or_path == "https://test.example.org/wiki/Water_wheel_(mill)"


@pytest.mark.parametrize("kind", ["bz2", "gzip", "zstd"])
def test_compressed_dump_reads_the_same(tmp_path, kind):
    plain = read(write(tmp_path / "export.xml", EXPORT))
    packed = read(write(tmp_path / "export.xml.x", compress(kind, EXPORT)))
    assert packed == plain


def test_small_chunks_give_the_same_pages(tmp_path, monkeypatch):
    path = write(tmp_path / "export.xml", EXPORT)
    whole = read(path)
    monkeypatch.setattr(wiki, "CHUNK", 7)
    assert read(path) == whole


def test_truncated_dump_keeps_pages_before_the_cut(tmp_path):
    cut = EXPORT[: EXPORT.index(b"Should we merge")]  # inside page 2, the Talk page
    out = read(write(tmp_path / "cut.xml", cut))
    assert [type(o) for o in out] == [RawRecord, RawRecord, BadRecord]
    assert out[0].text == MILLSTONE
    bad = out[2]
    assert (bad.offset, bad.error) == (2, "malformed_xml")
    assert f"decompressed byte {len(cut)}" in bad.detail


@pytest.mark.parametrize("chunk", [1 << 20, 5])
def test_bad_tag_names_page_and_byte(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(wiki, "CHUNK", chunk)
    bad_xml = EXPORT.replace(b"Only templates</title>", b"Only templates</titel>")
    out = read(write(tmp_path / "bad.xml", bad_xml))
    assert [o.offset for o in out] == [0, 1, 2, 3]
    assert isinstance(out[3], BadRecord) and out[3].error == "malformed_xml"
    byte = int(re.search(r"decompressed byte (\d+)", out[3].detail).group(1))
    where = bad_xml.index(b"</titel>")
    assert where <= byte <= where + len(b"</titel>")


def test_error_byte_counts_multibyte_characters(tmp_path):
    xml = dump(page("Ünïcödé", "Café crème brûlée " * 3 + "</oops>"))
    out = read(write(tmp_path / "u.xml", xml))
    byte = int(re.search(r"decompressed byte (\d+)", out[-1].detail).group(1))
    assert xml.index(b"</oops>") <= byte <= xml.index(b"</oops>") + 7


def test_truncated_bz2_stream_is_a_dead_letter(tmp_path):
    pages = "".join(
        page(f"Page {i}", f"Text of page {i}. " * 40, page_id=i + 1) for i in range(300)
    )
    data = bz2.compress(dump(pages))
    out = read(write(tmp_path / "cut.xml.bz2", data[: len(data) // 2]))
    assert isinstance(out[-1], BadRecord) and out[-1].error == "truncated_input"
    assert all(isinstance(o, RawRecord) and o.drop == "" for o in out[:-1])
    assert [o.offset for o in out[:-1]] == list(range(len(out) - 1))
    assert out[-1].offset == len(out) - 1


def test_full_history_keeps_the_newest_revision(tmp_path):
    revisions = "".join(
        f"<revision><id>{n}</id><timestamp>2024-01-0{n}T00:00:00Z</timestamp>"
        f"<model>wikitext</model><text>Version {n} of the text.</text></revision>"
        for n in (1, 2, 3)
    )
    xml = dump(f"<page><title>History</title><ns>0</ns><id>5</id>{revisions}</page>")
    (doc,) = read(write(tmp_path / "h.xml", xml))
    assert doc.text == "Version 3 of the text."
    assert (doc.meta["revision_id"], doc.meta["timestamp"]) == ("3", "2024-01-03T00:00:00Z")


def test_old_export_without_namespace_uri_ns_or_base(tmp_path):
    header = (
        "<mediawiki><siteinfo><namespaces><namespace key='0'/>"
        "<namespace key='1'>Talk</namespace></namespaces></siteinfo>"
    )
    xml = dump(
        page("Talk:Flour", "Discussion here.", ns=None, page_id=1),
        page("Flour", "Flour is ground grain.", ns=None, page_id=2),
        header=header,
    )
    talk, flour = read(write(tmp_path / "old.xml", xml))
    assert (talk.drop, talk.detail) == ("wiki_namespace", "1")
    assert flour.text == "Flour is ground grain."
    assert flour.url_or_path == "old.xml#Flour"


def test_redirect_text_and_content_model_and_size(tmp_path):
    xml = dump(
        page("Meal", "#REDIRECT [[Flour]] {{R from synonym}}", page_id=1),
        page("Style.css", "body { color: red }", page_id=2).replace(
            "<text", "<model>css</model><text"
        ),
        page("Huge", "word " * 200, page_id=3),
        page("Small", "A short page.", page_id=4),
    )
    meal, css, huge, small = read(write(tmp_path / "r.xml", xml), max_record_bytes=500)
    assert (meal.drop, meal.detail) == ("wiki_redirect", "Flour")
    assert (css.drop, css.detail) == ("wiki_content_model", "css")
    assert isinstance(huge, BadRecord) and huge.error == "record_too_large" and huge.offset == 2
    assert small.text == "A short page." and small.offset == 3


def _peak_memory(path: Path) -> tuple[int, int]:
    ctx = ReadContext("wiki", str(path), path.name, {}, 64 << 20, "replace")
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_wiki(InputFile(str(path), 1 << 30), ctx))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.job
def test_memory_does_not_grow_with_the_dump(tmp_path, monkeypatch):
    monkeypatch.setattr(wiki, "CHUNK", 16 << 10)
    body = "Grain is ground between two stones. " * 10
    short = write(
        tmp_path / "short.xml", dump(*(page(f"P{i}", body, page_id=i) for i in range(400)))
    )
    long = write(
        tmp_path / "long.xml", dump(*(page(f"P{i}", body, page_id=i) for i in range(3200)))
    )
    (n_short, peak_short), (n_long, peak_long) = _peak_memory(short), _peak_memory(long)
    assert (n_short, n_long) == (400, 3200)
    assert long.stat().st_size > 1_500_000
    # pages kept alive would cost far more than the whole file; released ones cost nothing
    assert peak_long < peak_short + 200_000, (peak_short, peak_long)


# --- wikitext_to_text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("A {{cite web|url=x|title=T}} b.", "A b."),
        ("Nested {{a|{{b|c}}|d}} done.", "Nested done."),
        ("Grain.<ref>Smith 1900, p. 4</ref> Flour.<ref name=a/>", "Grain. Flour."),
        ("Wheat<ref name='x'>{{cite book|title=Wheat}}</ref> grows.", "Wheat grows."),
        ("Before\n{| class=wikitable\n|-\n| a || b\n|}\nAfter", "Before\nAfter"),
        ("Before <table><tr><td>cell</td></tr></table> after", "Before after"),
        ("[[File:Mill.jpg|thumb|A [[mill]] caption]] Text.", "Text."),
        ("[[Image:Mill.png|left]]Text. [[Category:Mills]]", "Text."),
        ("Mills.\n[[de:Mühle]]\n[[fr:Moulin]]", "Mills."),
        ("See [[:Category:Mills]].", "See Category:Mills."),
        (
            "A [[stone]], a [[Quern-stone|quern]] and [[water wheel]]s.",
            "A stone, a quern and water wheels.",
        ),
        ("[[Paris (France)|]] and [[Help:Contents|]]", "Paris and Contents"),
        ("Link [[mill|a ''big'' mill]] here.", "Link a big mill here."),
        (
            "Visit [https://example.org the museum] or [https://example.org].",
            "Visit the museum or.",
        ),
        ("Bare https://example.org/x stays.", "Bare https://example.org/x stays."),
        ("Text<!-- hidden note --> more.", "Text more."),
        ("__NOTOC__Intro text.__NOEDITSECTION__", "Intro text."),
        ("<span style='x'>Inner</span> and <small>small</small>.", "Inner and small."),
        ("Line one<br/>line two", "Line one\nline two"),
        ("Salt &amp; pepper &lt;3 caf&eacute;", "Salt & pepper <3 café"),
        ("Keep <nowiki>[[not a link]]</nowiki> raw.", "Keep [[not a link]] raw."),
        ("Area <math>\\pi r^{{2}}</math> of it.", "Area of it."),
        ("'''Bold''' and ''italic'' and '''''both'''''.", "Bold and italic and both."),
        ("''Eagle'''s footpad", "Eagle's footpad"),
        ("''Columbia'', ''Eagle''{{'}}s stage", "Columbia, Eagle's stage"),
        ("It is {{convert|5|km|mi}} long.", "It is 5 km long."),
        ("Called {{lang|fr|moulin}} there.", "Called moulin there."),
        ("The man ({{IPA|x}}; born 1900) ran.", "The man (born 1900) ran."),
        (
            "Unclosed {{template never ends\nNext line stays.",
            "Unclosed {{template never ends\nNext line stays.",
        ),
    ],
)
def test_wikitext_markup(markup, text):
    assert wikitext_to_text(markup) == text


def test_wikitext_structure():
    markup = (
        "Lead paragraph.\n\n\n\n"
        "== Parts ==\n"
        "* Runner stone\n"
        "* {{only a template}}\n"
        "* Bed stone\n"
        "# First step\n"
        "; Term : Definition\n"
        "== Nothing here ==\n"
        "{{Main|Elsewhere}}\n"
        "== References ==\n"
        "{{Reflist}}\n"
        "* Book one\n"
        "=== Sub of references ===\n"
        "Still skipped.\n"
        "== External links ==\n"
        "* [https://example.org Site]\n"
        "== Legacy ==\n"
        "Later prose.\n"
    )
    assert wikitext_to_text(markup) == (
        "Lead paragraph.\n"
        "\n"
        "Parts\n"
        "\n"
        "Runner stone\n"
        "Bed stone\n"
        "First step\n"
        "Term Definition\n"
        "\n"
        "Legacy\n"
        "\n"
        "Later prose."
    )


def test_wikitext_empty_and_template_only():
    assert wikitext_to_text("") == ""
    assert wikitext_to_text("{{Infobox\n|a=b\n}}\n[[Category:X]]\n<!-- c -->") == ""
