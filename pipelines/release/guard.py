"""A user's files are never destroyed: what an output may be, one job at a time, and the swap.

Before any work (local outputs): the output may not be the filesystem root or the home folder,
may not hold an input, and if it exists and holds anything it must be a gristmill release or an
unfinished one (only the entries a release has). A finished release is replaced only with
`--overwrite`, and then the new one is built beside it (`OUT.gristmill-next`) and swapped in
once complete, so the old one stays whole until then. A lock file in the output keeps a second
job off it; the second job is told who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator

from gristmill.schemas import tables

LOCK = ".gristmill.lock"
NEXT = ".gristmill-next"
MANIFEST = "manifest.json"
RELEASE_NAMES = {
    *tables.RELEASE_ENTRIES,
    MANIFEST,
    MANIFEST + ".tmp",
    "_staging",
    LOCK,
    "tokenizer_config.json",
    "special_tokens_map.json",
}


class OutputError(ValueError):
    """The output cannot be written as asked: one line saying why."""


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def check_output(output: str, inputs: Iterable[str], overwrite: bool) -> bool:
    """Raises OutputError if writing `output` could destroy files that are not a release's;
    True when a finished release is there to be replaced (build beside it, then swap)."""
    if "://" in output:
        return False
    out = os.path.realpath(output)
    if out == "/":
        raise OutputError("output: / is the filesystem root; name a folder for the release")
    if out == os.path.realpath(os.path.expanduser("~")):
        raise OutputError(f"output: {out} is the home folder; name a folder for the release")
    for path in inputs:
        if "://" not in path and _inside(os.path.realpath(path), out):
            raise OutputError(f"output: {out} holds the input {path}; name another folder")
    if not os.path.lexists(out):
        return False
    if not os.path.isdir(out):
        raise OutputError(f"output: {out} is a file, not a folder")
    foreign = sorted(set(os.listdir(out)) - RELEASE_NAMES)
    if foreign:
        raise OutputError(
            f"output: {out} is not empty and not a gristmill release (it holds {foreign[0]!r})"
        )
    finished = os.path.exists(os.path.join(out, MANIFEST))
    if finished and not overwrite:
        raise OutputError(f"output: {out} holds a finished release; --overwrite replaces it")
    return finished


def beside(output: str) -> str:
    """Where the replacement of a finished release is built."""
    return output.rstrip("/") + NEXT


def swap(built: str, output: str) -> None:
    """The new release in place of the old one; the old one goes only once the new is there."""
    out = output.rstrip("/")
    # a fresh empty folder of our own: the old release is renamed onto it, never onto a path
    # that might be someone's
    old = tempfile.mkdtemp(
        prefix=os.path.basename(out) + ".gristmill-old-", dir=os.path.dirname(os.path.abspath(out))
    )
    os.rename(out, old)
    os.rename(built, out)
    shutil.rmtree(old)


@contextlib.contextmanager
def locked(output: str) -> Iterator[None]:
    """One job at a time on an output: an exclusive lock on OUTPUT/.gristmill.lock."""
    if "://" in output:
        yield
        return
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            raise OutputError(
                f"output: {output} is in use by another gristmill job ({_who(holder)})"
            ) from None
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        try:
            yield
        finally:  # the release holds no lock file once the job is over
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        os.close(fd)  # closing releases the lock


def _who(holder: str) -> str:
    try:
        h = json.loads(holder)
        return f"pid {h['pid']} on {h['host']}, since {h['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
