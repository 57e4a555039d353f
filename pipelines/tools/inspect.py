"""`gristmill inspect FILE`: a few rows of a release file, readable.

A masked-LM shard (.arrow) is decoded back to text with the masks shown: a masked position
reads `[MASK:word]` (replaced by [MASK]), `{shown>word}` (replaced by a random token) or
`(=word)` (selected but left as it was); `word` is what the model must predict. A table
(.parquet: documents, drops, dead letters) shows its fields, long text cut short.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

from tokenizers import Tokenizer

from gristmill.schemas.mlm import shard_metadata
from gristmill.schemas.mlm_shards import batch_arrays, open_shard

LEGEND = "[MASK:w] masked   {x>w} random token x   (=w) kept   w = the label to predict"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gristmill inspect",
        description=__doc__.splitlines()[0],
        epilog="exit status: 0 shown, 2 no such file or not a shard or table",
    )
    parser.add_argument("shard", help="an .arrow shard or a .parquet table of a release")
    parser.add_argument("--rows", type=int, default=3, help="rows to show (default 3)")
    parser.add_argument("--start", type=int, default=0, help="first row to show")
    parser.add_argument(
        "--tokenizer", help="tokenizer.json (default: the release's, beside shards/)"
    )
    return parser


def default_tokenizer(shard: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(shard))), "tokenizer.json")


def render_row(
    tok: Tokenizer, ids: list[int], labels: list[int] | None, attention: list[int], mask_id: int
) -> tuple[str, int]:
    """The row as text with its masked positions marked; and how many there are."""
    parts: list[str] = []
    run: list[int] = []
    masked = 0

    def flush() -> None:
        if run:
            parts.append(tok.decode(run, skip_special_tokens=False))
            run.clear()

    for i, token in enumerate(ids):
        if not attention[i]:
            break
        label = labels[i] if labels is not None else -100
        if label < 0:
            run.append(token)
            continue
        flush()
        masked += 1
        word = tok.id_to_token(label)
        if token == mask_id:
            parts.append(f"[MASK:{word}]")
        elif token == label:
            parts.append(f"(={word})")
        else:
            parts.append(f"{{{tok.id_to_token(token)}>{word}}}")
    flush()
    return " ".join(parts), masked


def describe(shard: str, tokenizer_path: str, start: int, rows: int) -> list[str]:
    table = open_shard(shard)
    meta = shard_metadata(table.schema)
    with open(tokenizer_path, "rb") as fh:
        raw = fh.read()
    sha = hashlib.sha256(raw).hexdigest()
    match = "matches" if sha == meta.get("tokenizer_sha256") else f"DIFFERS: {sha[:12]}"
    lines = [
        f"{shard}: {table.num_rows} rows x {meta['max_seq_length']} positions, split {meta['split']}, "
        f"shard {meta['shard'] + 1} of {meta['num_shards']}",
        f"  masking {meta['masking']}, p={meta['mlm_probability']} "
        f"({meta['mask_replace_prob']}/{meta['random_replace_prob']}/rest kept), "
        f"whole words {meta['whole_word_mask']}, copies {meta['dupe_factor']}, "
        f"packing {meta['packing']}, seed {meta['seed']}",
        f"  tokenizer {tokenizer_path}: sha256 {meta['tokenizer_sha256'][:12]}… ({match}), "
        f"vocabulary {meta['vocab_size']}",
        f"  {LEGEND}",
    ]
    tok = Tokenizer.from_str(raw.decode("utf-8"))
    mask_id = meta["special_tokens"]["mask"][1]
    window = table.slice(start, rows)
    for batch in window.to_batches():
        arrays = batch_arrays(batch)
        labels = arrays.get("labels")
        for r in range(batch.num_rows):
            text, masked = render_row(
                tok,
                arrays["input_ids"][r].tolist(),
                labels[r].tolist() if labels is not None else None,
                arrays["attention_mask"][r].tolist(),
                mask_id,
            )
            real = int(arrays["attention_mask"][r].sum())
            lines.append(f"row {start} ({real} tokens, {masked} masked):")
            lines.append(f"  {text}")
            start += 1
    return lines


def describe_table(path: str, start: int, rows: int, width: int = 300) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    lines = [f"{path}: {table.num_rows} rows, columns {', '.join(table.column_names)}"]
    for i, row in enumerate(table.slice(start, rows).to_pylist(), start):
        fields = []
        for key, value in row.items():
            text = str(value).replace("\n", "\u23ce")
            limit = width if key == "text" else 80
            fields.append(f"{key}={text[:limit]}{'…' if len(text) > limit else ''}")
        lines.append(f"row {i}:")
        lines.extend(f"  {f}" for f in fields)
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    tokenizer = args.tokenizer or default_tokenizer(args.shard)
    try:
        if args.shard.endswith(".parquet"):
            lines = describe_table(args.shard, max(0, args.start), max(0, args.rows))
        else:
            lines = describe(args.shard, tokenizer, max(0, args.start), max(0, args.rows))
    except FileNotFoundError as err:
        print(f"gristmill inspect: {err.filename or args.shard}: no such file", file=sys.stderr)
        return 2
    except (ValueError, KeyError, OSError) as err:  # pyarrow's ArrowInvalid is a ValueError
        print(f"gristmill inspect: {args.shard}: not a masked-LM shard ({err})", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
