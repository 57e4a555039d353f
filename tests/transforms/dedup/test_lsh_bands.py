"""The (bands, rows) choice without scipy: the same as datasketch's MinHashLSH makes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from datasketch import MinHashLSH

from gristmill.transforms.dedup.params import DedupParams, DedupSettings, lsh_bands

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
@pytest.mark.parametrize("false_negative_weight", [0.1, 0.5, 0.9])
def test_same_choice_as_datasketch(num_perm: int, false_negative_weight: float) -> None:
    compared = 0
    for threshold in (0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        weights = (1 - false_negative_weight, false_negative_weight)
        try:
            lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
        except ValueError:  # one band
            with pytest.raises(ValueError, match="b < 2"):
                lsh_bands(threshold, num_perm, false_negative_weight)
            continue
        assert lsh_bands(threshold, num_perm, false_negative_weight) == (lsh.b, lsh.r)
        compared += 1
    assert compared > 0


def test_one_band_is_refused_as_datasketch_does() -> None:
    with pytest.raises(ValueError, match="b < 2"):
        MinHashLSH(threshold=0.95, num_perm=16, weights=(0.9, 0.1))
    with pytest.raises(ValueError, match="b < 2"):
        lsh_bands(0.95, 16, 0.1)


def test_the_defaults_settle_without_importing_scipy() -> None:
    near = DedupParams.from_section(DedupSettings(), 1).near
    assert (near.bands, near.rows) == (14, 9)
    script = (
        "import sys\n"
        "from gristmill.transforms.dedup.params import DedupParams, DedupSettings\n"
        "near = DedupParams.from_section(DedupSettings(), 1).near\n"
        "print(near.bands, near.rows, any(m.startswith('scipy') for m in sys.modules))\n"
    )
    got = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert got.stdout.split() == ["14", "9", "False"]
