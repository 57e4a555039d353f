"""Fuzzing every reader and codec with hypothesis: small real files from sample/ and
tests/fixtures, mutated (bytes flipped, cut, inserted, repeated, an e-mail address planted),
compressed before or after the mutation, read by the job's ReadFiles DoFn. No case may raise,
hang, emit other counts than its input stat says, or put the planted address in a dead letter.
The harness is bench/fuzz.py, which runs many more cases on ../shared/corpus."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from helpers import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz import CODECS, OPS, encode, mutate, repo_seeds, run_case

SEEDS = {s.name: s for s in repo_seeds(REPO)}
EXAMPLES = {"warc": 50, "html": 50}  # extraction is the slow part; the rest get 100 each

ops = st.lists(
    st.tuples(
        st.sampled_from(OPS),
        st.floats(0, 1, allow_nan=False),
        st.sampled_from((1, 2, 7, 64, 4096)),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=5,
)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutated_files_are_read_or_dead_letters(name):
    seed = SEEDS[name]

    @settings(
        max_examples=EXAMPLES.get(name, 100),
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(edits=ops, codec=st.sampled_from(CODECS), after=st.booleans())
    def case(edits, codec, after):
        data = (
            mutate(encode(seed.data, codec), edits)
            if after
            else encode(mutate(seed.data, edits), codec)
        )
        with tempfile.TemporaryDirectory() as tmp:
            out = run_case(seed, data, Path(tmp))
        assert out.problems == [], (codec, after, edits, out.problems)

    case()


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_each_seed_reads_clean_in_every_codec(name):
    """The unmutated seeds are documents in every codec (Parquet compresses inside the file,
    so it is read only as it is): the fuzz starts from good input."""
    seed = SEEDS[name]
    with tempfile.TemporaryDirectory() as tmp:
        for codec in CODECS if name != "parquet" else ("plain",):
            out = run_case(seed, encode(seed.data, codec), Path(tmp))
            assert out.problems == [] and out.documents > 0 and out.dead == 0, (codec, out)
