"""No public salt: the key file made on first use, owner-only, and what releases record of it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gristmill.transforms.params import as_dict, defaults
from gristmill.transforms.params import load as load_params
from gristmill.transforms.pii import hashing
from gristmill.transforms.pii import stage as pii
from gristmill.transforms.pii.config import PiiParams, recorded_config
from gristmill.transforms.stage import StageContext

REPO = Path(__file__).resolve().parents[3]


def params(**given) -> PiiParams:
    section = defaults(PiiParams)
    section["residual"]["enabled"] = False
    section.update(given)
    return load_params(PiiParams, section)


def test_no_salt_is_written_in_the_code():
    assert not hasattr(hashing, "DEFAULT_SALT")
    assert defaults(PiiParams)["salt"] == ""
    for path in (REPO / "transforms" / "pii").glob("*.py"):
        assert "default-salt" not in path.read_text()


def test_first_use_makes_an_owner_only_random_key_and_reuses_it(tmp_path):
    key_file = tmp_path / "conf" / "gristmill" / "pii-salt"
    p = params(salt_file=str(key_file))
    first = recorded_config(p)["salt"]
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    key = key_file.read_bytes().strip()
    assert len(key) == 2 * hashing.KEY_BYTES
    assert first == {
        "fingerprint": hashing.salt_fingerprint(key),
        "default": True,
        "from_env": False,
        "source": "key file",
    }
    assert key.decode() not in str(recorded_config(p))
    assert recorded_config(p)["salt"] == first  # the same key on every later run
    other = tmp_path / "other-salt"
    assert (
        recorded_config(params(salt_file=str(other)))["salt"]["fingerprint"] != first["fingerprint"]
    )


def test_key_readable_by_others_is_refused(tmp_path):
    key_file = tmp_path / "pii-salt"
    key_file.write_text("x" * 64)
    os.chmod(key_file, 0o644)
    with pytest.raises(ValueError, match=r"salt_file: .* can be read by others .*chmod 600"):
        hashing.resolve_salt("", str(key_file))


def test_workers_read_the_key_but_never_make_one(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        hashing.resolve_salt("", str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()


def test_key_inside_the_output_is_refused(tmp_path):
    out = tmp_path / "release"
    p = params(salt_file=str(out / "pii-salt"))
    with pytest.raises(ValueError, match="inside the output"):
        pii.build(p, StageContext("pii", str(out), 0, {}))
    outside = params(salt_file=str(tmp_path / "pii-salt"))
    assert pii.build(outside, StageContext("pii", str(out), 0, {})) is not None


def test_env_and_demo_salts_are_recorded_by_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("PII_TEST_SALT", "from the environment")
    env = recorded_config(params(salt="env:PII_TEST_SALT"))["salt"]
    assert env["source"] == "environment" and env["from_env"] and not env["default"]
    assert "from the environment" not in str(env)
    demo = recorded_config(params(salt="demo: public"))["salt"]
    assert demo["source"] == "public demo salt" and demo["ref"] == "demo: public"


def test_demo_job_names_its_salt_as_a_public_demo_salt():
    import yaml

    job = yaml.safe_load((REPO / "sample" / "demo.yaml").read_text())
    assert job["pii"]["salt"].startswith(hashing.DEMO_PREFIX)
    assert "public" in job["pii"]["salt"]
    assert as_dict(params(salt=job["pii"]["salt"]))["salt"] == job["pii"]["salt"]
