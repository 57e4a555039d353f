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

import numpy as np

from gristmill.transforms.params import as_dict, load, option
from gristmill.transforms.stage import Cost, Needs, Stage

SURVIVOR_RULES = ("lowest_id", "source_priority")
Node = tuple[int, str]  # (priority, document id): the rank key; smaller survives
# Scripts written without spaces between words get character n-grams (see shingles.py).
UNSPACED_LANGS = ("zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu")


@dataclass(frozen=True)
class ExactSettings:
    enabled: bool = option(True, "exact dedup (dedup_exact)")


@dataclass(frozen=True)
class NearSettings:
    enabled: bool = option(True, "near dedup (dedup_near)")
    num_perm: int = option(128, "MinHash permutations", min=1)
    ngram: int = option(5, "words per shingle", min=1)
    bands: int | None = option(None, "LSH bands; null with rows: chosen from threshold", min=1)
    rows: int | None = option(None, "LSH rows per band", min=1)
    false_negative_weight: float = option(
        0.9, "weight of misses vs. false candidates in choosing (bands, rows)", above=0, below=1
    )
    verify: bool = option(
        True, "keep a candidate pair only if its estimated Jaccard reaches threshold"
    )
    verify_k: int = option(512, "bottom-k sketch size for verification (0 = the signature)", min=0)
    char_ngram: int = option(5, "characters per shingle for unspaced scripts", min=1)
    char_ngram_langs: tuple[str, ...] = option(
        UNSPACED_LANGS, "language labels (primary subtag) that get character n-grams"
    )
    char_ngram_script_share: float = option(
        0.3, "...or when this share of word characters is unspaced (0 = off)", min=0, max=1
    )
    max_bucket_size: int = option(100, "larger LSH buckets emit star edges to their minimum", min=2)
    max_rounds: int = option(16, "large-star/small-star rounds of connected components", min=0)
    batch_chars: int = option(250_000, "characters signed per numpy batch", min=1)

    def check(self) -> None:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("bands: give both bands and rows, or neither")
        if self.bands is not None and self.bands * self.rows > self.num_perm:  # type: ignore[operator]
            raise ValueError(
                f"bands: bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}"  # type: ignore[operator]
            )


@dataclass(frozen=True)
class IndexSettings:
    enabled: bool = option(True, "write index/ files for later runs (refresh)")
    shards: int = option(4, "files per index table", min=1)


@dataclass(frozen=True)
class DedupSettings:
    """The `dedup` section, shared by the exact and near stages."""

    enabled: bool = option(True, "both dedup stages")
    threshold: float = option(
        0.8,
        "Jaccard similarity of shingle sets at which two documents are duplicates",
        above=0,
        max=1,
    )
    survivor: str = option("lowest_id", "which member of a group stays", choices=SURVIVOR_RULES)
    source_priority: tuple[str, ...] = option(
        (), "source names, most trusted first (survivor: source_priority)"
    )
    exact: ExactSettings = option(factory=ExactSettings)
    near: NearSettings = option(factory=NearSettings)
    index: IndexSettings = option(factory=IndexSettings)
    report_top: int = option(10, "largest groups listed in the run report", min=1)

    def check(self) -> None:
        prio = self.source_priority
        if not all(prio):
            raise ValueError(
                f"source_priority: expected a list of source names, got {list(prio)!r}"
            )
        if len(set(prio)) != len(prio):
            raise ValueError(f"source_priority: a source is listed twice in {list(prio)!r}")


def exact_enabled(section: DedupSettings) -> bool:
    return bool(section.enabled and section.exact.enabled)


def near_enabled(section: DedupSettings) -> bool:
    return bool(section.enabled and section.near.enabled)


def lsh_bands(threshold: float, num_perm: int, false_negative_weight: float) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative areas under the
    LSH S-curve, the criterion datasketch's MinHashLSH uses (tests compare the choices).

    Verification removes false candidates afterwards, so by default misses weigh 0.9: at 0.8 and
    128 permutations that gives (14, 9), which makes a pair of true Jaccard 0.85 a candidate
    with probability 0.975 where the balanced (9, 13) gives 0.69.

    The curve 1 - (1 - s^r)^b is a polynomial of degree b*r <= num_perm, so Gauss-Legendre
    quadrature with num_perm // 2 + 1 nodes integrates it exactly: no scipy (datasketch's
    integrator, ~50 MB in every worker process that builds the stages).
    """
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    below = threshold / 2 * nodes + threshold / 2  # the nodes mapped onto [0, threshold]
    above = (1 - threshold) / 2 * nodes + (1 + threshold) / 2  # and onto [threshold, 1]
    best, choice = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = threshold / 2 * float(weights @ (1 - (1 - below**r) ** b))
            fn = (1 - threshold) / 2 * float(weights @ ((1 - above**r) ** b))
            error = fp * (1.0 - false_negative_weight) + fn * false_negative_weight
            if error < best:
                best, choice = error, (b, r)
    if choice[0] < 2:  # one band: every signature is its own bucket key
        raise ValueError("The number of bands are too small (b < 2)")
    return choice


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
    def from_section(cls, settings: DedupSettings | dict[str, Any], seed: int) -> DedupParams:
        """The stages' working parameters: the section with (bands, rows) settled."""
        section = as_dict(load(DedupSettings, settings, "dedup"))
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
    """The section's defaults as plain data, for callers that build one by hand (tests, bench)."""
    return as_dict(DedupSettings())


def dedup_stage(name: str, keys, on_keys, enabled, tables, cost: Cost, summary: str) -> Stage:
    """The dedup stages share their section, parameters, needs (every document's keys) and
    report shape (duplicate clusters); each is built from its two parts (keyed.py); `tables`:
    its index tables' ShardSpecs (spilled as sorted runs in a local run's phase 2)."""
    from gristmill.transforms.dedup.keyed import KeyedDedup

    return Stage(
        name=name,
        section="dedup",
        params=DedupSettings,
        build=lambda params, ctx: KeyedDedup(keys(params, ctx), on_keys(params, ctx)),
        keys=keys,
        on_keys=on_keys,
        needs=Needs.KEYS,
        enabled=enabled,
        tables=tables,
        cost=cost,
        report=("clusters",),
        summary=summary,
    )
