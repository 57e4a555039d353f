"""Mail reader: single RFC 822 messages and mboxes, on messages written for the tests."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from helpers import REPO, compress, write

from gristmill.transforms.sources.mail import decode_bytes, read_mail
from gristmill.transforms.sources.reader_api import BadRecord, RawRecord, ReadContext
from gristmill.transforms.sources.streams import InputFile

FIXTURES = REPO / "tests" / "fixtures" / "mail"
META_KEYS = {"date", "content_type", "parts", "text_from"}


def read(path: Path, max_record_bytes: int = 64 << 20) -> list:
    ctx = ReadContext("mail", str(path), path.name, {}, max_record_bytes, "replace")
    return list(read_mail(InputFile(str(path), 1 << 30), ctx))


def read_fixture(name: str) -> RawRecord:
    (out,) = read(FIXTURES / name)
    assert isinstance(out, RawRecord)
    return out


def test_plain_message():
    doc = read_fixture("plain.eml")
    assert doc.drop == "" and doc.offset == 0
    assert doc.text == (
        "Re: dressing the runner stone\n\n"
        "The runner stone needs dressing every few weeks.\n"
        "Cut the furrows a little deeper — it grinds finer.\n\n"
        "Ada"
    )
    assert doc.record_id == "<plain-1@example.com>"
    assert doc.meta == {
        "date": "2024-06-04T09:15:00+00:00",
        "content_type": "text/plain",
        "parts": 1,
        "text_from": "text/plain",
    }


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_no_addresses_in_meta(name):
    for out in read(FIXTURES / name):
        assert set(out.meta) <= META_KEYS
        assert not any("@" in str(v) for v in out.meta.values())
        assert "Ada Miller" not in str(out.meta) and "miller@" not in out.text


def test_html_only_multipart_is_converted():
    doc = read_fixture("html_only.eml")
    assert doc.text.startswith("Spring sale on millstones\n\nSpring sale\n")
    assert "All granite stones are half price this week." in doc.text
    assert "Granite" in doc.text and "Basalt" in doc.text
    for junk in ("<", "color: red", "tracking"):
        assert junk not in doc.text
    assert doc.meta["text_from"] == "text/html"
    assert doc.meta["content_type"] == "multipart/alternative"


def test_quoted_printable_latin1_with_encoded_subject():
    doc = read_fixture("qp_latin1.eml")
    assert doc.text == (
        "Le moulin à eau\n\n"
        "La meule tourne très vite, et le blé est moulu très fin. Cette ligne est coupée en deux."
    )


def test_base64_utf8_body_and_raw_8bit_subject():
    doc = read_fixture("base64.eml")
    assert doc.text == "Die Mühle\n\nDie Mühle läuft seit 1850. Ünd sie mahlt Roggen."


def test_attachments_are_skipped():
    doc = read_fixture("attachment.eml")
    assert (
        doc.text
        == "Drawings for the new mill\n\nThe drawings are attached. The wheel is 4 m across."
    )
    assert "SECRET" not in doc.text and "PNG" not in doc.text
    assert doc.meta["parts"] == 3
    assert doc.meta["content_type"] == "multipart/mixed"


def test_mbox_with_three_messages():
    path = FIXTURES / "three.mbox"
    data = path.read_bytes()
    out = read(path)
    assert [o.offset for o in out] == [
        data.index(b"From alice@"),
        data.index(b"From bob@"),
        data.index(b"From carol@"),
    ]
    assert out[0].offset == 0
    assert [o.record_id for o in out] == ["<mbox-1@example.com>", "<mbox-2@example.com>", ""]
    assert [o.text.split("\n")[0] for o in out] == [
        "First message",
        "Second message",
        "Third message",
    ]
    # "From " lines in a body do not start a message: not after a blank line, or no date in them
    assert out[0].text.endswith(
        ">From the mill we can see the river.\n\nFrom the top of the hill the river looks small."
    )
    assert out[1].text.endswith("From time to time the stones need dressing.")
    assert "From: " not in "".join(o.text for o in out)


def test_compressed_mbox_offsets_are_decompressed_offsets(tmp_path):
    data = (FIXTURES / "three.mbox").read_bytes()
    plain = read(FIXTURES / "three.mbox")
    packed = read(write(tmp_path / "three.mbox.gz", compress("gzip", data)))
    assert packed == plain


def test_single_message_with_from_line_has_offset_zero(tmp_path):
    data = (
        b"From someone@example.com  Thu Aug 22 12:36:23 2002\n"
        + (FIXTURES / "plain.eml").read_bytes()
    )
    (doc,) = read(write(tmp_path / "00001.txt", data))
    assert doc.offset == 0
    assert doc.text == read_fixture("plain.eml").text


def test_malformed_headers_do_not_crash():
    doc = read_fixture("malformed_header.eml")
    assert doc.drop == ""
    assert doc.text.startswith("Header trouble =?utf-8?q?broken_word\n\n")
    assert doc.text.endswith("The body still reads fine.")
    assert doc.meta["date"] == "not a date at all"
    assert doc.record_id == ""


def test_crlf_message(tmp_path):
    data = (FIXTURES / "plain.eml").read_bytes().replace(b"\n", b"\r\n")
    (doc,) = read(write(tmp_path / "crlf.eml", data))
    assert doc.text == read_fixture("plain.eml").text


def test_empty_body_is_dropped(tmp_path):
    data = b"From: a@example.com\nSubject: Nothing to say\nMessage-ID: <e@x>\n\n\n  \n"
    (out,) = read(write(tmp_path / "empty_body.eml", data))
    assert (out.drop, out.text, out.record_id) == ("no_text", "", "<e@x>")


def test_only_an_attachment_is_no_text(tmp_path):
    data = (
        b"From: a@example.com\nSubject: see attached\nContent-Type: multipart/mixed; boundary=B\n\n"
        b"--B\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\n"
        b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--B--\n"
    )
    (out,) = read(write(tmp_path / "att_only.eml", data))
    assert out.drop == "no_text"
    assert out.meta["parts"] == 1


def test_empty_file(tmp_path):
    (out,) = read(write(tmp_path / "empty.eml", b""))
    assert out.drop == "empty"


def test_binary_junk_is_a_bad_record(tmp_path):
    junk = bytes(range(256)) * 64
    (out,) = read(write(tmp_path / "junk.bin", junk))
    assert isinstance(out, BadRecord) and out.error == "binary_content"


def test_text_without_headers_is_not_a_message(tmp_path):
    (out,) = read(write(tmp_path / "notes.txt", b"just some notes\nwithout any header at all\n"))
    assert isinstance(out, BadRecord) and out.error == "not_a_message"


def test_binary_text_part_is_a_bad_record(tmp_path):
    data = (
        b"From: a@example.com\nSubject: odd\nContent-Type: text/plain\n"
        b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(b"\x00\x01" * 400)
    )
    (out,) = read(write(tmp_path / "nul_part.eml", data))
    assert isinstance(out, BadRecord) and out.error == "binary_content"


def test_oversized_message_in_mbox_is_skipped(tmp_path):
    big = b"From big@example.com Mon Jun 10 12:00:00 2024\nSubject: big\n\n" + b"x" * 5000 + b"\n\n"
    data = (FIXTURES / "three.mbox").read_bytes()
    cut = data.index(b"From carol@")
    path = write(tmp_path / "mixed.mbox", data[:cut] + big + data[cut:])
    out = read(path, max_record_bytes=2000)
    assert [type(o) for o in out] == [RawRecord, RawRecord, BadRecord, RawRecord]
    assert out[2].error == "record_too_large" and out[2].offset == cut
    assert out[3].text.startswith("Third message")


def test_html_sent_as_text_plain_is_converted(tmp_path):
    data = b"Subject: offer\nContent-Type: text/plain\n\n<html><body><p>Buy <b>now</b></p></body></html>\n"
    (doc,) = read(write(tmp_path / "fake_plain.eml", data))
    assert doc.text == "offer\n\nBuy now"
    assert doc.meta["text_from"] == "text/html"


def test_unknown_and_wrong_charsets_fall_back():
    assert decode_bytes("déjà".encode(), "no-such-charset") == "déjà"
    assert decode_bytes("déjà".encode("cp1252"), "utf-8") == "déjà"
    assert decode_bytes("smart “quotes”".encode("cp1252"), "iso-8859-1") == "smart “quotes”"
    assert decode_bytes("Мельница".encode("koi8-r"), "koi8-r") == "Мельница"
    assert decode_bytes(b"\x81\x8d\x8f", "us-ascii") == "\x81\x8d\x8f"  # Latin-1, never fails
    assert decode_bytes(b"abc", "base64") == "abc"  # a codec that is not a charset is ignored


def test_directory_of_messages(tmp_path):
    for p in FIXTURES.iterdir():
        shutil.copy(p, tmp_path / p.name)
    docs = [o for p in sorted(tmp_path.iterdir()) for o in read(p)]
    assert len(docs) == 9
    assert all(isinstance(o, RawRecord) and o.drop == "" and o.text for o in docs)
