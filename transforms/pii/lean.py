"""presidio and spaCy imported without torch and transformers when the job's model needs neither.

presidio_analyzer imports transformers (for its optional transformer NLP engine) and spaCy's
thinc imports torch whenever they are installed, as they are with the `train` extra: about 320 MB
of resident memory and 4-5 CPU-seconds per process, in every process that scrubs, for code the
pattern recognizers and a CNN spaCy model never call. Both libraries treat a missing package as
"not available", so here they are imported once while `torch` and `transformers` are marked
absent (a `None` entry in `sys.modules` makes their import raise ImportError); the marks are
removed right after, so later code in the process can still import them. A spaCy model built
on a transformer component keeps them. `PiiEngine` calls it first thing, so whoever builds an
engine before importing the scrubber's module (presidio_anonymizer) gets the lean import.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

HIDDEN = ("torch", "transformers")
LOADED = ("presidio_analyzer", "presidio_anonymizer", "spacy", "thinc")
TRANSFORMER = re.compile(r'^\s*factory\s*=\s*"(curated_)?transformer"', re.MULTILINE)


def _model_config(model: str) -> Path | None:
    """The model's config.cfg (a package keeps it in a versioned subfolder), if found."""
    folder = Path(model)
    if not folder.is_dir():
        spec = importlib.util.find_spec(model) if model.isidentifier() else None
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            return None
        folder = Path(locations[0])
    found = sorted(folder.glob("config.cfg")) + sorted(folder.glob("*/config.cfg"))
    return found[0] if found else None


def needs_torch(model: str | None) -> bool:
    """True if NER runs `model` and its pipeline has a transformer component (or cannot be read:
    then nothing is hidden)."""
    if not model:
        return False
    config = _model_config(model)
    if config is None:
        return True
    return TRANSFORMER.search(config.read_text(encoding="utf-8", errors="replace")) is not None


def import_presidio(ner_model: str | None = None) -> None:
    """Imports presidio (analyzer, anonymizer) and spaCy, leaving torch and transformers out
    unless `ner_model` needs them. Does nothing once any of them is imported."""
    if any(name in sys.modules for name in LOADED) or needs_torch(ner_model):
        return
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import presidio_analyzer  # noqa: F401
        import presidio_anonymizer  # noqa: F401
        import spacy  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
