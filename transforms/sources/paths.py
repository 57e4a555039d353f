"""File names are bytes: how an input's name is shown and recorded, and what kind of file it is.

A POSIX file name is any bytes but `/` and NUL. Python hands names that are not UTF-8 over as
str with surrogate escapes, which no UTF-8 sink (Parquet, JSON, logs) can write. Every name
that leaves the reader goes through `shown_path`: a valid UTF-8 name without a backslash is
itself; otherwise each undecodable byte becomes `\\xNN` and a backslash `\\\\`, which
`path_bytes` turns back into the exact bytes. Only regular files are inputs: a FIFO would
block the reader forever, a device never ends; they are named when the inputs are matched.
"""

from __future__ import annotations

import os
import re
import stat

_ESCAPE = re.compile(r"[\\\udc80-\udcff]")
_UNESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    return "\\\\" if ch == "\\" else f"\\x{ord(ch) - 0xDC00:02x}"


def shown_path(path: str) -> str:
    """The name as UTF-8 text, losslessly: undecodable bytes as \\xNN, a backslash as \\\\."""
    if path.isascii() and "\\" not in path:
        return path
    try:
        path.encode("utf-8")
        if "\\" not in path:
            return path
    except UnicodeEncodeError:
        pass
    return _ESCAPE.sub(_escape, path)


def path_bytes(shown: str) -> bytes:
    """The exact bytes of a name `shown_path` produced."""
    out = bytearray()
    pos = 0
    for m in _UNESCAPE.finditer(shown):
        out += shown[pos : m.start()].encode("utf-8")
        code = m.group(1)
        out += b"\\" if code == "\\" else bytes([int(code[1:], 16)])
        pos = m.end()
    out += shown[pos:].encode("utf-8")
    return bytes(out)


_KINDS = (
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character_device"),
    (stat.S_ISBLK, "block_device"),
    (stat.S_ISDIR, "directory"),
)


def file_kind(path: str) -> str:
    """ "file" for a regular local file or any URL (object stores hold only files), else what
    it is: fifo, socket, character_device, block_device, directory, missing. Never opens it."""
    if "://" in path:
        return "file"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    return next((name for test, name in _KINDS if test(mode)), "special")
