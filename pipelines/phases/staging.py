"""The staging area: each partition's outputs between phases, inside the release directory.

OUT/_staging/<plan key>/<partition>/ holds what a phase wrote for one partition, and a
`_DONE.json` written last that lists every file with its size and sha256. A partition counts as
finished only if that record is there and every file still matches it (checked, not assumed),
so a run killed at any point redoes only the partitions it had not finished. The area of
another plan (other inputs or config) is removed when a run starts; the whole area is removed
once the release is complete.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from gristmill.pipelines.release.manifest import SUMMARY, read_json
from gristmill.schemas.records import FileInfo
from gristmill.transforms.sources.read import file_sha256 as file_digest

STAGING = "_staging"
DONE = "_DONE.json"


def area(output: str, key: str) -> str:
    return posixpath.join(output, STAGING, key)


def finished(folder: str) -> bool:
    """The folder's outputs are complete: its record is there and every file matches it."""
    record = posixpath.join(folder, DONE)
    if not FileSystems.exists(record):
        return False
    try:
        with FileSystems.open(record, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            listed = json.loads(fh.read().decode("utf-8"))["files"]
        for rel, (size, sha) in listed.items():
            if list(file_digest(posixpath.join(folder, rel))) != [size, sha]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def mark_finished(folder: str, files: list[FileInfo]) -> None:
    """Written last: the record of a partition's outputs, atomically."""
    listed = {f.path: [f.bytes, f.sha256] for f in sorted(files, key=lambda f: f.path)}
    tmp = posixpath.join(folder, DONE + ".tmp")
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(json.dumps({"files": listed}, indent=1).encode("utf-8"))
    FileSystems.rename([tmp], [posixpath.join(folder, DONE)])


def finish_with_summary(folder: str, more: list[FileInfo] = ()) -> dict:
    """Marks a phase's folder finished: the files its summary lists, `more`, and the summary
    itself; returns the summary."""
    path = posixpath.join(folder, SUMMARY)
    summary = read_json(path)
    n, sha = file_digest(path)
    made = [FileInfo(**f) for f in summary["files"]]
    mark_finished(folder, [*made, *more, FileInfo(SUMMARY, 0, n, sha)])
    return summary


def keep_only(output: str, key: str) -> None:
    """Before a run: staging of any other plan goes (its inputs or config differ)."""
    root = posixpath.join(output, STAGING)
    if not FileSystems.exists(root):
        return
    if "://" not in root:  # local: folders are listed as they are
        for name in os.listdir(root):
            if name != key:
                FileSystems.delete([os.path.join(root, name)])
        return
    found = FileSystems.match([posixpath.join(root, "*", "**")])[0].metadata_list
    for name in {m.path[len(root) :].lstrip("/").split("/", 1)[0] for m in found}:
        if name != key:
            FileSystems.delete([posixpath.join(root, name)])


def remove(output: str) -> None:
    root = posixpath.join(output, STAGING)
    if FileSystems.exists(root):
        FileSystems.delete([root])


def free_bytes(output: str) -> int | None:
    """Free space on a local output's filesystem; None for other filesystems."""
    if "://" in output:
        return None
    path = os.path.abspath(output)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free
