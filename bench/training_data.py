"""Clean documents -> masked-LM shards, MB of text per second per core, side by side with
(a) the Hugging Face path (`datasets` map with a fast tokenizer -> group_texts ->
DataCollatorForLanguageModeling over every block -> save_to_disk) and (b) bare `encode_batch`
of the same tokenizer on the same text in 10k-character chunks, the limit.

All paths run in this one process, on one core (tokenizers' and torch's own threads are off),
interleaved over rounds; the best round of each counts. "per core" divides by the process's
CPU seconds, so other work on the machine inflates wall time, not the figure. Real text from
../shared/corpus: books, State of the Union addresses and Wikipedia pages, read and
normalized as the job does.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.tables import table
from gristmill.transforms.params import defaults

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # before tokenizers runs anything

ROOT = Path(__file__).resolve().parent.parent
SEQ_LEN = 128


def load_documents(corpus: Path, max_mb: float):
    """Documents from the three sources, about `max_mb` of text, a third from each."""
    from gristmill.pipelines.config import SOURCE_OPTIONS
    from gristmill.schemas.records import Document, make_doc_id
    from gristmill.transforms.normalize import NormalizeParams, normalize_text
    from gristmill.transforms.sources import reader_for
    from gristmill.transforms.sources.read import match_inputs
    from gristmill.transforms.sources.reader_api import RawRecord, ReadContext
    from gristmill.transforms.sources.streams import InputFile

    sets = [
        ("books", "books", ["books/*.txt", "books/shakespeare/*.txt"]),
        ("sotu", "articles", ["articles/sotu.jsonl"]),
        ("wiki", "wiki", ["articles/enwiki-sample.xml.bz2"]),
    ]
    params = NormalizeParams()
    per_source = []
    for name, kind, patterns in sets:
        docs = []
        options = {k: v[2] for k, v in SOURCE_OPTIONS[kind].items()}
        for f in match_inputs([str(corpus / p) for p in patterns]):
            ctx = ReadContext(name, f.path, f.relpath, options, 256 << 20, "replace")
            for out in reader_for(kind)(InputFile(f.path, 8 << 30), ctx):
                if isinstance(out, RawRecord) and not out.drop and out.text.strip():
                    text = normalize_text(out.text, params)
                    doc_id = make_doc_id(name, f.relpath, out.offset)
                    docs.append(Document(doc_id, name, f.relpath, text))
        per_source.append(docs)
    picked, share = [], max_mb * 1e6 / len(per_source)
    for docs in per_source:  # an equal share of text from each source
        total = 0
        for doc in docs:
            if total >= share:
                break
            picked.append(doc)
            total += len(doc.text.encode("utf-8"))
    return picked


def _timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def _load_docs(path: str):
    with open(path, "rb") as fh:
        yield from pickle.load(fh)


def ours_beam(docs_path: str, tok_path: str, out: str) -> None:
    """The job's own sub-graph on Beam's FnApiRunner, one in-process worker; the documents
    come from a file (beam.Create would pickle and bz2 them into the graph)."""
    import copy

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from gristmill.transforms.stage import StageContext
    from gristmill.transforms.training import examples as mlm
    from gristmill.transforms.training import tokenizer as tokenize
    from gristmill.transforms.training.graph import add_training_data

    tok = copy.deepcopy(defaults(tokenize.TokenizerParams)) | {"path": tok_path}
    section = copy.deepcopy(defaults(mlm.MlmParams)) | {"enabled": True, "max_seq_length": SEQ_LEN}
    options = PipelineOptions(["--direct_num_workers=1", "--direct_running_mode=in_memory"])
    with beam.Pipeline(runner=FnApiRunner(), options=options) as p:
        pdocs = p | beam.Create([docs_path]) | beam.FlatMap(_load_docs)
        add_training_data(p, pdocs, tok, section, StageContext("mlm", out, 0, {}))


def ours_inline(docs, tok_json: str, out: str) -> None:
    """The same functions without Beam: encode, pack, mask, write one shard."""
    import copy

    from gristmill.schemas.mlm import mlm_schema, mlm_table, numpy_dtypes
    from gristmill.transforms.training import examples as mlm
    from gristmill.transforms.training import tokenizer as tokenize
    from gristmill.transforms.training.shards import (
        BATCH_BYTES,
        example_columns,
        pack,
        row_bytes,
        write_shard,
    )

    info = tokenize.inspect_tokenizer(
        tok_json, tokenize.special_tokens(defaults(tokenize.TokenizerParams))
    )
    section = copy.deepcopy(defaults(mlm.MlmParams)) | {"max_seq_length": SEQ_LEN}
    spec = mlm.MaskSpec.of(section, 0, info)
    encode = mlm.EncodeDocs(0, 0.0, False, "[UNK]")
    encode.setup()
    encode.start_bundle()
    encoded = [d for doc in docs for _, d in encode.process(doc, tok_json)]
    encoded += [wv.value[1] for wv in encode.finish_bundle()]
    schema = mlm_schema(SEQ_LEN, spec.vocab_size, spec.metadata(), labels=True)
    tokens = mlm.DocTokens.of(encoded, False)
    columns = example_columns(
        tokens, pack(tokens.lengths, SEQ_LEN, "concat"), spec, numpy_dtypes(schema)
    )
    write_shard(out, "train.arrow", mlm_table(columns, schema), BATCH_BYTES // row_bytes(spec))


def hf_path(docs, tok_path: str, out: str) -> None:
    """run_mlm.py's recipe, masking every block once with the collator, saved to disk."""
    from itertools import chain

    import datasets
    from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=tok_path,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    ds = datasets.Dataset.from_dict({"text": [d.text for d in docs]})

    def tokenize_fn(examples):
        return tokenizer(examples["text"], return_special_tokens_mask=True)

    def group_texts(examples):
        joined = {k: list(chain(*examples[k])) for k in examples}
        total = len(joined["input_ids"]) // SEQ_LEN * SEQ_LEN
        return {
            k: [t[i : i + SEQ_LEN] for i in range(0, total, SEQ_LEN)] for k, t in joined.items()
        }

    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)

    def mask(examples):
        rows = [
            {"input_ids": i, "special_tokens_mask": s}
            for i, s in zip(examples["input_ids"], examples["special_tokens_mask"], strict=True)
        ]
        batch = collator(rows)
        return {"input_ids": batch["input_ids"].numpy(), "labels": batch["labels"].numpy()}

    tokenized = ds.map(tokenize_fn, batched=True, remove_columns=["text"])
    grouped = tokenized.map(group_texts, batched=True)
    masked = grouped.map(mask, batched=True, batch_size=1000, remove_columns=grouped.column_names)
    masked.save_to_disk(out)


def bare_encode(docs, tok_json: str) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tok_json)
    chunks = [d.text[i : i + 10_000] for d in docs for i in range(0, len(d.text), 10_000)]
    tok.encode_batch(chunks)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--mb", type=float, default=6.0, help="MB of text to process")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-hf", action="store_true", help="leave out the HF path")
    return parser


def _hf_ready(skip_hf: bool) -> bool:
    """Whether the HF path runs; its libraries set to one thread, quiet and without caches, so
    it is timed on the same terms as ours."""
    have_hf = not skip_hf
    try:
        import torch
        import transformers

        torch.set_num_threads(1)
        transformers.logging.set_verbosity_error()
        import datasets

        datasets.disable_caching()
        datasets.disable_progress_bars()
    except ImportError:
        print("bench/mlm: torch/transformers/datasets not installed: the HF path is left out")
        have_hf = False
    return have_hf


def _train_tokenizer(docs, mb: float) -> str:
    """A WordPiece tokenizer trained on the documents (untimed by the rounds), as JSON."""
    from gristmill.transforms.training import tokenizer as tokenize

    started = time.perf_counter()
    section = dict(defaults(tokenize.TokenizerParams))
    tok_json = tokenize.train_tokenizer([d.text for d in docs], section).to_str()
    train_s = time.perf_counter() - started
    print(
        f"{len(docs)} documents, {mb:.2f} MB of text; WordPiece {section['vocab_size']} trained "
        f"on them in {train_s:.1f} s (not timed below); sequences of {SEQ_LEN}, static masking"
    )
    return tok_json


def _paths(docs, tok_json: str, work: Path, have_hf: bool) -> dict:
    """Each measured path as a function of its output directory; their inputs written first."""
    tok_path = str(work / "tokenizer.json")
    Path(tok_path).write_text(tok_json, encoding="utf-8")
    docs_path = str(work / "docs.pickle")
    with open(docs_path, "wb") as fh:
        pickle.dump(docs, fh)
    paths = {
        "ours (Beam job sub-graph, 1 worker)": lambda out: ours_beam(docs_path, tok_path, out),
        "ours (same functions, no Beam)": lambda out: ours_inline(docs, tok_json, out),
        "(b) bare encode_batch, 10k-char chunks": lambda out: bare_encode(docs, tok_json),
    }
    if have_hf:
        paths["(a) HF datasets + collator + save_to_disk"] = lambda out: hf_path(
            docs, tok_path, out
        )
    return paths


def _best_of_rounds(paths: dict, rounds: int, work: Path) -> dict[str, tuple[float, float]]:
    """Each path's (wall, CPU) seconds of its round with the least CPU; the order alternates
    from round to round so no path always runs first."""
    best: dict[str, tuple[float, float]] = {}
    for r in range(rounds):
        names = list(paths) if r % 2 == 0 else list(reversed(paths))
        for name in names:
            out = work / f"out-{r}"
            out.mkdir(exist_ok=True)
            wall, cpu = _timed(paths[name], str(out))
            shutil.rmtree(out, ignore_errors=True)
            if name not in best or cpu < best[name][1]:
                best[name] = (wall, cpu)
    return best


def _rows(best: dict[str, tuple[float, float]], mb: float) -> list[dict]:
    """MB/s by wall and per core, and each path against bare encode and the HF path."""
    rows = []
    for name, (wall, cpu) in best.items():
        rows.append(
            {
                "path": name,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "mb_per_s_wall": round(mb / wall, 3),
                "mb_per_s_per_core": round(mb / cpu, 3),
            }
        )
    bare = next(r for r in rows if r["path"].startswith("(b)"))["mb_per_s_per_core"]
    hf = next((r["mb_per_s_per_core"] for r in rows if r["path"].startswith("(a)")), None)
    for row in rows:
        row["x_bare"] = round(row["mb_per_s_per_core"] / bare, 2)
        row["x_hf"] = round(row["mb_per_s_per_core"] / hf, 2) if hf else ""
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    corpus = Path(args.corpus)
    if not corpus.is_dir():
        print(
            f"bench/mlm: {corpus} not found; the benchmark reads the real corpus. Nothing measured."
        )
        return {}
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    have_hf = _hf_ready(args.skip_hf)
    docs = load_documents(corpus, args.mb)
    mb = sum(len(d.text.encode("utf-8")) for d in docs) / 1e6
    tok_json = _train_tokenizer(docs, mb)
    work = Path(tempfile.mkdtemp(prefix="bench-mlm-"))
    paths = _paths(docs, tok_json, work, have_hf)
    try:
        best = _best_of_rounds(paths, args.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = _rows(best, mb)
    print(
        table(
            rows,
            ["path", "wall_s", "cpu_s", "mb_per_s_wall", "mb_per_s_per_core", "x_hf", "x_bare"],
        )
    )
    load = os.getloadavg()[0]
    print(
        f"best of {args.rounds} interleaved rounds; load average {load:.1f} on {os.cpu_count()} cores"
    )
    return {"documents": len(docs), "mb": round(mb, 2), "load_average": load, "paths": rows}


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
