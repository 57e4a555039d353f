"""North-American phone numbers as people write them, whatever the area code.

presidio's phone recognizer keeps only numbers the `phonenumbers` library calls *valid*, and
for North America that means an area code assigned today: `(476) 875-8688` or `+1 598 892 4319`
(unassigned area codes) are "possible" but not valid, so they were left in the text, although
they are written exactly as real numbers are (and area codes keep being assigned). This
recognizer finds the NANP shape itself: area code and exchange starting with 2-9, four line
digits, in the formats people write:

- `549-480-7107`, `549.480.7107` (one separator kind): score `formatted`;
- `(476) 875-8688`, `(476)875-8688`: score `formatted`;
- with a country code: `+1 598 892 4319`, `+1-598-892-4319`, `1-800-555-0199`,
  `+1 (598) 892-4319`: score `formatted`;
- `549 480 7107` (spaces only): score `spaced`, unless digits stand right before or after it
  (a row of a table of figures), then not found;
- `5494807107` (ten plain digits): score `plain`, under the default threshold, so found only
  with a context word before it ("phone", "tel", "call", ...).

presidio's recognizer still runs beside it for every other country's numbers.
"""

from __future__ import annotations

import re

from presidio_analyzer import EntityRecognizer, RecognizerResult

ENTITY = "PHONE_NUMBER"
NANP = re.compile(
    r"(?<![\w+$\u00a3\u20ac\u00a5.,/-])"
    r"(?P<cc>\+1[ .-]?|1[ .-])?"
    r"(?:\((?P<pa>[2-9]\d{2})\)[ ]?(?P<px>[2-9]\d{2})[ .-]\d{4}"
    r"|(?P<sa>[2-9]\d{2})(?P<s>[ .-])[2-9]\d{2}(?P=s)\d{4}"
    r"|[2-9]\d{2}[2-9]\d{6})"
    r"(?![\w]|[.,/-]\d)"
)
DIGIT_AROUND_BEFORE = re.compile(r"\d[ \t]?$")
DIGIT_AROUND_AFTER = re.compile(r"[ \t]?\d")
CONTEXT = ["phone", "tel", "telephone", "call", "cell", "mobile", "fax", "contact", "reach"]


class NanpRecognizer(EntityRecognizer):
    """PHONE_NUMBER: NANP numbers with any area code (see the module docstring)."""

    def __init__(self, formatted: float = 0.6, spaced: float = 0.5, plain: float = 0.3):
        self.scores = {"formatted": formatted, "spaced": spaced, "plain": plain}
        super().__init__(supported_entities=[ENTITY], name="NanpRecognizer", context=list(CONTEXT))

    def load(self) -> None:
        return None

    def kind(self, m: re.Match, text: str) -> str | None:
        """formatted | spaced | plain, or None when the match is a piece of a row of figures."""
        if m.group("pa") or m.group("s") in ("-", "."):
            return "formatted"
        if m.group("cc") and m.group("cc").startswith("+"):
            return "formatted"
        before = text[max(0, m.start() - 2) : m.start()]
        after = text[m.end() : m.end() + 2]
        if DIGIT_AROUND_BEFORE.search(before) or DIGIT_AROUND_AFTER.match(after):
            return None
        if m.group("cc"):
            return "formatted" if m.group("s") == " " else "plain"
        return "spaced" if m.group("s") == " " else "plain"

    def analyze(self, text: str, entities, nlp_artifacts=None) -> list:
        out = []
        for m in NANP.finditer(text):
            kind = self.kind(m, text)
            if kind is None:
                continue
            meta = {
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            }
            out.append(RecognizerResult(ENTITY, m.start(), m.end(), self.scores[kind], None, meta))
        return out
