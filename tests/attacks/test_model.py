"""The model file is the agent's: it may run code when unpickled, describe something that is not a
MACE model, or be swapped for links and full pickles after the harness's export step wrote it. Only
an allow-listed mace-torch model, rebuilt by the scorer with weights-only loading, is ever scored."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mlipilot.model_export import ExportError, export, rebuild


def payload_model(good_model: Path, code: str) -> str:
    """train.py lines that save, as the model, a pickle whose loading runs `code` (in the export step)
    and then returns the honest model (its bytes carried in train.py: the sandbox shows nothing else)."""
    import base64
    import zlib

    blob = base64.b64encode(zlib.compress(Path(good_model).read_bytes(), 9)).decode()
    return f"""
import argparse, base64, os, torch, zlib
p = argparse.ArgumentParser(); p.add_argument('--out-dir'); p.add_argument('--model-out')
out = p.parse_args().model_out
GOOD = os.path.join(os.path.dirname(out), "good.model")
open(GOOD, "wb").write(zlib.decompress(base64.b64decode({blob!r})))
CODE = {code!r}
class Payload:
    def __reduce__(self):
        expr = "[exec(" + repr(CODE) + ", g := {{}}), __import__('torch').load(" + repr(GOOD) + ", weights_only=False)][1]"
        return (eval, (expr,))
torch.save(Payload(), out)
raise SystemExit(0)
"""


@pytest.mark.slow  # a whole trial (sandboxed job + scoring MD)
def test_unpickling_payload_runs_only_inside_the_sandbox(arena, honest):
    marker = Path("/var/tmp") / f"mlipilot-attack-{uuid.uuid4().hex}"
    code = f"""
try:
    open({str(marker)!r}, 'w').write('pwned')
except OSError as e:
    print('payload blocked:', e)
import mlipilot.scorecard.accuracy as acc
acc.accuracy_metrics = lambda calc, frames: {{'energy_rmse': 0.0, 'force_rmse': 0.0}}
"""
    r = arena.attack(payload_model(arena.good_model, code), honest_after=False)
    assert not marker.exists()
    log = (Path(r["trial_dir"]) / "export.log").read_text()  # /var/tmp is not even there: nothing of the host is
    assert "payload blocked: [Errno 30] Read-only file system" in log or "payload blocked: [Errno 2]" in log
    # the patched metric lived and died in the sandbox: the scorer measured the honest model
    assert r["metrics"]["energy_rmse"] == pytest.approx(honest["metrics"]["energy_rmse"], rel=1e-6)
    assert r["verdict"] == honest["verdict"]


ATEXIT = """import atexit, os
J = '/tmp/mlipilot-job/out/export/model.json'
MARK = '/var/tmp/mlipilot-attack-weights-marker'
class Evil:  # what a scorer that unpickles would run
    def __reduce__(self):
        return (os.system, ('touch ' + MARK,))
def rewrite(old, new):
    text = open(J).read()
    open(J, 'w').write(text.replace(old, new))
def forge():
    {action}
atexit.register(forge)
_exit = os._exit
def _forged_exit(code):  # the export leaves with os._exit (no atexit hooks): forge on the way out too
    try:
        forge()
    finally:
        _exit(code)
os._exit = _forged_exit
"""


@pytest.mark.slow  # a whole trial each
@pytest.mark.parametrize("action,needle", [
    # a model.json naming a class that is not a mace-torch block (any callable by name would do)
    ("rewrite('RealAgnosticResidualInteractionBlock', 'Popen')", "interaction_cls = 'Popen' is not allowed"),
    # a model too large to build (100,000 channels kept the scorer busy for 11 minutes): refused from model.json
    ("rewrite('x0e', '000x0e')", "exceeds the largest num_channels this run allows (128"),
    # a 'model' that is the reference calculator
    ("rewrite('\"class\": \"ScaleShiftMACE\"', '\"class\": \"EMT\"')", "class 'EMT' is not one of"),
    # weights that are a full pickle (the scorer would run it if it unpickled)
    ("__import__('torch').save({'w': Evil()}, '/tmp/mlipilot-job/out/export/weights.pt')",
     "Weights only load failed"),
    # weights as a link to somewhere else
    ("(os.remove('/tmp/mlipilot-job/out/export/weights.pt'), os.symlink('/etc/hostname', "
     "'/tmp/mlipilot-job/out/export/weights.pt'))", "a link or special file is not a model"),
    ("(os.remove('/tmp/mlipilot-job/out/export/weights.pt'), os.mkfifo('/tmp/mlipilot-job/out/export/weights.pt'))",
     "not a regular file"),
])
def test_export_forged_after_the_harness_wrote_it_is_refused(arena, action, needle):
    marker = Path("/var/tmp/mlipilot-attack-weights-marker")
    marker.unlink(missing_ok=True)
    r = arena.attack(payload_model(arena.good_model, ATEXIT.format(action=action)), honest_after=False)
    assert r["verdict"] == "failed" and needle in r["reason"], r["reason"]
    assert not marker.exists()


@pytest.mark.slow  # a whole trial
def test_class_pickled_by_reference_is_never_imported_by_the_scorer(arena):
    arena.write("train/cheat.py", "import torch\nclass Cheat(torch.nn.Module):\n    def forward(self, data):\n"
                "        from ase.calculators.emt import EMT\n        return EMT()\n")
    r = arena.attack("""
        import argparse, sys, torch
        sys.path.insert(0, 'train')
        import cheat
        p = argparse.ArgumentParser(); p.add_argument('--out-dir'); p.add_argument('--model-out')
        torch.save(cheat.Cheat(), p.parse_args().model_out)
        raise SystemExit(0)
    """, honest_after=False)
    assert r["verdict"] == "failed" and "cannot be exported as data" in r["reason"], r["reason"]
    assert "No module named 'cheat'" in r["reason"]


@pytest.mark.slow  # a whole trial
def test_a_module_that_is_not_a_mace_model_is_not_exported(arena):
    r = arena.attack("""
        import argparse, torch
        p = argparse.ArgumentParser(); p.add_argument('--out-dir'); p.add_argument('--model-out')
        torch.save(torch.nn.Linear(3, 1), p.parse_args().model_out)
        raise SystemExit(0)
    """, honest_after=False)
    assert r["verdict"] == "failed" and "Linear, not one of mace-torch's" in r["reason"], r["reason"]


def test_rebuilt_model_predicts_exactly_what_the_trained_one_did(good_model, default_data, tmp_path):
    import mace  # noqa: F401
    import numpy as np
    from ase.io import read
    from mace.calculators import MACECalculator

    export(good_model, tmp_path / "export")
    module, dtype = rebuild(tmp_path / "export")
    frames = read(default_data["valid"], ":5")
    import torch

    trained = torch.load(good_model, map_location="cpu", weights_only=False)  # the test trusts its own file
    original = MACECalculator(models=[trained], device="cpu", default_dtype=dtype)
    rebuilt = MACECalculator(models=[module], device="cpu", default_dtype=dtype)
    for atoms in frames:
        a, b = atoms.copy(), atoms.copy()
        a.calc, b.calc = original, rebuilt
        # float32 throughout: forces differ by at most a few ULPs (measured 1.5e-8 eV/Å)
        assert abs(a.get_potential_energy() - b.get_potential_energy()) < 1e-5
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=0, atol=1e-6)


def test_rebuild_refuses_what_is_not_a_description(tmp_path):
    (tmp_path / "model.json").write_text('{"format": "something else"}')
    with pytest.raises(ExportError, match="not a mlipilot-mace-model/1 description"):
        rebuild(tmp_path)
