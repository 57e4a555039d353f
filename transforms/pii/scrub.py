"""Scrubbing: presidio-anonymizer's conflict resolution and operators, applied in one pass.

Overlapping findings are resolved by presidio-anonymizer's own code, deterministically:
same-type overlaps merge, a finding inside another goes, and what still overlaps is trimmed in
favour of the higher score (`ConflictResolutionStrategy.REMOVE_INTERSECTIONS`, so every
character of every finding is still replaced); then same-type findings separated only by spaces
merge. Findings are sorted first (start, end, type, score), so the input order never matters.
The replacement strings come from presidio-anonymizer's operators (`replace`, `mask`,
`redact`) and `HmacHash` (a presidio Operator: salted HMAC-SHA256 of the value's canonical
form). The text is then rebuilt in one pass instead of presidio's one string copy per finding;
`tests/transforms/pii/test_pii.py` checks the result equals `AnonymizerEngine.anonymize`.

`value_hash` is what the findings table stores instead of a value, and what `gristmill audit`
recomputes: HMAC-SHA256 with the salt of `canonical(entity_type, value)`, so "(212) 555-0143"
and "212.555.0143" hash alike.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from presidio_anonymizer.entities import OperatorConfig
from presidio_anonymizer.operators import Operator, OperatorType

from gristmill.transforms.pii.hashing import OPERATORS, value_hash


class HmacHash(Operator):
    """presidio operator `hmac`: the first `hex_chars` hex digits of the value's `value_hash`."""

    def operate(self, text: str = None, params: dict = None) -> str:
        key = params["key"]
        key = key if isinstance(key, bytes) else key.encode("utf-8")
        digest = value_hash(key, params.get("entity_type", ""), text)
        return digest[: params.get("hex_chars", 16)]

    def validate(self, params: dict = None) -> None:
        if not params.get("key"):
            raise ValueError("hmac: a key is required")

    def operator_name(self) -> str:
        return "hmac"

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize


def operator_config(name: str, options: dict[str, Any], key: bytes) -> OperatorConfig:
    """One of OPERATORS as a presidio OperatorConfig."""
    if name == "replace":
        return OperatorConfig("replace", {})
    if name == "redact":
        return OperatorConfig("redact", {})
    if name == "mask":
        mask = options.get("mask", {})
        count = mask.get("chars_to_mask", 0) or 1 << 30  # 0 = the whole value
        return OperatorConfig(
            "mask",
            {
                "masking_char": mask.get("masking_char", "*"),
                "chars_to_mask": count,
                "from_end": mask.get("from_end", False),
            },
        )
    if name == "hash":
        return OperatorConfig("hmac", {"key": key, "hex_chars": options.get("hash_chars", 16)})
    raise ValueError(f"operator: unknown {name!r} (known: {', '.join(OPERATORS)})")


class Piece(NamedTuple):
    """One replaced span: where it is in the output, what it was in the input."""

    out_start: int
    out_end: int
    entity_type: str
    in_start: int
    in_end: int


class Scrubber:
    """Applies operators per entity type (and a default) to a text's findings."""

    def __init__(self, operators: dict[str, OperatorConfig], default: OperatorConfig):
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.operators import OperatorsFactory

        self.engine = AnonymizerEngine()
        self.engine.add_anonymizer(HmacHash)
        factory = OperatorsFactory()
        factory.add_anonymize_operator(HmacHash)
        self.configs = {**operators, "DEFAULT": default}
        self.operators = {
            kind: factory.create_operator_class(conf.operator_name, OperatorType.Anonymize)
            for kind, conf in self.configs.items()
        }
        for kind, conf in self.configs.items():
            self.operators[kind].validate(params={**conf.params, "entity_type": kind})

    def resolve(self, text: str, hits) -> list:
        """presidio-anonymizer's conflict resolution on findings sorted deterministically."""
        from presidio_anonymizer.entities import ConflictResolutionStrategy, RecognizerResult

        ordered = sorted(hits, key=lambda h: (h.start, h.end, h.entity_type, -h.score))
        results = [RecognizerResult(h.entity_type, h.start, h.end, h.score) for h in ordered]
        results = self.engine._remove_conflicts_and_get_text_manipulation_data(
            results, ConflictResolutionStrategy.REMOVE_INTERSECTIONS
        )
        results = self.engine._merge_entities_with_spaces_between(text, results)
        return sorted(results, key=lambda r: (r.start, r.end))

    def scrub(self, text: str, hits) -> tuple[str, list[Piece]]:
        """The text with every finding replaced, and where the replacements are.

        Built from the end as presidio's TextReplaceBuilder does (a later replacement cuts an
        earlier overlapping one short), but with one join instead of a copy per finding.
        """
        if not hits:
            return text, []
        tail: list[str] = []
        done: list[tuple[str, str, int, int]] = []
        last = len(text)
        for r in sorted(self.resolve(text, hits), key=lambda r: r.start, reverse=True):
            kind = r.entity_type if r.entity_type in self.configs else "DEFAULT"
            params = {**self.configs[kind].params, "entity_type": r.entity_type}
            new = self.operators[kind].operate(params=params, text=text[r.start : r.end])
            tail.append(text[min(r.end, last) : last])
            tail.append(new)
            done.append((new, r.entity_type, r.start, r.end))
            last = r.start
        tail.append(text[:last])
        pieces: list[Piece] = []
        out = "".join(reversed(tail))
        # Positions of the replacements, from the start: walk the parts in output order.
        parts = list(reversed(tail))  # text[:last], new, gap, new, gap, ...
        pos = len(parts[0])
        for i, (new, kind, start, end) in enumerate(reversed(done)):
            pieces.append(Piece(pos, pos + len(new), kind, start, end))
            pos += len(new) + len(parts[2 + 2 * i])
        return out, pieces
