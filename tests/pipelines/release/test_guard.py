"""A user's files are never destroyed: refused outputs, --overwrite with a swap, one job at a time."""

from __future__ import annotations

import json
import os

import pytest
from helpers import READ_ONLY, write

from gristmill.pipelines.config import ConfigError, load
from gristmill.pipelines.release import guard


def _book(tmp_path):
    return write(
        tmp_path / "in" / "moby.txt", "Call me Ishmael. Some years ago, never mind how long. " * 40
    )


@pytest.mark.unit
def test_outputs_that_could_destroy_a_users_files_are_refused(tmp_path):
    book = _book(tmp_path)
    refuse = {
        "/": "is the filesystem root",
        os.path.expanduser("~"): "is the home folder",
        str(tmp_path / "in"): "holds the input",
        str(tmp_path): "holds the input",
    }
    for output, why in refuse.items():
        with pytest.raises(guard.OutputError, match=why):
            guard.check_output(output, [str(book)], overwrite=True)
    mine = write(tmp_path / "notes" / "thesis.txt", "years of work")
    with pytest.raises(
        guard.OutputError, match=r"not a gristmill release \(it holds 'thesis.txt'\)"
    ):
        guard.check_output(str(mine.parent), [str(book)], overwrite=True)
    with pytest.raises(guard.OutputError, match="is a file, not a folder"):
        guard.check_output(str(mine), [str(book)], overwrite=True)
    assert mine.read_text() == "years of work"
    release = tmp_path / "release"
    write(release / "documents" / "part-00000-of-00001.parquet", b"x")
    assert guard.check_output(str(release), [str(book)], overwrite=False) is False  # unfinished
    write(release / "manifest.json", "{}")
    with pytest.raises(
        guard.OutputError, match="holds a finished release; --overwrite replaces it"
    ):
        guard.check_output(str(release), [str(book)], overwrite=False)
    assert guard.check_output(str(release), [str(book)], overwrite=True) is True
    assert guard.check_output(str(tmp_path / "new"), [str(book)], overwrite=False) is False


@pytest.mark.unit
def test_a_second_job_on_an_output_is_told_who_holds_it(tmp_path):
    out = tmp_path / "release"
    with (
        guard.locked(str(out)),
        pytest.raises(
            guard.OutputError, match=rf"in use by another gristmill job \(pid {os.getpid()} on "
        ),
        guard.locked(str(out)),
    ):
        pass
    assert not (out / guard.LOCK).exists()
    with guard.locked(str(out)):  # free again
        pass


@pytest.mark.job
def test_overwrite_builds_beside_and_swaps_and_refusals_come_before_any_work(tmp_path):
    from gristmill.pipelines.job import run_job

    book = _book(tmp_path)
    out = tmp_path / "release"
    run = lambda **kw: run_job(load(None, READ_ONLY, [f"books={book}"], str(out)), **kw)  # noqa: E731
    first = run()
    with pytest.raises(ConfigError, match="holds a finished release"):
        run()
    assert json.loads((out / "manifest.json").read_text()) == first  # untouched
    second = run(overwrite=True)
    assert second["outputs"] == first["outputs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "release"]  # no -next/-old left
    assert not (out / guard.LOCK).exists() and not (out / "_staging").exists()
    into_input = load(None, READ_ONLY, [f"books={book}"], str(tmp_path / "in"))
    with pytest.raises(ConfigError, match="holds the input"):
        run_job(into_input)
    assert book.exists() and sorted(p.name for p in book.parent.iterdir()) == ["moby.txt"]


@pytest.mark.unit
def test_the_swap_touches_no_folder_but_the_two_releases(tmp_path):
    out, built = tmp_path / "release", tmp_path / ("release" + guard.NEXT)
    write(out / "manifest.json", "old")
    write(built / "manifest.json", "new")
    theirs = write(tmp_path / "release.gristmill-old" / "keep.txt", "someone's")
    guard.swap(str(built), str(out))
    assert (out / "manifest.json").read_text() == "new" and not built.exists()
    assert theirs.read_text() == "someone's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release", "release.gristmill-old"]
    book = _book(tmp_path)
    write(built / "notes.txt", "not ours")
    with pytest.raises(guard.OutputError, match="not a gristmill release"):
        guard.check_output(str(built), [str(book)], overwrite=True)
