"""The `latest` pointer beside dated releases (`gristmill run/refresh --latest`).

OUT/2026-12-02/, OUT/2026-12-09/ and OUT/latest -> 2026-12-09. A relative symbolic link: every
tool follows it without knowing it (`gristmill validate OUT/latest`, `load_dataset`,
`AutoTokenizer.from_pretrained`, `cd`), it moves in one atomic rename, and it stays right when
the whole folder is copied or moved. It moves only once the new release is complete (its
manifest written), so it never points at a half-built release. A refresh of OUT/latest records
the folder the link points to, never the link, so a lineage does not move with it. Object
stores have no links: for a gs:// or s3:// output a small file OUT/LATEST holds the release's
name instead.
"""

from __future__ import annotations

import os
import posixpath

from gristmill.pipelines.config import ConfigError

LINK = "latest"
REMOTE_FILE = "LATEST"


def pointer(output: str) -> str:
    """Where the pointer for a release at `output` lives."""
    out = output.rstrip("/")
    if "://" in out:
        return posixpath.join(posixpath.dirname(out), REMOTE_FILE)
    return os.path.join(os.path.dirname(os.path.abspath(out)), LINK)


def check(output: str) -> None:
    """Before any work: the pointer may be made or moved without destroying anything."""
    out = output.rstrip("/")
    if posixpath.basename(out) in (LINK, REMOTE_FILE):
        raise ConfigError(f"--latest: the release may not itself be named {LINK!r}; date it")
    link = pointer(out)
    if "://" not in link and os.path.lexists(link) and not os.path.islink(link):
        raise ConfigError(f"--latest: {link} exists and is not a link; move it away first")


def point(output: str) -> str:
    """Makes the pointer name the release at `output` (complete by now); returns its path."""
    out = output.rstrip("/")
    link = pointer(out)
    name = posixpath.basename(out)
    if "://" in link:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.create(link) as fh:
            fh.write(f"{name}\n".encode())
        return link
    tmp = f"{link}.tmp-{os.getpid()}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(name, tmp)
    os.replace(tmp, link)  # atomic: readers see the old release or the new one
    return link
