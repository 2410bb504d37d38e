"""Files that would mean something else than they say are refused at `mlipilot init`, one line naming
the file, the field and the fix, before anything is created: keys another stability kind reads, a
single-element MD kind on a multi-element benchmark, a gate on wall-clock information, a train.py that
ignores the harness's seed; a program.md naming MD the scorecard does not run gets a warning."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from mlipilot_testkit import ROOT

from mlipilot.datasets.alloy_emt import write_benchmark
from mlipilot.errors import MLIPilotError
from mlipilot.rundir import init_run


@pytest.fixture(scope="module")
def alloy_bench(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("alloy") / "cuau", size="small")


def edited(tmp_path: Path, alloy_bench: Path, edit) -> Path:
    bench = tmp_path / "cuau"
    shutil.copytree(alloy_bench, bench)
    d = yaml.safe_load((bench / "scorecard.yaml").read_text())
    edit(d)
    (bench / "scorecard.yaml").write_text(yaml.safe_dump(d, allow_unicode=True))
    return bench


def to_bulk(d: dict) -> None:
    """The alloy's scorecard switched to single-element fcc MD, otherwise valid."""
    st = d["stability"]
    for key in ("structures", "min_distance_factor", "max_volume_factor"):
        st.pop(key)
    st.update(kind="bulk", runs=[{"name": "nvt900", "supercell": 2, "temperature_K": 900, "steps": 20}])
    d.update(element="Cu", lattice_a=3.6)


@pytest.mark.parametrize("edit, needles", [
    (lambda d: d["stability"].update(min_distance_A=1.5),
     ("field 'stability.min_distance_A'", "only kind bulk reads it", "stability.kind is structures",
      "min_distance_factor")),
    (lambda d: d["stability"]["runs"][0].update(supercell=3),
     ("field 'stability.runs[0].supercell'", "only kind bulk reads it")),
    (lambda d: d["stability"].update(h_detach_A=2.0), ("field 'stability.h_detach_A'", "only kind molecules")),
    (lambda d: (to_bulk(d), d["stability"].update(max_volume_factor=1.2)),
     ("field 'stability.max_volume_factor'", "only kind structures reads it", "stability.kind is bulk")),
    (to_bulk, ("field 'stability.kind'", "bulk runs MD on pure Cu fcc cells only", "holds Au, Cu",
               "set stability.kind: structures")),
    (lambda d: d["constraints"].append({"metric": "steps_per_second", "min": 10.0, "unit": "steps/s"}),
     ("field 'constraints[5].metric'", "wall-clock information", "use steps_per_cpu_second")),
])
def test_scorecard_meaning_something_else_is_refused(tmp_path, alloy_bench, edit, needles):
    bench = edited(tmp_path, alloy_bench, edit)
    with pytest.raises(MLIPilotError) as e:
        init_run(str(bench), tmp_path / "run", sandbox="none", progress=lambda s: None)
    err = str(e.value)
    # one line per problem (init reports every one at once, issue 36: a bulk scorecard on Cu–Au data has two)
    hits = [x for x in err.splitlines() if all(n in x for n in needles)]
    assert len(hits) == 1 and "scorecard.yaml" in hits[0] and " — " in hits[0], err
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.mlipilot-store").exists()


def test_train_py_ignoring_the_seed_is_refused_by_the_console_script(tmp_path, alloy_bench):
    bench = tmp_path / "cuau"
    shutil.copytree(alloy_bench, bench)
    shutil.copytree(ROOT / "workspace_template" / "generic", bench / "ws")
    script = bench / "ws" / "train" / "train.py"
    text = script.read_text()
    lines = [x for x in text.splitlines() if "MLIPILOT_SEED" not in x]
    script.write_text("\n".join(lines).replace("seed comes from the harness ()", "") + "\n")
    assert "MLIPILOT_SEED" not in script.read_text()
    spec = yaml.safe_load((bench / "benchmark.yaml").read_text())
    (bench / "benchmark.yaml").write_text(yaml.safe_dump({**spec, "workspace": "ws"}, allow_unicode=True))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    p = subprocess.run(["mlipilot", "init", str(bench), str(tmp_path / "run"), "--sandbox", "none"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(script) in err and "does not read MLIPILOT_SEED" in err, err
    assert '`if os.environ.get("MLIPILOT_SEED"):` `cmd += ["--seed", os.environ["MLIPILOT_SEED"]]`' in err, err
    assert not (tmp_path / "run").exists()


def test_program_md_naming_other_md_warns_and_gets_the_real_runs(tmp_path, alloy_bench):
    bench = tmp_path / "cuau"
    shutil.copytree(alloy_bench, bench)
    (bench / "program.md").write_text("# Cu–Au\nMD stability at 1000 K and on a 300→3000 K ramp (`nvt1000_108`).\n")
    lines: list[str] = []
    run = init_run(str(bench), tmp_path / "run", sandbox="none", progress=lines.append)
    warn = [x for x in lines if x.startswith("WARNING:") and "program.md" in x]
    assert warn and "names 1000 K, 3000 K; names runs nvt1000_108" in warn[0] and "$md" in warn[0], lines
    text = (run / "program.md").read_text()
    assert "nvt900 (nvt, 900 K, 60 steps)" in text and "npt600" in text and "energy_rmse" in text, text


@pytest.mark.parametrize("name", ["cu_emt", "cu_hot", "qm7_b3lyp"])
def test_shipped_program_md_draws_no_warning(name):
    """A shipped benchmark's init prints no WARNING: its program.md names only the MD its scorecard runs
    (a temperature outside an MD sentence, such as where the training data stop, is not a run)."""
    from mlipilot.benchmark import resolve_benchmark
    from mlipilot.rundir import program_md_warnings
    from mlipilot.scorecard.spec import load_spec

    bench = resolve_benchmark(name)
    assert program_md_warnings(bench.template_file("program.md").read_text(), load_spec(bench.scorecard)) == []
