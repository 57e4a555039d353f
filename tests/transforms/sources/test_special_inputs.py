"""Inputs that are not regular files, and file names that are not UTF-8, through the real job.

A FIFO among the inputs used to block the job forever; a name with bytes that are not UTF-8
failed the whole job in the dead-letter sink. Now the first is a dead letter named when the
inputs are matched (never opened), and the second is read, recorded losslessly and shown
escaped."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from helpers import read_rows, run_corpus, write

from gristmill.transforms.sources.paths import file_kind, path_bytes, shown_path
from gristmill.transforms.sources.read import match_inputs

ODD_NAME = b"caf\xe9 \\ \xff.txt"  # Latin-1, a backslash, a byte that is never UTF-8
TEXT = "A book whose name is not UTF-8 is still read, and its name is kept exactly.\n"


def _unblock_after(fifo: Path, seconds: float) -> threading.Timer:
    """If a reader ever opens the FIFO, open its other end later so the test fails, not hangs."""

    def release() -> None:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass

    timer = threading.Timer(seconds, release)
    timer.daemon = True
    timer.start()
    return timer


@pytest.fixture(scope="module")
def specials(tmp_path_factory):
    root = tmp_path_factory.mktemp("specials")
    books = root / "in" / "books"
    write(books / "good.txt", "A good book among odd files.\n")
    fifo = books / "pipe.txt"
    os.mkfifo(fifo)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(books / "sock.txt"))
    odd = os.path.join(os.fsencode(books), ODD_NAME)
    with open(odd, "wb") as fh:
        fh.write(TEXT.encode())
    timer = _unblock_after(fifo, 120)
    try:
        manifest = run_corpus(root / "out", [f"books={books}/*", "mail=/dev/null"])
    finally:
        timer.cancel()
        sock.close()
    return root / "out", manifest, books


def test_match_names_what_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "p")
    write(tmp_path / "f", "x")
    kinds = {Path(m.path).name: (m.kind, m.size) for m in match_inputs([str(tmp_path)])}
    assert kinds == {"p": ("fifo", 0), "f": ("file", 1)}
    assert file_kind("/dev/null") == "character_device"
    assert file_kind(str(tmp_path)) == "directory"
    assert file_kind("gs://bucket/x") == "file"


@pytest.mark.job
def test_fifo_socket_and_device_are_dead_letters(specials):
    out, manifest, books = specials
    dead = {Path(r["file"]).name: r for r in read_rows(out, "dead_letters")}
    assert {n: r["error"] for n, r in dead.items()} == {
        "pipe.txt": "not_a_regular_file",
        "sock.txt": "not_a_regular_file",
        "null": "not_a_regular_file",
    }
    assert "fifo" in dead["pipe.txt"]["detail"] and "socket" in dead["sock.txt"]["detail"]
    assert "character_device" in dead["null"]["detail"]
    stats = {Path(i["path"]).name: i for i in manifest["inputs"]}
    assert stats["pipe.txt"]["bytes"] == 0 and stats["pipe.txt"]["dead_letters"] == 1
    stages = manifest["stages"]
    assert stages[0]["in"] == sum(i["records"] for i in manifest["inputs"]) == 2
    assert manifest["counts"]["dead_letters"] == sum(i["dead_letters"] for i in manifest["inputs"])


@pytest.mark.job
def test_a_name_that_is_not_utf8_is_read_and_kept_exactly(specials):
    out, manifest, books = specials
    docs = {d["url_or_path"]: d for d in read_rows(out, "documents")}
    shown = "caf\\xe9 \\\\ \\xff.txt"
    assert shown in docs and docs[shown]["text"] == TEXT.strip()
    assert path_bytes(shown) == ODD_NAME
    [stat] = [i for i in manifest["inputs"] if "caf" in i["path"]]
    raw = path_bytes(stat["path"])
    assert raw == os.path.join(os.fsencode(books), ODD_NAME)
    assert os.path.isfile(raw) and stat["bytes"] == os.path.getsize(raw)


@pytest.mark.parametrize(
    "raw",
    [b"plain.txt", "caf\u00e9.txt".encode(), b"\xff\xfe", b"a\\b", b"a\\xff", b"\\\\x41\x80"],
)
def test_shown_path_round_trips(raw):
    name = os.fsdecode(raw)
    shown = shown_path(name)
    shown.encode("utf-8")  # always writable
    assert path_bytes(shown) == raw
