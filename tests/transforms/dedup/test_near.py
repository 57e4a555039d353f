"""Near dedup: signatures against datasketch and a plain-Python reference, and the Beam stage on
crafted near-duplicates, non-duplicates, empty and one-word documents, Chinese text, a bucket of
2,000 identical documents, and the same survivors across input order and worker count."""

from __future__ import annotations

import json
import random
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from datasketch import MinHash
from helpers import REPO

from gristmill.schemas.records import Document
from gristmill.transforms.accounting import Accounted
from gristmill.transforms.dedup import near as mh
from gristmill.transforms.dedup import shingles as minhash_shingles
from gristmill.transforms.dedup.params import DedupParams, defaults
from gristmill.transforms.stage import StageContext

SAMPLE = REPO / "sample" / "books"
M64 = (1 << 64) - 1

# ---- the reference: the signer's shingle hash in plain Python ----------------------------------


def fmix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    return x ^ (x >> 33)


def tokens_ref(text: str, char_mode: bool) -> list[str]:
    lower, _ = mh.char_table()
    out: list[str] = []
    cur: list[str] = []
    for ch in text:
        low = int(lower[ord(ch)]) if ord(ch) < mh.TABLE_SIZE else 0
        if low and char_mode:
            out.append(chr(low))
        elif low:
            cur.append(chr(low))
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def token_hash_ref(token: str) -> int:
    h = sum(ord(ch) * pow(mh.TOKEN_BASE, k, 1 << 64) for k, ch in enumerate(token)) & M64
    return fmix64(h)


def shingle_hash_ref(tokens) -> int:
    acc = 0
    for i, tok in enumerate(tokens):
        acc = token_hash_ref(tok) if i == 0 else (acc * mh.SHINGLE_BASE + token_hash_ref(tok)) & M64
    return fmix64(acc) >> 32


def shingles_ref(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    if len(tokens) < n:
        return [tuple(tokens)] if tokens else []
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def params(**near) -> DedupParams:
    section = defaults()
    section["near"].update(near)
    return DedupParams.from_section(section, 0)


HAMLET = (SAMPLE / "hamlet.txt").read_text(encoding="utf-8")
CHINESE = (
    "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。"
    "人人有资格享有本宣言所载的一切权利和自由，不分种族、肤色、性别、语言、宗教、政治或其他见解、"
    "国籍或社会出身、财产、出生或其他身分等任何区别。"
)
OTHER_CHINESE = "今天天气很好，我们一起去公园散步吧。公园里有很多花，还有一个大湖，湖边有人在钓鱼。"


def test_signatures_equal_datasketch_over_the_same_shingles():
    p = params()
    signer = mh.Signer(p.near, 0)
    texts = [
        HAMLET[:3000],
        "Ünïcödé façade — naïve café. Straße İstanbul; O'Neil's 3.14 apples!",
        "word",
        "two words",
        CHINESE,
        "",
        "?!...",
    ]
    langs = ["en", "de", "en", "en", "zh", "", ""]
    got = signer.sign(texts, langs)
    assert got.flags.tolist() == [1, 1, 2, 2, 3, 0, 0]
    for text, sig, flag in zip(texts, got.sig, got.flags, strict=True):
        n = p.near.char_ngram if flag == 3 else p.near.ngram
        shingles = shingles_ref(tokens_ref(text, flag == 3), n)
        if not shingles:
            assert (sig == mh.U32_MAX).all()
            continue
        ref = MinHash(
            num_perm=128, seed=0, hashfunc=lambda b: shingle_hash_ref(b.decode().split("\x00"))
        )
        ref.update_batch(["\x00".join(s).encode() for s in shingles])
        assert np.array_equal(ref.hashvalues, sig)


def test_batching_and_segmenting_do_not_change_signatures(monkeypatch):
    signer = mh.Signer(params().near, 3)
    texts = [HAMLET[i : i + 2500] for i in range(0, 25000, 2500)]
    together = signer.sign(texts, [""] * len(texts))
    alone = [signer.sign([t], [""]) for t in texts]
    assert np.array_equal(together.sig, np.vstack([a.sig for a in alone]))
    assert [together.sketch(i) for i in range(len(texts))] == [a.sketch(0) for a in alone]
    small = mh.Signer(params(batch_chars=6000).near, 3).sign(texts, [""] * len(texts))
    assert np.array_equal(small.sig, together.sig)
    assert [small.sketch(i) for i in range(10)] == [together.sketch(i) for i in range(10)]
    long_text = HAMLET[:60000]
    whole = signer.sign([long_text], [""])
    monkeypatch.setattr(minhash_shingles, "SEGMENT_CHARS", 5000)
    monkeypatch.setattr(minhash_shingles, "SEGMENT_OVERLAP", 300)
    assert len(mh.segments(long_text)) > 10
    pieces = signer.sign([long_text], [""])
    assert np.array_equal(whole.sig, pieces.sig)
    assert whole.sketch(0) == pieces.sketch(0) and len(whole.sketch(0)) == 4 * 512


def test_sketch_jaccard_is_exact_for_short_documents():
    signer = mh.Signer(params().near, 0)
    rng = random.Random(2)
    words = HAMLET.split()[:300]
    texts = [" ".join(words), " ".join(edit(words, 0.05, rng)), " ".join(words[::-1])]
    got = signer.sign(texts, [""] * 3)
    sets = [set(shingles_ref(tokens_ref(t, False), 5)) for t in texts]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        exact = len(sets[i] & sets[j]) / len(sets[i] | sets[j])
        assert mh.sketch_jaccard(got.sketch(i), got.sketch(j), 512) == pytest.approx(exact)
    assert 0.5 < mh.sketch_jaccard(got.sketch(0), got.sketch(1), 512) < 0.9


def test_char_ngrams_for_unspaced_scripts():
    signer = mh.Signer(params().near, 0)
    edited = CHINESE.replace("尊严", "尊敬")
    got = signer.sign([CHINESE, edited, OTHER_CHINESE, CHINESE], ["zh", "", "", "en"])
    assert got.flags.tolist() == [3, 3, 3, 3]  # by language, then by script share
    b = [s.tobytes() for s in got.sig]
    assert mh.jaccard(b[0], b[1]) > 0.8
    assert mh.jaccard(b[0], b[2]) < 0.1
    off = mh.Signer(params(char_ngram_script_share=0.0, char_ngram_langs=[]).near, 0)
    assert off.sign([CHINESE], [""]).flags.tolist() == [
        1
    ]  # word n-grams: "words" are the runs between punctuation
    assert len(tokens_ref(CHINESE, False)) == 14


# ---- the stage in Beam -------------------------------------------------------------------------


def edit(words: list[str], rate: float, rng: random.Random) -> list[str]:
    out = list(words)
    for i in rng.sample(range(len(out)), int(len(out) * rate)):
        out[i] = rng.choice(["lorem", "ipsum", "dolor", "amet"])
    return out


def corpus() -> tuple[list[Document], dict]:
    """Documents and what must happen to them."""
    rng = random.Random(11)
    words = HAMLET.split()
    docs, expect = [], {"dup_of": {}, "kept": set()}
    for i in range(12):
        base = words[i * 400 : i * 400 + 350]
        orig = f"h{i:02d}a"
        docs.append(Document(orig, "books", "hamlet", " ".join(base)))
        expect["kept"].add(orig)
        light = f"h{i:02d}b"  # 1% of words changed: true Jaccard ~0.95
        docs.append(Document(light, "web", "copy", " ".join(edit(base, 0.01, rng))))
        expect["dup_of"][light] = orig
        heavy = f"h{i:02d}c"  # 20% changed: true Jaccard well under 0.5
        docs.append(Document(heavy, "web", "copy", " ".join(edit(base, 0.2, rng))))
        expect["kept"].add(heavy)
    for doc_id, text in [("e0", ""), ("e1", "word"), ("e2", "...!?"), ("e3", "two words")]:
        docs.append(Document(doc_id, "mail", "x", text))
        expect["kept"].add(doc_id)
    docs.append(Document("z0", "wiki", "x", CHINESE, lang="zh"))
    docs.append(Document("z1", "wiki", "x", CHINESE.replace("尊严", "尊敬")))
    docs.append(Document("z2", "wiki", "x", OTHER_CHINESE))
    expect["dup_of"]["z1"] = "z0"
    expect["kept"] |= {"z0", "z2"}
    same = " ".join(words[9000:9040])
    for i in range(2000):
        docs.append(Document(f"s{i:04d}", "mail", "x", same))
        if i:
            expect["dup_of"][f"s{i:04d}"] = "s0000"
    expect["kept"].add("s0000")
    return docs, expect


SINK: dict[str, list] = {}


def _append(item, key: str) -> None:
    SINK.setdefault(key, []).append(item)


def saver(path: str):
    """A function that writes the outcome of every document to `path` as sorted JSON rows; made
    here so that worker processes get it by value (they cannot import this test module)."""

    def save(items) -> None:
        rows = [[d.id, getattr(d, "reason", "kept"), getattr(d, "detail", "")] for d in items]
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(sorted(rows)))

    return save


def build_near(p, docs, out: Path, near: dict):
    section = defaults()
    section["near"].update(near)
    ctx = StageContext("dedup_near", str(out), 0, {})
    return p | beam.Create(docs) | Accounted("dedup_near", mh.STAGE.build(section, ctx))


NEAR = {"max_bucket_size": 50, "max_rounds": 2}  # pairs and stars settle in one round


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory):
    docs, expect = corpus()
    out = tmp_path_factory.mktemp("near")
    # state-backed iterables: grouped values come lazily from the runner's state API, as on
    # Dataflow, so the two-pass iterations over a 2,000-member bucket are tested on them
    p = beam.Pipeline(runner=FnApiRunner(use_state_iterables=True))
    result = build_near(p, docs, out, NEAR)
    for name, pcoll in [("kept", result.kept), ("drops", result.drops)]:
        SINK.pop(name, None)
        pcoll | f"Collect/{name}" >> beam.Map(_append, name)
    SINK.pop("report", None)
    result.extras["report"] | beam.Map(_append, "report")
    (
        (result.kept, result.drops)
        | beam.Flatten()
        | beam.combiners.ToList()
        | beam.Map(saver(str(out / "outcome.json")))
    )
    run = p.run()
    run.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in run.metrics().query(MetricsFilter().with_namespace("dedup_near"))["counters"]
    }
    return {
        "docs": docs,
        "expect": expect,
        "out": out,
        "kept": SINK["kept"],
        "drops": SINK["drops"],
        "report": {k: v for _, k, v in SINK["report"]},
        "counters": counters,
    }


@pytest.mark.job
def test_near_duplicates_dropped_with_survivor_and_jaccard(stage_run):
    drops = {d.id: d for d in stage_run["drops"]}
    assert set(drops) == set(stage_run["expect"]["dup_of"])
    for doc_id, survivor in stage_run["expect"]["dup_of"].items():
        d = drops[doc_id]
        assert (d.stage, d.reason) == ("dedup_near", "near_duplicate")
        fields = dict(kv.split("=") for kv in d.detail.split())
        assert fields["survivor"] == survivor
        assert 0.8 <= float(fields["jaccard"]) <= 1.0
    kept = {d.id for d in stage_run["kept"]}
    assert kept == stage_run["expect"]["kept"]


def test_accounting_adds_up(stage_run):
    kept, drops = stage_run["kept"], stage_run["drops"]
    ids = [d.id for d in kept] + [d.id for d in drops]
    assert sorted(ids) == sorted(d.id for d in stage_run["docs"])
    c = stage_run["counters"]
    assert c["mail.no_tokens"] == 2 and c["mail.short_doc"] == 2
    assert c["wiki.char_ngrams"] == 3
    assert c["_all.buckets_star"] >= 1  # the 2,000 identical documents
    assert c.get("components.unsettled", 0) == 0


def test_report(stage_run):
    report = stage_run["report"]
    assert report["removed_by_source"] == {"mail": 1999, "web": 12, "wiki": 1}
    assert report["cluster_sizes"] == {"2": 13, "1025-2048": 1}
    top = report["largest_clusters"][0]
    assert top["survivor"] == "s0000" and top["size"] == 2000
    assert top["members"] == ["s0001", "s0002", "s0003", "s0004", "s0005"]
    assert top["snippet"] and len(top["snippet"]) <= 80
    assert report["params"]["bands"] * report["params"]["rows"] <= 128
    assert report["verified_pairs"] >= 1999 + 13 and report["unsettled_nodes"] == 0


def test_index_files(stage_run):
    out = stage_run["out"]
    sigs = pq.read_table(sorted((out / "index").glob("signatures-*.parquet")))
    bands = pq.read_table(sorted((out / "index").glob("bands-*.parquet")))
    meta = json.loads(sigs.schema.metadata[b"gristmill.minhash"])
    with_tokens = stage_run["expect"]["kept"] - {"e0", "e2"}
    assert sorted(sigs.column("id").to_pylist()) == sorted(with_tokens)
    assert all(len(s) == 4 * meta["num_perm"] for s in sigs.column("signature").to_pylist())
    assert bands.num_rows == len(with_tokens) * meta["bands"]
    assert len(list((out / "index").glob("*.parquet"))) == 2 * 4


@pytest.mark.job
def test_same_survivors_whatever_order_and_workers(stage_run, tmp_path):
    docs = list(stage_run["docs"])
    random.Random(5).shuffle(docs)
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    with beam.Pipeline(runner=FnApiRunner(), options=options) as p:
        result = build_near(p, docs, tmp_path, NEAR)
        (
            (result.kept, result.drops)
            | beam.Flatten()
            | beam.combiners.ToList()
            | beam.Map(saver(str(tmp_path / "outcome.json")))
        )
    first = stage_run["out"]
    assert (tmp_path / "outcome.json").read_text() == (first / "outcome.json").read_text()
    for path in sorted((first / "index").glob("*.parquet")):
        assert (tmp_path / "index" / path.name).read_bytes() == path.read_bytes(), path.name
