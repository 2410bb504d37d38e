"""`mlipilot init` refuses bad data before creating anything: one line per problem naming the file,
the frame and the fix (mlipilot/datacheck.py)."""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.io import write
from mlipilot_testkit import FAST_SCORECARD, ROOT

from mlipilot.benchmark import resolve_benchmark
from mlipilot.datacheck import check_data
from mlipilot.errors import MLIPilotError
from mlipilot.rundir import init_run
from mlipilot.scorecard.spec import load_spec


def labelled(atoms, config_type: str = "bulk", plain_keys: bool = False):
    """EMT labels as REF_* (or, the common mistake, as energy=/forces= via an attached calculator)."""
    atoms.calc = EMT()
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    if plain_keys:
        return atoms  # the writer stores the calculator's results as energy= / forces=
    out = atoms.copy()
    out.info.update(REF_energy=float(e), config_type=config_type)
    out.arrays["REF_forces"] = np.asarray(f)
    return out


def cu(seed: int, config_type: str = "bulk", **kw):
    if config_type == "slab":
        a = fcc111("Cu", size=(2, 2, 3), a=3.6, vacuum=5.0)
    else:
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
    a.info.pop("adsorbate_info", None)  # a dict: extxyz cannot store it
    a.rattle(0.05, seed=seed)
    return labelled(a, config_type, **kw)


def good_data() -> dict[str, list]:
    return {"train": [cu(s) for s in range(4)] + [cu(10 + s, "slab") for s in range(2)],
            "valid": [cu(20), cu(21, "slab")],
            "holdout": [cu(30), cu(31), cu(32, "slab")]}


def make_bench(d: Path, data: dict[str, list], **scorecard_extra) -> Path:
    d.mkdir()
    for split, frames in data.items():
        write(d / f"{split}.xyz", frames, format="extxyz")
    sc = copy.deepcopy(FAST_SCORECARD)
    for metric in scorecard_extra.get("metrics", []):
        sc["constraints"].append({"metric": metric, "max": 100.0, "unit": "meV/atom"})
    (d / "scorecard.yaml").write_text(yaml.safe_dump(sc, allow_unicode=True))
    (d / "benchmark.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "scorecard": "scorecard.yaml", "workspace": str(ROOT / "workspace_template" / "cu_emt"),
        "data": {s: f"{s}.xyz" for s in data}}))
    return d


def init(bench: Path, run: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",  # the console script must import this checkout
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(["mlipilot", "init", str(bench), str(run), "--size", "small", "--sandbox", "none"],
                          capture_output=True, text=True, env=env)


@pytest.fixture(params=["init_run", pytest.param("console script", marks=pytest.mark.slow)])
def refused(request, tmp_path):
    """Init on bad data refuses it: a line holding every needle, nothing created. Each case runs
    in-process (init_run, what `mlipilot init` calls) and, marked slow (its imports cost seconds),
    through the console script: rc 2, no traceback. Called as refused(data, *needles, **extra);
    returns that line."""

    def refuse(data: dict[str, list], *needles: str, **scorecard_extra) -> str:
        bench, run = make_bench(tmp_path / "bench", data, **scorecard_extra), tmp_path / "run"
        if request.param == "init_run":
            with pytest.raises(MLIPilotError) as e:
                init_run(str(bench), run, size="small", sandbox="none", progress=lambda s: None)
            out = str(e.value)
        else:
            p = init(bench, run)
            assert p.returncode == 2, p.stdout + p.stderr
            assert "Traceback" not in p.stderr, p.stderr
            out = p.stderr
        hits = [x for x in out.splitlines() if all(n in x for n in needles)]
        assert hits, f"no line with {needles} in:\n{out}"
        assert " — " in hits[0], hits[0]  # every problem carries its fix
        assert not run.exists() and not run.with_name(run.name + ".mlipilot-store").exists()
        return hits[0]

    return refuse


@pytest.mark.parametrize("how", ["init_run", pytest.param("console script", marks=pytest.mark.slow)])
def test_good_data_passes_and_summarises(tmp_path, how):
    bench = make_bench(tmp_path / "bench", good_data())
    b = resolve_benchmark(str(bench))
    lines: list[str] = []
    check_data(b, load_spec(b.scorecard), b.data_files(), progress=lines.append)
    assert [x.split(":")[0] for x in lines] == ["tiny data train", "tiny data valid", "tiny data holdout",
                                                "tiny units"]
    assert "6 frames" in lines[0] and "elements Cu" in lines[0] and "E/atom" in lines[0] and "max |F|" in lines[0]
    if how == "init_run":  # what the command calls (the fast lane)
        init_run(str(bench), tmp_path / "run", size="small", sandbox="none", progress=lambda s: None)
    else:  # and the real command creates the run
        p = init(bench, tmp_path / "run")
        assert p.returncode == 0, p.stdout + p.stderr
    assert (tmp_path / "run" / "data" / "train.xyz").is_file()


def test_holdout_frame_missing_forces(refused):
    data = good_data()
    del data["holdout"][1].arrays["REF_forces"]
    refused(data, "holdout.xyz", "frame 1", "REF_forces", "label every frame")


def test_holdout_element_not_in_train(refused):
    data = good_data()
    ag = bulk("Cu", "fcc", a=3.6, cubic=True)
    ag.symbols[0] = "Ag"
    data["holdout"].append(labelled(ag))
    refused(data, "holdout.xyz", "frame 3", "Ag", "add training frames containing Ag, or drop")


def test_group_metric_without_config_type(refused):
    line = refused(good_data(), "scorecard.yaml", "energy_rmse_slabz", metrics=["energy_rmse_slabz"])
    assert "bulk, slab" in line and "did you mean 'energy_rmse_slab'" in line


def test_element_metric_absent_from_holdout(refused):
    refused(good_data(), "scorecard.yaml", "force_rmse_Ag", "no Ag atom", metrics=["force_rmse_Ag"])


def test_holdout_frame_duplicated_from_train(refused):
    data = good_data()
    data["holdout"][2] = data["train"][3].copy()
    refused(data, "holdout.xyz", "frame 2", "train.xyz frame 3", "remove it")


def test_stress_metric_needs_ref_stress(refused):
    refused(good_data(), "train.xyz", "frame 0", "REF_stress", "drop the stress metric",
            metrics=["stress_rmse"])


def test_plain_energy_forces_keys(refused):
    data = good_data()
    data["train"] = [cu(s, plain_keys=True) for s in range(4)]
    refused(data, "train.xyz", "frame 0", "'energy'", "atoms.info['REF_energy'] = atoms.get_potential_energy()")


def test_every_problem_reported_capped_per_kind(tmp_path):
    data = good_data()
    data["holdout"] = [cu(40 + s) for s in range(8)]
    for a in data["holdout"]:
        del a.arrays["REF_forces"]
    data["valid"][0].info["REF_energy"] = float("nan")
    b = resolve_benchmark(str(make_bench(tmp_path / "bench", data)))
    with pytest.raises(MLIPilotError) as e:
        check_data(b, load_spec(b.scorecard), b.data_files(), progress=lambda _: None)
    lines = str(e.value).splitlines()
    assert sum("no arrays['REF_forces']" in x for x in lines) == 5
    assert "... and 3 more (missing labels)" in lines
    assert any("valid.xyz: frame 0: REF_energy holds NaN" in x for x in lines)


def test_unreadable_file(tmp_path):
    bench = make_bench(tmp_path / "bench", good_data())
    (bench / "valid.xyz").write_text("3\nnot extxyz\nCu 0 0\n")
    b = resolve_benchmark(str(bench))
    with pytest.raises(MLIPilotError, match=r"valid\.xyz: not a readable extxyz file"):
        check_data(b, load_spec(b.scorecard), b.data_files(), progress=lambda _: None)


def test_units_way_off(tmp_path):
    data = good_data()
    data["train"][0].arrays["REF_forces"] *= 1e4  # as if not eV/Å
    b = resolve_benchmark(str(make_bench(tmp_path / "bench", data)))
    with pytest.raises(MLIPilotError, match=r"train\.xyz: frame 0: max \|REF_forces\| = .* eV/Å"):
        check_data(b, load_spec(b.scorecard), b.data_files(), progress=lambda _: None)


def scaled(energy: float = 1.0, forces: float = 1.0) -> dict[str, list]:
    """good_data with its labels divided by a unit's value in eV (eV/Å): as written in that unit."""
    data = good_data()
    for frames in data.values():
        for a in frames:
            a.info["REF_energy"] /= energy
            a.arrays["REF_forces"] = a.arrays["REF_forces"] / forces
    return data


KCAL = 0.0433641  # eV per kcal/mol


@pytest.mark.parametrize("energy, forces, needle", [
    (KCAL, 1.0, "add `energy_unit: kcal/mol` to benchmark.yaml"),
    (27.211386, 1.0, "add `energy_unit: Hartree` to benchmark.yaml"),
    (1e-3, 1.0, "add `energy_unit: meV` to benchmark.yaml"),
    (1.0, KCAL, "add `force_unit: kcal/mol/Å` to benchmark.yaml"),
    (1e-3, 1e-3, "add `energy_unit: meV` and `force_unit: meV/Å` to benchmark.yaml"),
])
def test_labels_in_other_units_refused_with_the_key_that_converts_them(refused, energy, forces, needle):
    line = refused(scaled(energy, forces), "train.xyz", needle, "ΔE/∫F·dx")
    assert "frames train 0/" in line and "\n" not in line, line


def test_declared_units_are_converted_into_the_run(tmp_path):
    bench = make_bench(tmp_path / "bench", scaled(KCAL))
    spec = yaml.safe_load((bench / "benchmark.yaml").read_text())
    (bench / "benchmark.yaml").write_text(yaml.safe_dump({**spec, "energy_unit": "kcal/mol"}))
    lines: list[str] = []
    run = init_run(str(bench), tmp_path / "run", size="small", sandbox="none", progress=lines.append)
    assert any("converting labels of every split: energies kcal/mol → eV" in x for x in lines), lines
    assert any("units: ΔE/∫F·dx = " in x for x in lines), lines
    from ase.io import read

    want = good_data()
    for path, split in ((run / "data" / "train.xyz", "train"),
                        (run.with_name("run.mlipilot-store") / "holdout.xyz", "holdout")):
        got = read(path, index=":")
        assert np.allclose([a.info["REF_energy"] for a in got], [a.info["REF_energy"] for a in want[split]],
                           rtol=1e-6)
        assert np.allclose(got[0].arrays["REF_forces"], want[split][0].arrays["REF_forces"])


def test_unknown_unit_refused(tmp_path):
    bench = make_bench(tmp_path / "bench", good_data())
    spec = yaml.safe_load((bench / "benchmark.yaml").read_text())
    (bench / "benchmark.yaml").write_text(yaml.safe_dump({**spec, "force_unit": "kcal/A"}))
    with pytest.raises(MLIPilotError, match=r"field 'force_unit': unknown unit 'kcal/A' — use one of eV/Å"):
        resolve_benchmark(str(bench))


def test_shipped_alloy_example_and_cu_emt_pass_the_unit_check(tmp_path, small_data):
    from mlipilot.datasets.alloy_emt import write_benchmark

    for b, paths in ((resolve_benchmark(str(write_benchmark(tmp_path / "alloy", seed=0, size="small"))), None),
                     (resolve_benchmark("cu_emt"), small_data)):
        lines: list[str] = []
        paths = paths or b.data_files()
        check_data(b, load_spec(b.scorecard), {s: paths[s] for s in ("train", "valid", "holdout")},
                   progress=lines.append)
        ratio = float(next(x for x in lines if "units: ΔE/∫F·dx" in x).split("= ")[1].split()[0])
        assert 0.8 < ratio < 1.25, lines
