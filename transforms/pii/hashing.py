"""Salts and value hashes of personal data: what the stage, its config and `gristmill audit`
share, kept free of presidio so that loading a job file stays fast."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re

OPERATORS = ("replace", "mask", "hash", "redact")
DEFAULT_SALT = "gristmill-default-salt: set pii.salt for real use"
FINGERPRINT_MESSAGE = b"gristmill pii salt fingerprint"
SPACES = re.compile(r"\s+")


def resolve_salt(salt: str) -> bytes:
    """`env:NAME` reads the salt from the environment variable NAME; anything else is the salt."""
    if salt.startswith("env:"):
        name = salt[4:]
        value = os.environ.get(name)
        if not value:
            raise ValueError(f"salt: environment variable {name} is not set")
        return value.encode("utf-8")
    return salt.encode("utf-8")


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
