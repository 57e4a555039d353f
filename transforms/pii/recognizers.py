"""Which presidio recognizers find which entity, grouped by the pre-screen group that feeds them.

Each pre-screened group runs presidio's own recognizer for its entity. The e-mail group also
runs `EmailFallbackRecognizer`, a presidio PatternRecognizer for address forms presidio's
EmailRecognizer misses in real mail, each of which still names a person:

- an address inside a URL query (presidio's local-part class takes in the URL path, and the
  whole then fails its domain check): found whole, score 1.0 when the domain has a public suffix;
- an address whose domain has no public suffix: anti-spam suffixes (`name@host.com.nospam`),
  internal hosts, text glued on (`name@lists.example.nethttps`): score 0.4, which the default
  threshold keeps; image names such as `icon@2x.png` are not addresses and are left alone;
- the shortened addresses of list archives (`name@d...`): score 0.5.
"""

from __future__ import annotations

from typing import Any

from gristmill.transforms.pii import prescreen as pre

FILE_SUFFIXES = frozenset(
    [
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "webp",
        "bmp",
        "ico",
        "tif",
        "tiff",
        "css",
        "js",
        "mjs",
        "json",
        "html",
        "htm",
        "php",
        "asp",
        "aspx",
        "jsp",
        "txt",
        "pdf",
    ]
)


def email_fallback_recognizer():
    import tldextract
    from presidio_analyzer import Pattern, PatternRecognizer

    class EmailFallbackRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str):
            if pattern_text.endswith("..."):
                return None  # shortened: keeps the pattern's score
            domain = pattern_text.rsplit("@", 1)[-1]
            if tldextract.extract(domain).fqdn:
                return True
            if domain.rsplit(".", 1)[-1].lower() in FILE_SUFFIXES:
                return False
            return None

    patterns = [
        Pattern(
            "email, any domain",
            r"(?<![\w.+-])[\w.+-]*\w@[\w-]+(?:\.[\w-]+)*\.[A-Za-z_][\w-]*\b",
            0.4,
        ),
        Pattern("email, domain cut short", r"(?<![\w.+-])[\w.+-]*\w@[\w-]+\.{3}", 0.5),
    ]
    return EmailFallbackRecognizer(
        supported_entity="EMAIL_ADDRESS",
        name="EmailFallbackRecognizer",
        patterns=patterns,
        context=["email", "mail"],
    )


def group_recognizers(entities, phone_regions, numbers=None) -> dict[str, list[Any]]:
    """Pre-screen group -> the recognizers run on its windows. `numbers` (NumberOptions):
    issued card ranges instead of presidio's card pattern; NANP numbers of any area code
    beside presidio's phone recognizer."""
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    from gristmill.transforms.pii.allow import NumberOptions
    from gristmill.transforms.pii.cards import IssuedCardRecognizer
    from gristmill.transforms.pii.nanp import NanpRecognizer

    numbers = numbers or NumberOptions()
    cards = IssuedCardRecognizer if numbers.cards == "issued" else CreditCardRecognizer
    nanp = [NanpRecognizer()] if numbers.nanp else []
    made = {
        pre.EMAIL: lambda: [EmailRecognizer(), email_fallback_recognizer()],
        pre.PHONE: lambda: [PhoneRecognizer(supported_regions=tuple(phone_regions)), *nanp],
        pre.IP: lambda: [IpRecognizer()],
        pre.CARD: lambda: [cards()],
        pre.SSN: lambda: [UsSsnRecognizer()],
        pre.IBAN: lambda: [IbanRecognizer()],
    }
    wanted = {pre.ENTITY_GROUP[e] for e in entities if e in pre.ENTITY_GROUP}
    return {group: made[group]() for group in pre.GROUPS if group in wanted}


def _predefined():
    import logging

    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer.recognizer_registry import RecognizerRegistry

    logging.getLogger("presidio-analyzer").setLevel(logging.CRITICAL + 1)

    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"])
    return [r for r in registry.recognizers if isinstance(r, PatternRecognizer)]


def other_recognizers(entities: list[str]) -> list[Any]:
    """presidio's predefined pattern recognizers for entities outside the pre-screened six;
    they run on the whole text."""
    if not entities:
        return []
    found = [r for r in _predefined() if set(r.supported_entities) & set(entities)]
    missing = set(entities) - {e for r in found for e in r.supported_entities}
    if missing:
        raise ValueError(f"entities: no pattern recognizer for {', '.join(sorted(missing))}")
    return sorted(found, key=lambda r: r.name)


def known_entities() -> set[str]:
    return {e for r in _predefined() for e in r.supported_entities} | set(pre.ENTITY_GROUP)
