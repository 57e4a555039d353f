"""HTML main-text extraction quality and speed on the article-extraction-benchmark pages.

    python -m bench.extraction [--corpus ../shared/corpus]

Scores every extractor on the same 181 pages against their gold `articleBody`: per page, both texts
are lowercased and split into word tokens (`\\w+`, as the benchmark's tokenizer); precision, recall
and F1 are computed on the bags of tokens, then averaged over pages. pages/s covers decoding and
extraction on one core. Rows, side by side in one run:

- `reader (trafilatura)`: the web reader's own path, `html_text.html_to_text` (charset handling and
  the tuned trafilatura options the reader uses by default);
- `reader (resiliparse)`: the same path with `extractor: resiliparse`;
- `trafilatura defaults`: `trafilatura.extract(html_bytes)`;
- `resiliparse main_content`: `extract_plain_text(html, main_content=True)` on resiliparse's own
  encoding detection.

`main(argv)` returns the numbers as a dict for bench/run.py.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.tables import table

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> Counter[str]:
    return Counter(_TOKEN.findall((text or "").lower()))


def prf(gold: str, pred: str) -> tuple[float, float, float]:
    """Bag-of-tokens precision, recall, F1 of one page (1.0 each when both are empty)."""
    g, p = tokens(gold), tokens(pred)
    if not g and not p:
        return 1.0, 1.0, 1.0
    overlap = sum((g & p).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    precision, recall = overlap / sum(p.values()), overlap / sum(g.values())
    return precision, recall, 2 * precision * recall / (precision + recall)


def _extractors() -> dict[str, Callable[[bytes], str]]:
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    from gristmill.transforms.sources.html_text import html_to_text

    def resiliparse_default(data: bytes) -> str:
        return extract_plain_text(bytes_to_str(data, detect_encoding(data)), main_content=True)

    return {
        "reader (trafilatura)": lambda data: html_to_text(data, None, "trafilatura"),
        "reader (resiliparse)": lambda data: html_to_text(data, None, "resiliparse"),
        "trafilatura defaults": lambda data: trafilatura.extract(data) or "",
        "resiliparse main_content": resiliparse_default,
    }


def score(name: str, fn: Callable[[bytes], str], pages: dict[str, bytes], gold: dict) -> dict:
    scores = []
    empty = 0
    seconds = 0.0
    for key, data in pages.items():
        started = time.perf_counter()
        text = fn(data)
        seconds += time.perf_counter() - started
        empty += not text.strip()
        scores.append(prf(gold[key].get("articleBody", ""), text))
    n = len(scores)
    return {
        "extractor": name,
        "f1": round(sum(s[2] for s in scores) / n, 4),
        "precision": round(sum(s[0] for s in scores) / n, 4),
        "recall": round(sum(s[1] for s in scores) / n, 4),
        "pages_per_s": round(n / seconds, 1) if seconds else 0.0,
        "seconds": round(seconds, 2),
        "empty": empty,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="the shared corpus root")
    args = parser.parse_args(argv)
    base = Path(args.corpus) / "extraction"
    truth_path = base / "aeb-ground-truth.json"
    if not truth_path.is_file():
        print(f"extraction bench: {truth_path} not found; nothing measured.")
        return {"skipped": f"{truth_path} not found"}
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    gold = json.loads(truth_path.read_text(encoding="utf-8"))
    pages = {}
    for key in sorted(gold):
        path = base / "aeb-html" / f"{key}.html.gz"
        if path.is_file():
            pages[key] = gzip.decompress(path.read_bytes())
    rows = [score(name, fn, pages, gold) for name, fn in _extractors().items()]
    print(f"HTML extraction on {len(pages)} article-extraction-benchmark pages (mean token F1)")
    print(table(rows, ["extractor", "f1", "precision", "recall", "pages_per_s", "empty"]))
    return {"corpus": str(base), "pages": len(pages), "rows": rows}


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
