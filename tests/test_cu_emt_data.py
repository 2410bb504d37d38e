import hashlib

import pytest
from ase.io import read

from mlipilot.datasets import cu_emt


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # generates the small Cu set three times (EMT MD)
def test_generator_is_deterministic_and_seed_dependent(tmp_path):
    a = cu_emt.generate(tmp_path / "a", seed=3, size="small", verbose=False)
    b = cu_emt.generate(tmp_path / "b", seed=3, size="small", verbose=False)
    c = cu_emt.generate(tmp_path / "c", seed=4, size="small", verbose=False)
    for split in ("train", "valid", "holdout"):
        assert _digest(a[split]) == _digest(b[split])
        assert _digest(a[split]) != _digest(c[split])


def test_splits_are_disjoint_stratified_and_labelled(small_data):
    frames = {s: read(p, ":") for s, p in small_data.items()}
    types = {f.info["config_type"] for f in frames["train"]}
    assert {"bulk32_strain", "bulk108_strain", "vacancy32", "slab111", "slab100", "md1500"} <= types
    for split in ("valid", "holdout"):
        assert {f.info["config_type"] for f in frames[split]} == types  # every kind in every split
    keys = {s: {hashlib.sha1(f.positions.round(6).tobytes()).hexdigest() for f in fs} for s, fs in frames.items()}
    assert not keys["holdout"] & keys["train"] and not keys["holdout"] & keys["valid"]
    f = frames["train"][0]
    assert f.arrays["REF_forces"].shape == (len(f), 3)
    assert "REF_energy" in f.info and len(f.info["REF_stress"]) == 9
    assert {len(f) for f in frames["train"]} >= {32, 108}
