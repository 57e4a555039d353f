"""Opening inputs: compression sniffed from content, the decompression cap, raw-byte checksums,
and the text decoding every reader shares."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import os
import random

import pytest
import zstandard
from helpers import compress, write

from gristmill.transforms.sources.reader_api import (
    BadRecord,
    ReadContext,
    decode_text,
    looks_binary,
)
from gristmill.transforms.sources.streams import (
    CappedReader,
    DecompressionBomb,
    InputFile,
    sniff_compression,
)

PAYLOAD = b"".join(b'{"id": %d, "text": "line number %d"}\n' % (i, i) for i in range(3000))
KINDS = ("plain", "gzip", "bz2", "zstd")
NAMES = ("data.txt", "data.gz", "data.bz2", "data.zst", "data")


def ctx(mode: str = "replace") -> ReadContext:
    return ReadContext("s", "/x", "x", {}, 1 << 30, mode)


def read_all(path, cap: int = 1 << 30) -> tuple[InputFile, bytes]:
    f = InputFile(str(path), cap)
    return f, f.stream.read()


def raw_digest(path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


# ---- detection by content, whatever the name -----------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_detected_by_content(tmp_path, kind, name):
    path = write(tmp_path / name, compress(kind, PAYLOAD))
    f, data = read_all(path)
    assert f.compression == {"plain": "none"}.get(kind, kind)
    assert data == PAYLOAD
    assert f.tell() == len(PAYLOAD)
    assert f.finish() == raw_digest(path)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"BZh9", "bz2"),
        (b"BZh1", "bz2"),
        (b"BZhello", "none"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"PAR1", "none"),
        (b"", "none"),
        (b"\x1f", "none"),
    ],
)
def test_sniff_compression(head, kind):
    assert sniff_compression(head) == kind


def test_multi_member_gzip(tmp_path):
    members = [b"first member\n", b"second member\n", b"third\n"]
    path = write(tmp_path / "multi.txt", b"".join(gzip.compress(m) for m in members))
    f, data = read_all(path)
    assert f.compression == "gzip"
    assert data == b"".join(members)
    assert f.finish() == raw_digest(path)


def test_zstd_two_frames(tmp_path):
    z = zstandard.ZstdCompressor()
    path = write(tmp_path / "two.jsonl", z.compress(b'{"a": 1}\n') + z.compress(b'{"a": 2}\n'))
    f, data = read_all(path)
    assert f.compression == "zstd"
    assert data == b'{"a": 1}\n{"a": 2}\n'


def test_zstd_streamed_frame_without_content_size(tmp_path):
    buf = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(buf, closefd=False) as w:
        w.write(PAYLOAD)
    path = write(tmp_path / "streamed.zst", buf.getvalue())
    assert read_all(path)[1] == PAYLOAD


def test_multi_stream_bz2(tmp_path):
    path = write(tmp_path / "multi.bz2", bz2.compress(b"one\n") + bz2.compress(b"two\n"))
    assert read_all(path)[1] == b"one\ntwo\n"


def test_empty_file(tmp_path):
    path = write(tmp_path / "empty.gz", b"")
    f, data = read_all(path)
    assert (f.compression, data) == ("none", b"")
    assert f.finish() == (0, hashlib.sha256(b"").hexdigest())


def test_tell_is_the_decompressed_offset(tmp_path):
    lines = [b"alpha\n", b"bravo bravo\n", b"charlie\n"]
    path = write(tmp_path / "lines.gz", gzip.compress(b"".join(lines)))
    f = InputFile(str(path), 1 << 20)
    offsets = []
    while True:
        offsets.append(f.tell())
        if not f.stream.readline():
            break
    assert offsets == [0, 6, 18, 26]


# ---- the decompression cap -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gzip", "bz2", "zstd"])
def test_bomb_raises(tmp_path, kind):
    path = write(tmp_path / f"bomb.{kind}", compress(kind, b"A" * (8 << 20)))
    assert path.stat().st_size < 64 << 10
    f = InputFile(str(path), 256 << 10)
    with pytest.raises(DecompressionBomb, match="max_decompressed_bytes"):
        while f.stream.read(1 << 16):
            pass
    assert 0 <= f.tell() <= 256 << 10
    assert f.finish() == raw_digest(path)


def test_bomb_in_one_big_read(tmp_path):
    path = write(tmp_path / "bomb.gz", gzip.compress(b"A" * (4 << 20)))
    f = InputFile(str(path), 100_000)
    with pytest.raises(DecompressionBomb):
        f.stream.read(16 << 20)
    assert f.finish() == raw_digest(path)


def test_cap_is_inclusive(tmp_path):
    data = b"x" * 5000
    path = write(tmp_path / "exact.gz", gzip.compress(data))
    assert read_all(path, cap=5000)[1] == data
    with pytest.raises(DecompressionBomb):
        read_all(path, cap=4999)


class CountingStream(io.RawIOBase):
    """An endless inner stream that counts how many bytes it handed out."""

    def __init__(self):
        self.served = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = len(buffer)
        buffer[:n] = b"z" * n
        self.served += n
        return n


def test_cap_bounds_what_is_decompressed():
    """One big read (read_book asks for max_record_bytes + 1) must not inflate far past the cap."""
    inner = CountingStream()
    capped = CappedReader(inner, cap=1000)
    with pytest.raises(DecompressionBomb):
        io.BufferedReader(capped).read(10_000_000)
    assert inner.served <= 1001 + (1 << 16)


# ---- the checksum covers the raw file, even when reading fails -----------------------------


def _corrupt_inputs() -> dict[str, bytes]:
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(300_000))
    text = b"".join(
        b"%d %s\n" % (i, hashlib.md5(b"%d" % i).hexdigest().encode()) for i in range(20000)
    )
    gz = gzip.compress(text)
    return {
        "gzip_garbage": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + garbage,
        "gzip_truncated": gz[: len(gz) // 2],
        "bz2_garbage": b"BZh9" + garbage,
        "bz2_truncated": bz2.compress(text)[:50_000],
        "zstd_garbage": b"\x28\xb5\x2f\xfd" + garbage,
        "zstd_truncated": zstandard.ZstdCompressor().compress(text)[:40_000],
        "gzip_then_junk": gz + b"\x1f\x8b" + garbage[:1000],
    }


CORRUPT = _corrupt_inputs()


@pytest.mark.parametrize(
    "name",
    sorted(CORRUPT),
)
def test_checksum_after_error_mid_stream(tmp_path, name):
    path = write(tmp_path / name, CORRUPT[name])
    f = InputFile(str(path), 1 << 30)
    with pytest.raises(Exception) as info:  # noqa: B017 - each codec has its own error type
        while f.stream.read(4096):
            pass
    assert not isinstance(info.value, DecompressionBomb)
    assert f.tell() >= 0
    assert f.finish() == raw_digest(path)


def test_checksum_after_partial_read(tmp_path):
    """A reader that stops early (a Parquet footer check, a header sniff) still hashes it all."""
    data = os.urandom(3 << 20)
    path = write(tmp_path / "big.bin", data)
    f = InputFile(str(path), 1 << 30)
    f.stream.read(10)
    assert f.finish() == (len(data), hashlib.sha256(data).hexdigest())


# ---- decoding ------------------------------------------------------------------------------


def test_decode_valid_utf8():
    assert decode_text("naïve café".encode(), 0, ctx()) == ("naïve café", [])


def test_decode_invalid_byte_replaced_and_reported():
    data = b"a fairly long line of text with caf\xe9 in it"
    text, bad = decode_text(data, 100, ctx())
    assert text == "a fairly long line of text with caf\ufffd in it"
    assert bad == [BadRecord(100 + data.index(b"\xe9"), "invalid_utf8", bad[0].detail)]
    assert "1 invalid" in bad[0].detail


def test_decode_invalid_in_dead_letter_mode():
    data = b"a fairly long line of text with caf\xe9 in it"
    text, bad = decode_text(data, 7, ctx("dead_letter"))
    assert text is None
    assert [(b.offset, b.error) for b in bad] == [(7 + data.index(b"\xe9"), "invalid_utf8")]


def test_decode_mostly_invalid_is_dropped():
    text, bad = decode_text(b"ab\xff\xfe\xfd\xfc\xfb\xfa", 0, ctx())
    assert text is None
    assert [(b.offset, b.error) for b in bad] == [(2, "invalid_utf8")]


def test_decode_existing_replacement_chars_are_not_counted():
    data = "\ufffd already there \ufffd".encode() + b" and \xff here, in a long enough line"
    text, bad = decode_text(data, 0, ctx())
    assert text is not None and text.count("\ufffd") == 3
    assert "1 invalid" in bad[0].detail


def test_binary_detection():
    rng = random.Random(3)
    junk = bytes(rng.randrange(256) for _ in range(20000)) + b"\x00" * 50
    assert looks_binary(junk)
    assert not looks_binary(b"")
    assert not looks_binary(b"text with one \x00 NUL byte in it")
    text, bad = decode_text(junk, 0, ctx())
    assert text is None
    assert [(b.offset, b.error) for b in bad] == [(0, "binary_content")]


def test_truncated_zstd_checksum_still_covers_the_file(tmp_path):
    path = write(tmp_path / "t.zst", CORRUPT["zstd_truncated"])
    f = InputFile(str(path), 1 << 30)
    try:
        while f.stream.read(4096):
            pass
    except EOFError:
        pass
    else:
        pytest.fail("a truncated zstd stream must raise, not end quietly")
    assert f.finish() == raw_digest(path)
