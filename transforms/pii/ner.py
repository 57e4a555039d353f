"""spaCy NER for names and places, run only where one can be, its results handed to presidio.

The model is loaded with only the components its `ner` needs (in the `en_core_web_sm` family
`ner` has its own tok2vec, so tagger, parser, attribute ruler and lemmatizer are left out; a
model whose `ner` listens to a shared tok2vec or transformer keeps that one).

English PERSON and LOCATION entities contain a capitalised word. NER runs on windows of
`window_chars` characters (widened to whole words) either side of each capitalised word that is
not a stop word (an all-capitals two-letter word such as "US" counts), so text made only of
common words never reaches the model. Measured on 150 KB each of SOTU addresses, books and
mail with the default 10 characters: the model sees 26 %, 31 % and 47 % of the text and the
windows keep 99.4 %, 97 % and 93 % of the entities whole-document NER finds; the ones lost are
almost all the model's own mistakes on lower-case words ("turkey", "n't"), and names written in
lower case, which are not looked for. The windows of one document are joined with a blank line
into pieces of at most `chunk_chars` (well within spaCy's `max_length`, whatever the document's
length), and the pieces go through `nlp.pipe` in batches of at most `chunk_chars` characters:
the model's working memory grows with a batch's tokens. Measured on 120 book slices and SOTU
addresses (peak RSS over the loaded model, CPU seconds, entities found): 100,000 characters at
once 158 MB, 30.5 s, 17,613; 5,000: 19 MB, 31.8 s, 17,615; 2,000 (the default): 8 MB, 33.8 s,
17,615 (3 of the 17,613 lost where a long run of windows is cut, 5 new). NER output does not
depend on how documents are batched. The entities become presidio NlpArtifacts
through presidio's own `SpacyNlpEngine` conversion, and presidio's `SpacyRecognizer` turns them
into results.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from typing import Any

from spacy.lang.en.stop_words import STOP_WORDS

_UPPER = "".join(c for c in map(chr, range(0x41, 0x2000)) if c.isupper() and c.isalpha())
CAPITALISED = re.compile(f"(?<![\\w])[{re.escape(_UPPER)}][\\w'\u2019.-]*")
STOP = frozenset(STOP_WORDS) - {"will", "may"}  # both are names too
SPACE = re.compile(r"\s")
SEPARATOR = "\n\n"
MAX_SNAP = 200


def name_seeds(text: str) -> list[tuple[int, int]]:
    """Capitalised words that could start or be part of a name."""
    out = []
    for m in CAPITALISED.finditer(text):
        core = re.split("['\u2019]", m.group(), maxsplit=1)[0].rstrip(".-")
        if len(core) < 2:
            continue
        if core.lower() in STOP and not (len(core) == 2 and core.isupper()):
            continue
        out.append(m.span())
    return out


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen to whitespace so no word is cut (at most MAX_SNAP characters out)."""
    lo = max(0, start - MAX_SNAP)
    if start > 0 and not text[start - 1].isspace():
        m = SPACE.search(text[lo:start][::-1])
        start = start - m.start() if m else lo
    if end < len(text) and not text[end].isspace():
        m = SPACE.search(text, end, end + MAX_SNAP)
        end = m.start() if m else min(len(text), end + MAX_SNAP)
    return start, end


def ner_windows(text: str, reach: int) -> list[tuple[int, int]]:
    n = len(text)
    out: list[tuple[int, int]] = []
    for s, e in name_seeds(text):
        a, b = _widen(text, max(0, s - reach), min(n, e + reach))
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return out


def _split_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    spans = []
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        spans.append((start, cut))
        start = cut
    spans.append((start, end))
    return spans


def pieces(text: str, spans: list[tuple[int, int]], limit: int) -> list[tuple[str, list]]:
    """Windows joined by a blank line into pieces of at most `limit` characters, with offsets
    [(piece_start, text_start, length)] to map entities back."""
    out: list[tuple[str, list]] = []
    parts: list[str] = []
    offsets: list[tuple[int, int, int]] = []
    pos = 0
    for a, b in spans:
        for s, e in _split_long(text, a, b, limit):
            if parts and pos + (e - s) > limit:
                out.append((SEPARATOR.join(parts), offsets))
                parts, offsets, pos = [], [], 0
            parts.append(text[s:e])
            offsets.append((pos, s, e - s))
            pos += e - s + len(SEPARATOR)
    if parts:
        out.append((SEPARATOR.join(parts), offsets))
    return out


def to_text_offsets(offsets: list, start: int, end: int) -> tuple[int, int] | None:
    """A piece span in the original text, clipped to the window it starts in."""
    i = bisect.bisect_right([o[0] for o in offsets], start) - 1
    if i < 0:
        return None
    piece_start, text_start, length = offsets[i]
    end = min(end, piece_start + length)
    if end <= start:
        return None
    return text_start + start - piece_start, text_start + end - piece_start


def needed_components(model: str) -> tuple[list[str], list[str]]:
    """(pipeline, components to exclude) so that only `ner` and what it listens to load."""
    from pathlib import Path

    from spacy.util import get_package_path, is_package, load_config

    path = get_package_path(model) if is_package(model) else Path(model)
    if is_package(model):  # a packaged model keeps its data in a versioned subfolder
        sub = [p for p in path.iterdir() if (p / "config.cfg").exists()]
        path = sub[0] if sub else path
    config = load_config(path / "config.cfg")
    pipeline = list(config["nlp"]["pipeline"])
    if "ner" not in pipeline:
        raise ValueError(f"spacy_model: {model} has no ner component")
    keep = {"ner"}
    tok2vec = config["components"]["ner"]["model"].get("tok2vec", {})
    if "Listener" in str(tok2vec.get("@architectures", "")):
        upstream = tok2vec.get("upstream", "*")
        keep |= {p for p in pipeline if upstream in ("*", p) and p in ("tok2vec", "transformer")}
    return pipeline, [p for p in pipeline if p not in keep]


def load_ner(model: str, entities: Sequence[str]) -> tuple[Any, Any, Any, dict[str, str]]:
    """(spaCy pipeline, presidio SpacyNlpEngine around it, SpacyRecognizer, model info)."""
    import spacy
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    _, exclude = needed_components(model)
    nlp = spacy.load(model, exclude=exclude)
    conf = NerModelConfiguration()
    mapping = conf.model_to_presidio_entity_mapping
    labels = set(nlp.get_pipe("ner").labels)
    conf.labels_to_ignore = sorted(lab for lab in labels if mapping.get(lab) not in entities)
    engine = SpacyNlpEngine(
        models=[{"lang_code": "en", "model_name": model}], ner_model_configuration=conf
    )
    engine.nlp = {"en": nlp}  # the loaded, reduced pipeline; presidio never loads its own
    recognizer = SpacyRecognizer(supported_language="en", supported_entities=list(entities))
    meta = nlp.meta
    info = {
        "model": model,
        "name": f"{meta.get('lang', '')}_{meta.get('name', '')}",
        "version": str(meta.get("version", "")),
        "spacy_version": spacy.__version__,
        "components": ",".join(nlp.pipe_names),
    }
    return nlp, engine, recognizer, info


class NerScanner:
    """NER over many documents at once; results per document in original offsets."""

    def __init__(
        self,
        model: str,
        entities: Sequence[str],
        window_chars: int,
        chunk_chars: int,
        batch_size: int,
    ):
        self.entities = list(entities)
        self.window_chars = window_chars
        self.chunk_chars = chunk_chars
        self.batch_size = batch_size
        self.nlp, self.engine, self.recognizer, self.info = load_ner(model, self.entities)

    def scan(self, texts: Sequence[str]) -> list[list]:
        """Presidio RecognizerResults per text, offsets in that text."""
        items = []
        for i, text in enumerate(texts):
            for piece, offsets in pieces(
                text, ner_windows(text, self.window_chars), self.chunk_chars
            ):
                items.append((piece, (i, offsets)))
        out: list[list] = [[] for _ in texts]
        for doc, (i, offsets) in self._piped(items):
            artifacts = self.engine._doc_to_nlp_artifact(doc, "en")
            for r in self.recognizer.analyze(doc.text, self.entities, artifacts):
                span = to_text_offsets(offsets, r.start, r.end)
                if span is not None:
                    r.start, r.end = span
                    out[i].append(r)
        return out

    def _piped(self, items: list[tuple[str, Any]]):
        for batch in bounded_batches(items, self.batch_size, self.chunk_chars):
            yield from self.nlp.pipe(batch, as_tuples=True, batch_size=len(batch))


def bounded_batches(
    items: Sequence[tuple[str, Any]], max_items: int, max_chars: int
) -> Iterator[list[tuple[str, Any]]]:
    """(text, context) pairs in order, in batches of at most `max_items` pairs and `max_chars`
    characters (a longer text alone): the model's working memory grows with a batch's tokens."""
    batch: list[tuple[str, Any]] = []
    chars = 0
    for item in items:
        if batch and (len(batch) >= max_items or chars + len(item[0]) > max_chars):
            yield batch
            batch, chars = [], 0
        batch.append(item)
        chars += len(item[0])
    if batch:
        yield batch
