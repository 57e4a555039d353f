"""The labelled text bench/langid.py measures on: lingua sentences and UDHR paragraphs.

Each item carries the lid.176 label its language tag maps to, so accuracy is scored against
what the model can name; tags it cannot name are returned apart, to be reported as skipped.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

SENTENCES_PER_PARAGRAPH = 5
# Codes whose lid.176 label differs: macrolanguage members, and lid.176's Wikipedia codes (its
# `als` is Alemannic, ISO `gsw`; ISO `als` is Tosk Albanian, lid.176 `sq`).
TO_LID = {"nb": "no", "zlm": "ms", "als": "sq", "gsw": "als"}
# Scripts lid.176 was not trained on for that language: it cannot name these variants.
SKIP_TAGS = {
    "az-Cyrl", "bs-Cyrl", "ckb-Latn", "jv-Java", "mn-Mong", "sa-Gran", "sr-Latn", "tk-Cyrl",
    "tl-Tglg", "ug-Latn", "uz-Cyrl", "vi-Hani",
}  # fmt: skip
_HTML_LANG = re.compile(r"<html[^>]*\blang=\"([^\"]+)\"")
_PARA = re.compile(r"<p>(.*?)</p>", re.S)
_TAG = re.compile(r"<[^>]+>")


def lid_label(tag: str, labels: frozenset[str]) -> str | None:
    """The lid.176 label a language tag maps to, or None when lid.176 cannot name it."""
    if tag in SKIP_TAGS:
        return None
    primary = tag.split("-")[0]
    primary = TO_LID.get(primary, primary)
    return primary if primary in labels else None


def lingua_items(root: Path, labels: frozenset[str]) -> tuple[list[tuple], list[str]]:
    items, skipped = [], []
    for path in sorted((root / "lingua-sentences").glob("*.txt")):
        label = lid_label(path.stem, labels)
        if label is None:
            skipped.append(path.stem)
            continue
        lines = [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
        for i in range(0, len(lines), SENTENCES_PER_PARAGRAPH):
            text = " ".join(lines[i : i + SENTENCES_PER_PARAGRAPH])
            items.append((f"lingua/{path.stem}/{i}", "lingua", label, text))
    return items, skipped


def udhr_items(root: Path, labels: frozenset[str]) -> tuple[list[tuple], list[str]]:
    items, skipped = [], set()
    for path in sorted((root / "udhr").glob("*.html")):
        page = path.read_text(encoding="utf-8")
        found = _HTML_LANG.search(page)
        tag = found.group(1) if found else "und"
        label = lid_label(tag, labels)
        if label is None:
            skipped.add(tag)
            continue
        for j, raw in enumerate(_PARA.findall(page)):
            text = " ".join(html.unescape(_TAG.sub(" ", raw)).split())
            if text:
                items.append((f"udhr/{path.stem}/{j}", "udhr", label, text))
    return items, sorted(skipped)
