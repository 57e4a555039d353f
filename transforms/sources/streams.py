"""Opening input files: content-sniffed decompression, a size cap, and a checksum of the raw bytes.

Files are read through Beam's FileSystems, so local paths, gs:// and s3:// all work. The
compression is detected from the first bytes, never from the file name.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import re
import zlib
from typing import BinaryIO

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.transforms.sources.budget import RecordTimeout

GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_PIECE = 16 << 10
# zstd blocks inflate to at most 128 KiB from as little as 4 bytes: 128 compressed bytes give at
# most ~4 MiB per step. Windows past 128 MiB (zstd's own default limit) are refused.
ZSTD_STEP = 128
ZSTD_MAX_WINDOW = 1 << 27


class DecompressionBomb(IOError):
    """The decompressed stream grew past the configured cap."""


class NotRegularFile(OSError):
    """A FIFO, socket, device or directory among the inputs: never opened."""


def sniff_compression(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZ2_MAGIC) and len(head) >= 4 and head[3:4].isdigit():
        return "bz2"
    return "none"


class HashingReader(io.RawIOBase):
    """Counts and hashes every raw byte read, so the input checksum costs no second pass."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.bytes_read += n
        return n

    def drain(self) -> None:
        """Read what is left so the checksum covers the whole file even after an error."""
        while True:
            data = self._raw.read(1 << 20)
            if not data:
                return
            self.sha256.update(data)
            self.bytes_read += len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


class CappedReader(io.RawIOBase):
    """Raises DecompressionBomb once more than `cap` decompressed bytes have been read."""

    def __init__(self, inner: BinaryIO, cap: int):
        self._inner = inner
        self._cap = cap
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        # Small reads: a decompressor that fails mid-read loses what that read had inflated.
        data = self._inner.read(min(len(buffer), READ_PIECE))
        n = len(data)
        if self.position + n > self._cap:
            raise DecompressionBomb(
                f"decompressed size passed the cap of {self._cap} bytes (read.max_decompressed_bytes)"
            )
        buffer[:n] = data
        self.position += n
        return n

    def tell(self) -> int:
        return self.position


class ZstdFrames(io.RawIOBase):
    """Reads every zstd frame in turn, in steps of ZSTD_STEP compressed bytes so that no step
    inflates past a few MiB (a bomb then meets the cap after a bounded amount of work), and
    raises EOFError when the input ends inside a frame (zstandard's stream_reader returns the
    partial data without a word, and its decompressobj inflates a whole chunk at once)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._obj = self._dctx.decompressobj()
        self._in_frame = False
        self._input = b""
        self._ipos = 0
        self._out = memoryview(b"")
        self._opos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self._opos >= len(self._out):
            if self._ipos >= len(self._input):
                self._input, self._ipos = self._raw.read(READ_PIECE), 0
                if not self._input:
                    if self._in_frame:
                        raise EOFError("zstd stream ended inside a frame (truncated input)")
                    return 0
            step = self._input[self._ipos : self._ipos + ZSTD_STEP]
            self._ipos += len(step)
            self._out, self._opos = memoryview(self._step(step)), 0
        n = min(len(buffer), len(self._out) - self._opos)
        buffer[:n] = self._out[self._opos : self._opos + n]  # an index, never a copied remainder
        self._opos += n
        return n

    def _step(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            self._in_frame = True
            out.append(self._obj.decompress(chunk))
            if not self._obj.eof:
                break
            chunk = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            self._in_frame = False
        return out[0] if len(out) == 1 else b"".join(out)


def classify_error(err: BaseException) -> str:
    """A stable dead-letter error name for what went wrong while reading a file."""
    if isinstance(err, DecompressionBomb):
        return "decompression_bomb"
    if isinstance(err, NotRegularFile):
        return "not_a_regular_file"
    if isinstance(err, RecordTimeout):
        return "record_timeout"
    if isinstance(err, EOFError):
        return "truncated_input"
    if isinstance(err, zlib.error | zstandard.ZstdError | gzip.BadGzipFile):
        return "corrupt_input"
    if isinstance(err, OSError) and "bz2" in repr(err).lower() or "invalid data stream" in str(err):
        return "corrupt_input"
    if isinstance(err, IsADirectoryError | FileNotFoundError | PermissionError):
        return "unreadable_file"
    return type(err).__name__


# Exceptions whose messages are the library's own words; any quoted part is still masked (gzip
# quotes the first bytes of a file that is not gzip). Every other message may quote the input.
_OURS = (DecompressionBomb, NotRegularFile, RecordTimeout)  # messages built from numbers only
_OWN_WORDS = (EOFError, zlib.error)
_QUOTED = re.compile(r"""b?'[^']*'|b?"[^"]*"|\(.*\)""")


def error_detail(err: BaseException) -> str:
    """What a dead letter says about an exception: its type, and its message only when that
    cannot hold input bytes (a dead letter never carries the input's bytes)."""
    name = type(err).__name__
    if isinstance(err, _OURS):
        return f"{name}: {err}"[:300]
    own = isinstance(err, (*_OWN_WORDS, zstandard.ZstdError)) or (
        type(err) in (OSError, gzip.BadGzipFile) and not getattr(err, "filename", None)
    )
    if not own:
        return name
    return f"{name}: {_QUOTED.sub('…', str(err))}"[:300]


def file_head(path: str, n: int = 4) -> bytes:
    """A file's first `n` stored bytes (for its compression or format), on any filesystem."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        return raw.read(n)


class InputFile:
    """One opened input: `stream` yields decompressed bytes; `tell()` is the decompressed offset."""

    def __init__(self, path: str, max_decompressed_bytes: int, start: int = 0):
        self.path, self.start = path, start
        opened = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        if start:  # a piece of an uncompressed file (splits.py): offsets stay the file's
            opened.seek(start)
        self._raw = HashingReader(opened)
        buffered = io.BufferedReader(self._raw, buffer_size=1 << 16)
        head = buffered.peek(4)[:4]
        self.compression = sniff_compression(head) if not start else "none"
        inner: BinaryIO
        if self.compression == "gzip":
            inner = gzip.GzipFile(fileobj=buffered, mode="rb")
        elif self.compression == "bz2":
            inner = bz2.BZ2File(buffered, mode="rb")
        elif self.compression == "zstd":
            inner = ZstdFrames(buffered)
        else:
            inner = buffered  # nothing inflates: the record size limit guards memory instead
            max_decompressed_bytes = 1 << 62
        self._capped = CappedReader(inner, max_decompressed_bytes)
        self.stream = io.BufferedReader(self._capped, buffer_size=1 << 16)

    def tell(self) -> int:
        """Decompressed bytes handed to the reader so far (buffering aside)."""
        return self.start + self.stream.tell()

    def finish(self) -> tuple[int, str]:
        """Drain the raw file and return (raw bytes, sha256 hex)."""
        self._raw.drain()
        size, digest = self._raw.bytes_read, self._raw.sha256.hexdigest()
        self._raw.close()
        return size, digest
