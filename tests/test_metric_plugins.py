"""A metric is one module plus one registry line (scorecard/metric_plugins): named in a scorecard,
validated when it loads, computed by the scorer."""

from __future__ import annotations

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from mlipilot.errors import MLIPilotError
from mlipilot.scorecard.accuracy import accuracy_metrics
from mlipilot.scorecard.metric_plugins import METRIC_PLUGINS
from mlipilot.scorecard.metrics import MetricKind, parse_metric, unknown_metric_fix


def frames():
    out = []
    for i, a in enumerate((3.55, 3.60, 3.65)):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.rattle(0.05, seed=i)
        atoms.calc = EMT()
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.calc = None
        out.append(atoms)
    return out


def test_plugin_metric_is_known_computed_and_its_unit_read_from_its_module():
    ref = parse_metric("energy_max_abs_error")
    assert ref.kind == MetricKind.PLUGIN and ref.unit == "meV/atom" and "energy_max_abs_error" in METRIC_PLUGINS
    assert "did you mean 'energy_max_abs_error'" in unknown_metric_fix("energy_max_abs_eror")
    exact = accuracy_metrics(EMT(), frames(), ["energy_max_abs_error"])
    assert exact["energy_max_abs_error"] == pytest.approx(0.0, abs=1e-9)
    wrong = accuracy_metrics(LennardJones(sigma=2.3, epsilon=0.4, rc=5.0), frames(), ["energy_max_abs_error"])
    assert wrong["energy_max_abs_error"] >= wrong["energy_rmse"] > 1.0  # the worst frame bounds the RMSE


def test_a_misspelled_plugin_metric_fails_when_the_scorecard_loads(tmp_path):
    import yaml
    from mlipilot_testkit import FAST_SCORECARD

    from mlipilot.scorecard.spec import load_spec

    card = dict(FAST_SCORECARD, constraints=[*FAST_SCORECARD["constraints"],
                                             {"metric": "energy_max_abs_eror", "max": 50, "unit": "meV/atom"}])
    path = tmp_path / "scorecard.yaml"
    path.write_text(yaml.safe_dump(card, allow_unicode=True))
    with pytest.raises(MLIPilotError, match="did you mean 'energy_max_abs_error'"):
        load_spec(path)
    card["constraints"][-1]["metric"] = "energy_max_abs_error"
    path.write_text(yaml.safe_dump(card, allow_unicode=True))
    assert "energy_max_abs_error" in load_spec(path).metric_names()


def test_the_holdout_is_predicted_once_for_every_metric_and_plugin():
    class Counting(EMT):
        calls = 0

        def calculate(self, *a, **k):
            Counting.calls += 1
            super().calculate(*a, **k)

    fs = frames()
    out = accuracy_metrics(Counting(), fs, ["energy_max_abs_error", "force_rmse_Cu"])
    assert Counting.calls == len(fs) and out["energy_max_abs_error"] == pytest.approx(0.0, abs=1e-9)
