"""The privacy report's statements an auditor signs: the residual scan's bound and verdict,
what was scanned (fields, mode, entity types) and the salt's status, and examples shown as
shapes. Split from privacy.py, which builds and renders the report."""

from __future__ import annotations

import math
from typing import Any

from gristmill.transforms.pii.report_rows import LEFT
from gristmill.transforms.pii.shapes import shaped

NER_TYPES = ("PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME")


def _per_mb(count: int, nbytes: int) -> float:
    return round(count / (nbytes / 1e6), 3) if nbytes else 0.0


def upper_bound(n: int, x: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on a rate seen x times in n trials."""
    if n <= 0:
        return 1.0
    if x >= n:
        return 1.0
    if x == 0:
        return 1 - (1 - confidence) ** (1 / n)
    alpha = 1 - confidence
    lo, hi = x / n, 1.0
    for _ in range(60):  # bisection on P(X <= x; n, p) = alpha, decreasing in p
        p = (lo + hi) / 2
        lo, hi = (p, hi) if _binom_cdf(x, n, p) > alpha else (lo, p)
    return hi


def _binom_cdf(x: int, n: int, p: float) -> float:
    logs = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(p) + (n - k) * math.log1p(-p)
        for k in range(x + 1)
    ]  # fmt: skip
    return sum(math.exp(v) for v in logs)


def needed_documents(max_rate: float, confidence: float = 0.95) -> int:
    """Documents a clean sample needs for its bound to reach `max_rate`."""
    return math.ceil(math.log(1 - confidence) / math.log(1 - max_rate))


def residual_summary(residual: dict | None, mode: str, documents: int = 0) -> dict[str, Any]:
    """The residual scan's counts, a 95% upper bound on the share of documents still holding a
    pattern entity, and a verdict: `pass` only when none was found and the bound is under
    `max_rate`; `inconclusive` when none was found but the sample is too small to say so."""
    if not residual or not residual.get("enabled", True):
        return {"verdict": "not run", "pattern_findings": 0, "other_findings": 0}
    found = residual.get("findings", {})
    pattern = {k: v for k, v in found.items() if k not in NER_TYPES}
    other = {k: v for k, v in found.items() if k in NER_TYPES}
    n = residual.get("documents", 0)
    left = residual.get(LEFT, 1 if sum(pattern.values()) else 0)
    max_rate = float(residual.get("max_rate", 0.01))
    bound = upper_bound(n, left)
    need = needed_documents(max_rate)
    if not n:
        verdict = "no sample"
    elif sum(pattern.values()):
        verdict = "fail"
    else:
        verdict = "pass" if bound <= max_rate else "inconclusive"
    note = (
        "names and places are not scrubbed in fast mode; the residual scan lists them"
        if mode == "fast" and other
        else ""
    )
    bound_text = (
        f"at 95% confidence at most {bound:.2%} of documents still hold a pattern entity "
        f"({left} of {n} re-scanned did); the verdict needs a bound under {max_rate:.2%}, "
        f"so at least {need} re-scanned documents"
    )
    if verdict == "inconclusive" and documents:
        bound_text += f" (sample_rate {min(1.0, need / documents):.3g} would re-scan them)"
    return {
        **residual,
        "pattern_findings": sum(pattern.values()),
        "other_findings": sum(other.values()),
        "per_mb": {k: _per_mb(v, residual.get("bytes", 0)) for k, v in sorted(found.items())},
        LEFT: left,
        "upper_bound_95": round(bound, 6),
        "documents_needed": need,
        "bound": bound_text,
        "verdict": verdict,
        "note": note,
    }


SCANNED_FIELDS = (
    "text",
    "url_or_path",
    "meta (every value, its key as context)",
)
NOT_SCANNED = (
    "drop and dead-letter details, manifest input paths (written by other stages: "
    "see `gristmill audit`)"
)


def scanned(config: dict) -> dict[str, Any]:
    """What the auditor must know: the fields scanned, the mode, the salt's status."""
    salt = config.get("salt") if isinstance(config.get("salt"), dict) else {}
    status = {
        "key file": "secret key in a key file outside the release (made on first use, 0600)",
        "environment": "secret given by reference to an environment variable",
        "job file": "given in the job file (by value)",
        "public demo salt": "PUBLIC demo salt: its HMACs can be reversed; not for real data",
    }.get(salt.get("source", ""), "unknown (recorded before salts were tracked)")
    fields = list(SCANNED_FIELDS) if config.get("scan_fields", True) else ["text"]
    return {
        "fields": fields,
        "not_scanned_here": NOT_SCANNED,
        "mode": config.get("mode", "fast"),
        "entities": list(config.get("entities", [])),
        "ner_entities": list(config.get("ner_entities", []))
        if config.get("mode") == "full"
        else [],
        "salt": {"status": status, "fingerprint": salt.get("fingerprint", "")},
    }


def shaped_examples(examples: dict) -> dict:
    """Examples as shapes (transforms/pii/shapes.py), again here for rows made before."""
    return {
        src: {kind: [shaped(c) for c in contexts] for kind, contexts in kinds.items()}
        for src, kinds in examples.items()
    }
