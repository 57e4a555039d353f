"""The `dedup` config section, shared by the exact (`dedup_exact`) and near (`dedup_near`) stages.

Both stages read the same section: `dedup.enabled` switches both, `dedup.exact.enabled` and
`dedup.near.enabled` each one. The survivor of a group of duplicates is the member with the
smallest rank key: `(priority, id)`, where priority is 0 for every source under
`survivor: lowest_id`, and the source's position in `source_priority` under
`survivor: source_priority` (sources not listed come after the listed ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SECTION = "dedup"

# Scripts written without spaces between words get character n-grams (see minhash_shingles.py).
UNSPACED_LANGS = ["zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu"]

DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "threshold": 0.8,  # Jaccard similarity of 5-gram shingle sets at which two documents are duplicates
    "survivor": "lowest_id",  # lowest_id | source_priority
    "source_priority": [],  # source names, most trusted first (survivor: source_priority)
    "exact": {"enabled": True},
    "near": {
        "enabled": True,
        "num_perm": 128,
        "ngram": 5,  # words per shingle
        "bands": None,  # LSH bands and rows; both None = chosen from threshold (datasketch)
        "rows": None,
        "false_negative_weight": 0.9,  # weight of misses vs. false candidates in choosing (bands, rows)
        "verify": True,  # keep a candidate pair only if its estimated Jaccard reaches threshold
        "verify_k": 512,  # bottom-k sketch size for verification (0 = the MinHash signature)
        "char_ngram": 5,  # characters per shingle for unspaced scripts
        "char_ngram_langs": list(UNSPACED_LANGS),  # doc.lang primary subtags that get char n-grams
        "char_ngram_script_share": 0.3,  # ...or when this share of word chars is unspaced (0 = off)
        "max_bucket_size": 100,  # larger LSH buckets emit star edges to their minimum member
        "max_rounds": 16,  # large-star/small-star rounds of connected components
        "batch_chars": 1_000_000,  # characters signed per numpy batch
    },
    "index": {"enabled": True, "shards": 4},  # index/ files for later runs (refresh)
    "report_top": 10,  # largest groups listed in the run report
}

SURVIVOR_RULES = ("lowest_id", "source_priority")
Node = tuple[int, str]  # (priority, document id): the rank key; smaller survives


def _positive_int(section: dict, path: str, minimum: int = 1) -> None:
    node: Any = section
    for part in path.split("."):
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int) or node < minimum:
        raise ValueError(f"{path}: expected an integer of at least {minimum}, got {node!r}")


def validate(section: dict[str, Any]) -> None:
    """Raises ValueError naming the first bad key (the loader has checked types of typed keys)."""
    t = section["threshold"]
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 < t <= 1.0:
        raise ValueError(f"threshold: expected a number in (0, 1], got {t!r}")
    if section["survivor"] not in SURVIVOR_RULES:
        raise ValueError(
            f"survivor: must be one of {', '.join(SURVIVOR_RULES)}, got {section['survivor']!r}"
        )
    prio = section["source_priority"]
    if not all(isinstance(s, str) and s for s in prio):
        raise ValueError(f"source_priority: expected a list of source names, got {prio!r}")
    if len(set(prio)) != len(prio):
        raise ValueError(f"source_priority: a source is listed twice in {prio!r}")
    near = section["near"]
    for key in ("num_perm", "ngram", "char_ngram", "max_bucket_size", "batch_chars"):
        _positive_int(section, f"near.{key}", 2 if key == "max_bucket_size" else 1)
    _positive_int(section, "near.max_rounds", 0)
    _positive_int(section, "near.verify_k", 0)
    _positive_int(section, "index.shards")
    _positive_int(section, "report_top")
    w = near["false_negative_weight"]
    if isinstance(w, bool) or not isinstance(w, int | float) or not 0.0 < w < 1.0:
        raise ValueError(f"near.false_negative_weight: expected a number in (0, 1), got {w!r}")
    share = near["char_ngram_script_share"]
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
        raise ValueError(
            f"near.char_ngram_script_share: expected a number in [0, 1], got {share!r}"
        )
    if not all(isinstance(s, str) for s in near["char_ngram_langs"]):
        raise ValueError("near.char_ngram_langs: expected a list of language codes")
    bands, rows = near["bands"], near["rows"]
    if (bands is None) != (rows is None):
        raise ValueError("near.bands: give both bands and rows, or neither")
    if bands is not None:
        for key, value in (("bands", bands), ("rows", rows)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"near.{key}: expected a positive integer, got {value!r}")
        if bands * rows > near["num_perm"]:
            raise ValueError(
                f"near.bands: bands x rows = {bands * rows} exceeds num_perm = {near['num_perm']}"
            )


def exact_enabled(section: dict[str, Any]) -> bool:
    return bool(section["enabled"] and section["exact"]["enabled"])


def near_enabled(section: dict[str, Any]) -> bool:
    return bool(section["enabled"] and section["near"]["enabled"])


def lsh_bands(threshold: float, num_perm: int, false_negative_weight: float) -> tuple[int, int]:
    """(bands, rows) minimising datasketch's weighted false-positive/negative areas.

    Verification removes false candidates afterwards, so by default misses weigh 0.9: at 0.8 and
    128 permutations that gives (14, 9), which makes a pair of true Jaccard 0.85 a candidate
    with probability 0.975 where the balanced (9, 13) gives 0.69.
    """
    from datasketch import MinHashLSH

    lsh = MinHashLSH(
        threshold=threshold,
        num_perm=num_perm,
        weights=(1.0 - false_negative_weight, false_negative_weight),
    )
    return int(lsh.b), int(lsh.r)


@dataclass(frozen=True)
class NearParams:
    num_perm: int
    ngram: int
    bands: int
    rows: int
    verify: bool
    verify_k: int
    char_ngram: int
    char_ngram_langs: tuple[str, ...]
    char_ngram_script_share: float
    max_bucket_size: int
    max_rounds: int
    batch_chars: int


@dataclass(frozen=True)
class DedupParams:
    threshold: float
    survivor: str
    source_priority: tuple[str, ...]
    near: NearParams
    index: bool
    index_shards: int
    report_top: int
    seed: int

    @classmethod
    def from_section(cls, section: dict[str, Any], seed: int) -> DedupParams:
        validate(section)
        near = section["near"]
        threshold = float(section["threshold"])
        bands, rows = near["bands"], near["rows"]
        if bands is None:
            bands, rows = lsh_bands(threshold, near["num_perm"], near["false_negative_weight"])
        return cls(
            threshold=threshold,
            survivor=section["survivor"],
            source_priority=tuple(section["source_priority"]),
            near=NearParams(
                num_perm=near["num_perm"],
                ngram=near["ngram"],
                bands=bands,
                rows=rows,
                verify=bool(near["verify"]),
                verify_k=near["verify_k"],
                char_ngram=near["char_ngram"],
                char_ngram_langs=tuple(near["char_ngram_langs"]),
                char_ngram_script_share=float(near["char_ngram_script_share"]),
                max_bucket_size=near["max_bucket_size"],
                max_rounds=near["max_rounds"],
                batch_chars=near["batch_chars"],
            ),
            index=bool(section["index"]["enabled"]),
            index_shards=section["index"]["shards"],
            report_top=section["report_top"],
            seed=int(seed) & 0xFFFFFFFF,
        )

    def node(self, source: str, doc_id: str) -> Node:
        """The rank key of a document: the smaller one survives."""
        if self.survivor == "source_priority":
            prio = self.source_priority
            return (prio.index(source) if source in prio else len(prio), doc_id)
        return (0, doc_id)


def defaults() -> dict[str, Any]:
    """A deep copy of DEFAULTS, for callers that build a section by hand (tests, bench)."""
    import copy

    return copy.deepcopy(DEFAULTS)
