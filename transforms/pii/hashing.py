"""Salts and value hashes of personal data: what the stage, its config and `gristmill audit`
share, kept free of presidio so that loading a job file stays fast.

There is no default salt in the code: a value's HMAC under a public key is as good as the value
(an SSN's is enumerated in seconds). The key is, in this order: `pii.salt` given as
`env:VARNAME` (read from the environment) or as the key itself; else the key file `pii.salt_file`
(default `~/.config/gristmill/pii-salt`, outside every release), created on first use with 32
random bytes, owner-only (0600, its folder 0700); a key file others can read is refused. A salt
that starts with `demo:` is a declared public demo salt (the sample job's): accepted, said so in
the reports, never for real data. Releases record only the key's fingerprint.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import stat
from pathlib import Path

OPERATORS = ("replace", "mask", "hash", "redact")
SALT_FILE = "~/.config/gristmill/pii-salt"
DEMO_PREFIX = "demo:"
KEY_BYTES = 32
FINGERPRINT_MESSAGE = b"gristmill pii salt fingerprint"
SPACES = re.compile(r"\s+")


def resolve_salt(salt: str, salt_file: str = SALT_FILE, create: bool = False) -> bytes:
    """The HMAC key: `env:NAME` reads the environment variable NAME; any other non-empty
    string is the key; empty: the key in `salt_file` (made first when `create`)."""
    if salt.startswith("env:"):
        name = salt[4:]
        value = os.environ.get(name)
        if not value:
            raise ValueError(f"salt: environment variable {name} is not set")
        return value.encode("utf-8")
    if salt:
        return salt.encode("utf-8")
    return key_from_file(salt_file, create)


def salt_source(salt: str) -> str:
    """Where the key comes from, as the reports say it."""
    if salt.startswith("env:"):
        return "environment"
    if salt.startswith(DEMO_PREFIX):
        return "public demo salt"
    return "job file" if salt else "key file"


def key_path(salt_file: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(salt_file)))


def key_from_file(salt_file: str, create: bool = False) -> bytes:
    """The key in `salt_file`; with `create`, a new random one is made when there is none."""
    path = key_path(salt_file)
    if not path.exists():
        if not create:
            raise ValueError(
                f"salt_file: {salt_file} does not exist; run the job that made the release "
                "here, or give the salt (pii.salt: env:VARNAME)"
            )
        _create_key(path, salt_file)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(
            f"salt_file: {salt_file} can be read by others (mode {mode:04o}); chmod 600 it"
        )
    key = path.read_bytes().strip()
    if len(key) < KEY_BYTES:
        raise ValueError(f"salt_file: {salt_file} holds fewer than {KEY_BYTES} characters")
    return key


def _create_key(path: Path, shown: str) -> None:
    """A new random key, written owner-only and linked into place atomically: of two jobs
    making it at once, the first one's stays and both use it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(KEY_BYTES) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    except OSError as err:
        raise ValueError(
            f"salt_file: cannot create {shown} ({err.strerror or type(err).__name__}); "
            "set pii.salt_file or pii.salt: env:VARNAME"
        ) from None


def salt_fingerprint(key: bytes) -> str:
    """Identifies a salt without revealing it: `gristmill audit` checks it was given the same."""
    return hmac.new(key, FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]


def canonical(entity_type: str, value: str) -> str:
    """The form of a value that is hashed: formatting differences do not change the hash."""
    if entity_type in ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN"):
        return "".join(str(int(c)) for c in value if c.isdecimal())
    if entity_type == "IBAN_CODE":
        return "".join(c for c in value if c.isalnum()).upper()
    if entity_type == "EMAIL_ADDRESS":
        return value.strip().lower()
    if entity_type == "IP_ADDRESS":
        try:
            return str(ipaddress.ip_interface(value.strip()).ip)
        except ValueError:
            return value.strip().lower()
    return SPACES.sub(" ", value.strip()).casefold()


def value_hash(key: bytes, entity_type: str, value: str) -> str:
    return hmac.new(key, canonical(entity_type, value).encode("utf-8"), hashlib.sha256).hexdigest()
