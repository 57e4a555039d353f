"""Near dedup quality and signature speed on real text, side by side with datasketch.

    python -m bench.dedup [--corpus ../shared/corpus] [--families 1200] [--singletons 1500]

Quality. Books (Gutenberg header and licence stripped by the books reader), Shakespeare, State of
the Union addresses and Wikipedia pages are cut at whitespace into documents of 2-5 KB. Some
become families: the original plus one edited copy (a quarter get two), each word of a copy
substituted, deleted or followed by an inserted word with probability `rate`, rate uniform in
[0, 0.07]; the rest stay single. Every pair's true Jaccard is computed exactly on the 5-gram
shingle sets (the signer's own tokenization), for the family pairs and for every pair any method
proposes. Methods, all with the same (num_perm, bands, rows) and threshold 0.8:
- `gristmill (Beam)`: the dedup_near stage with its defaults on the FnApiRunner; it asserts one
  pair per removed document (removed, survivor); its clusters are survivor + removed;
- `MinHashLSH, our signatures`: datasketch's in-memory index over our signatures (LeanMinHash:
  same seed, same affine32 permutations), so the candidates are ours, found in memory;
- `MinHashLSH, datasketch MinHash`: the index over datasketch's own MinHash of the same shingles
  (affine32, xxh32 per shingle): independent hashing;
each as `candidates` (every query hit) and `+ verify` (hits whose MinHash estimate reaches 0.8),
clusters by union-find over the asserted pairs.
Precision is over the asserted pairs, a pair correct when its true Jaccard >= 0.8 (strict) or,
in a second column, >= 0.75 (the estimator's noise band); `cluster_pair_precision` counts every
pair inside a cluster. Recall is by cluster (a true pair is found when both documents end in one
cluster), over pairs of true Jaccard >= 0.85 and >= 0.8. The two Moby-Dick
editions go through the same Beam run as whole books and must end in one cluster.

Speed. Signature throughput, MB of UTF-8 text per second of CPU time of this one process, on
the quality set's documents: ours (`Signer.sign`, text to signature, everything included) against
datasketch 2.0's `MinHash.update_batch` with its default sha1 hash and `MinHash.bulk` with an
xxhash hash function, both given the shingles ready-made (their shingling timed apart). Each
method runs three times, interleaved; the best of three counts.

`main(argv)` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

from bench.dedup_data import DEFAULT_CORPUS, quality_set, shingles, tokens, true_jaccard
from bench.tables import table

THRESHOLD = 0.8


# ---- methods -----------------------------------------------------------------------------------


def run_beam(docs, out_dir: str) -> dict[str, str]:
    """member id -> survivor id, from the dedup_near stage on the FnApiRunner."""
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from gristmill.schemas.records import Document
    from gristmill.transforms.dedup import near as minhash
    from gristmill.transforms.dedup.params import defaults
    from gristmill.transforms.stage import StageContext

    drops_file = Path(out_dir) / "drops.json"
    ctx = StageContext("dedup_near", out_dir, 0, {})

    def save(drops):
        rows = {d.id: dict(kv.split("=") for kv in d.detail.split()) for d in drops}
        drops_file.write_text(json.dumps(rows))

    with beam.Pipeline(runner=FnApiRunner()) as p:
        kept, drops, _ = (
            p
            | beam.Create([Document(i, s, "bench", t) for i, s, t in docs])
            | minhash.build(defaults(), ctx)
        )
        drops | beam.combiners.ToList() | beam.Map(save)
    return json.loads(drops_file.read_text())


def cluster_pairs(survivor_of: dict[str, str]) -> set[tuple[str, str]]:
    clusters: dict[str, list[str]] = {}
    for member, survivor in survivor_of.items():
        clusters.setdefault(survivor, [survivor]).append(member)
    return {tuple(sorted(p)) for c in clusters.values() for p in combinations(c, 2)}


def union_find_pairs(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Every pair of documents in one connected component of `pairs`."""
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return cluster_pairs({x: find(x) for x in list(parent) if find(x) != x})


def our_minhashes(docs, num_perm: int):
    """datasketch LeanMinHash objects holding our signatures (same seed, same affine32 scheme)."""
    from datasketch import LeanMinHash

    from gristmill.transforms.dedup.near import Signer
    from gristmill.transforms.dedup.params import DedupParams, defaults

    got = Signer(DedupParams.from_section(defaults(), 0).near, 0).sign(
        [t for _, _, t in docs], [""] * len(docs)
    )
    return {
        i: LeanMinHash(seed=0, hashvalues=got.sig[k], scheme="affine32")
        for k, (i, _, _) in enumerate(docs)
    }


def datasketch_minhashes(shingle_sets: dict[str, set[str]], num_perm: int):
    import xxhash
    from datasketch import MinHash

    ids = list(shingle_sets)
    batches = [[s.encode() for s in shingle_sets[i]] for i in ids]
    found = MinHash.bulk(batches, num_perm=num_perm, hashfunc=xxhash.xxh32_intdigest)
    return dict(zip(ids, found, strict=True))


def lsh_pairs(minhashes, bands: int, rows: int, num_perm: int):
    """(query hits, hits whose estimated Jaccard reaches the threshold) of datasketch's MinHashLSH."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=num_perm, params=(bands, rows))
    for key, m in minhashes.items():
        lsh.insert(key, m)
    raw = {
        tuple(sorted((key, hit)))
        for key, m in minhashes.items()
        for hit in lsh.query(m)
        if hit != key
    }
    verified = {p for p in raw if minhashes[p[0]].jaccard(minhashes[p[1]]) >= THRESHOLD}
    return raw, verified


def score(asserted: set, clustered: set, truth_j: dict) -> dict:
    """Precision of the pairs a method asserts (and of all pairs inside its clusters); recall of
    true pairs by cluster: a pair is found when both documents end in one cluster."""
    row = {"asserted": len(asserted)}
    for name, cut in (("precision", 0.8), ("precision_j>=0.75", 0.75)):
        row[name] = round(sum(truth_j[p] >= cut for p in asserted) / max(len(asserted), 1), 4)
    row["cluster_pair_precision"] = round(
        sum(truth_j[p] >= 0.8 for p in clustered) / max(len(clustered), 1), 4
    )
    for cut in (0.85, 0.8):
        positives = {p for p, j in truth_j.items() if j >= cut}
        row[f"recall_j>={cut}"] = round(len(positives & clustered) / max(len(positives), 1), 4)
    return row


# ---- speed -------------------------------------------------------------------------------------


def speed(texts: list[str], num_perm: int) -> list[dict]:
    import xxhash
    from datasketch import MinHash

    from gristmill.transforms.dedup.near import Signer
    from gristmill.transforms.dedup.params import DedupParams, defaults

    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    params = DedupParams.from_section(defaults(), 0)
    signer = Signer(params.near, 0)
    signer.sign(["warm up the tables"], [""])
    batch = params.near.batch_chars

    def ours():
        i = 0
        while i < len(texts):
            j, chars = i, 0
            while j < len(texts) and chars < batch:
                chars += len(texts[j]) + 1
                j += 1
            signer.sign(texts[i:j], [""] * (j - i))
            i = j

    def shingle_all():
        return [[s.encode() for s in shingles(tokens(t))] for t in texts]

    prepared = shingle_all()

    def update_batch_sha1():
        for b in prepared:
            MinHash(num_perm=num_perm).update_batch(b)

    def bulk_xxhash():
        MinHash.bulk(prepared, num_perm=num_perm, hashfunc=xxhash.xxh32_intdigest)

    methods = {
        "gristmill Signer.sign (text -> signature)": ours,
        "datasketch update_batch, sha1 (shingles given)": update_batch_sha1,
        "datasketch bulk, xxh32 (shingles given)": bulk_xxhash,
        "python shingling for datasketch (tokens + 5-grams)": shingle_all,
    }
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(3):
        for name, fn in methods.items():
            started = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - started)
    return [
        {
            "method": name,
            "mb": round(mb, 2),
            "cpu_s": round(s, 3),
            "mb_per_s_per_core": round(mb / s, 2),
        }
        for name, s in best.items()
    ]


# ---- main --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--families", type=int, default=1200)
    parser.add_argument("--singletons", type=int, default=1500)
    return parser


def _methods(docs, moby, sets: dict[str, set[str]], params) -> tuple[dict, dict, float]:
    """Every method's (asserted pairs, pairs inside its clusters), on the same documents; also
    the Beam run's drops (the Moby-Dick editions included) and its wall seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        survivor_of = run_beam(docs + moby, tmp)
        beam_s = time.perf_counter() - started
    decided = {m: s["survivor"] for m, s in survivor_of.items() if not m.startswith("moby")}
    methods = {
        "gristmill (Beam), bottom-512 verify": (
            {tuple(sorted(p)) for p in decided.items()},
            cluster_pairs(decided),
        )
    }
    for label, minhashes in (
        ("our signatures", our_minhashes(docs, params.num_perm)),
        ("datasketch MinHash", datasketch_minhashes(sets, params.num_perm)),
    ):
        raw, verified = lsh_pairs(minhashes, params.bands, params.rows, params.num_perm)
        methods[f"MinHashLSH, {label}: candidates"] = (raw, union_find_pairs(raw))
        methods[f"MinHashLSH, {label}: + verify"] = (verified, union_find_pairs(verified))
    return methods, survivor_of, beam_s


def _print_quality(quality: list[dict], js: list[float], beam_s: float) -> None:
    """The quality table, then ours against the targets and against MinHashLSH."""
    print(
        table(
            quality,
            title="\nNear-duplicate pairs at threshold 0.8 (true Jaccard on 5-gram shingles)",
        )
    )
    ours = quality[0]
    same = quality[1]["recall_j>=0.85"]  # MinHashLSH candidates over our own signatures
    other = quality[3]["recall_j>=0.85"]  # ... over datasketch's own MinHash
    positives = sum(j >= 0.85 for j in js)
    print(
        f"family pairs' true Jaccard: min {js[0]:.3f}, median {js[len(js) // 2]:.3f}, "
        f">=0.85: {positives}, >=0.8: {sum(j >= 0.8 for j in js)}; Beam run {beam_s:.1f} s\n"
        f"targets: precision {ours['precision']} >= 0.98: {ours['precision'] >= 0.98}; "
        f"recall(J>=0.85) {ours['recall_j>=0.85']} >= 0.95: {ours['recall_j>=0.85'] >= 0.95}; "
        f">= MinHashLSH over the same signatures ({same}): {ours['recall_j>=0.85'] >= same}; "
        f"MinHashLSH over datasketch's MinHash: {other} "
        f"({round((1 - ours['recall_j>=0.85']) * positives)} vs {round((1 - other) * positives)} "
        f"of {positives} pairs missed, independent hashing)"
    )


def _moby_dick(moby, survivor_of: dict) -> dict:
    """Whether the two Moby-Dick editions, whole books, ended in one cluster; printed."""
    moby_ids = [i for i, _, _ in moby]
    moby_sets = [shingles(tokens(t)) for _, _, t in moby]
    moby_row = {
        "documents": moby_ids,
        "true_jaccard": round(true_jaccard(*moby_sets), 4) if len(moby_sets) == 2 else None,
        "drop": {m: survivor_of[m] for m in moby_ids if m in survivor_of},
    }
    moby_row["one_cluster"] = len(moby_ids) == 2 and len(moby_row["drop"]) == 1
    print(
        f"Moby-Dick editions: one cluster = {moby_row['one_cluster']}, "
        f"true Jaccard {moby_row['true_jaccard']}, drop {moby_row['drop']}"
    )
    return moby_row


def _print_speed(texts: list[str], num_perm: int) -> tuple[list[dict], float]:
    """The throughput table and ours over the fastest datasketch path; the rows and that ratio."""
    speed_rows = speed(texts, num_perm)
    fastest = max(r["mb_per_s_per_core"] for r in speed_rows[1:3])
    ratio = round(speed_rows[0]["mb_per_s_per_core"] / fastest, 2)
    print(
        table(
            speed_rows,
            title="\nSignature throughput (MB of text per CPU second, one core, best of 3, "
            "measured while other jobs shared the 2 cores)",
        )
    )
    print(f"ours / fastest datasketch path (shingles given to it): {ratio}x")
    return speed_rows, ratio


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    corpus = Path(args.corpus)
    if not (corpus / "books").is_dir():
        print(f"bench/dedup: {corpus} not found; it needs the real corpus there. Nothing measured.")
        return {}
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    from gristmill.transforms.dedup.params import DedupParams, defaults

    params = DedupParams.from_section(defaults(), 0).near
    docs, family_pairs, moby = quality_set(corpus, args.families, args.singletons)
    sets = {i: shingles(tokens(t)) for i, _, t in docs}
    print(
        f"quality set: {len(docs)} documents, {sum(len(t) for _, _, t in docs) / 1e6:.1f} M chars, "
        f"{len(family_pairs)} family pairs; bands={params.bands} rows={params.rows}"
    )
    methods, survivor_of, beam_s = _methods(docs, moby, sets, params)
    every = family_pairs.union(*(a | c for a, c in methods.values()))
    truth_j = {p: true_jaccard(sets[p[0]], sets[p[1]]) for p in every}
    quality = [{"method": name, **score(a, c, truth_j)} for name, (a, c) in methods.items()]
    _print_quality(quality, sorted(truth_j[p] for p in family_pairs), beam_s)
    moby_row = _moby_dick(moby, survivor_of)
    speed_rows, ratio = _print_speed([t for _, _, t in docs], params.num_perm)
    return {
        "quality": quality,
        "family_pairs": len(family_pairs),
        "moby_dick": moby_row,
        "speed": speed_rows,
        "speed_ratio": ratio,
        "beam_seconds": round(beam_s, 1),
    }


if __name__ == "__main__":
    result = main()
    sys.exit(0 if result is not None else 1)
