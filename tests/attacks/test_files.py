"""What train.py can read and write: the holdout (store, data cache, benchmark folder), the store's
files, the run's .git and data, the Python environment. Each attempt crashes the job, so the trial is
failed and its reason names the error; the store and the branch are untouched."""

from __future__ import annotations

import site
import sysconfig
from pathlib import Path

import pytest

from mlipilot.resources import cache_dir

pytestmark = pytest.mark.slow  # every attack is a whole trial (sandboxed job + scoring MD)


def holdout_copies(arena) -> list[Path]:
    """Every copy of the holdout the harness knows of: the store, the benchmark's folder, the data cache."""
    copies = [arena.store / "holdout.xyz", Path(arena.cfg.benchmark) / "holdout.xyz",
              *sorted(cache_dir().rglob("holdout.xyz"))]
    assert all(p.is_file() for p in copies[:2])
    return [p for p in copies if p.is_file()]


def test_holdout_is_not_readable_anywhere(arena):
    for path in holdout_copies(arena):
        r = arena.attack(f"print(open({str(path)!r}).read()[:2000])")
        assert r["verdict"] == "failed" and "No such file or directory" in r["reason"], (path, r["reason"])
        assert "REF_energy" not in (r["log_tail"] or "")


def test_reading_the_holdout_to_train_on_it_fails_then_honest_model_scores_as_honest(arena, honest):
    r = arena.attack(f"""
        import os
        leak = [p for p in {[str(p) for p in holdout_copies(arena)]!r} if os.path.exists(p)]
        print("LEAKED", leak)
    """)
    assert "LEAKED []" in (Path(r["trial_dir"]) / "train.log").read_text()
    assert r["verdict"] == "accepted" and r["feasible"]
    assert r["metrics"]["energy_rmse"] == pytest.approx(honest["metrics"]["energy_rmse"], rel=1e-6)
    assert r["metrics"]["force_rmse"] == pytest.approx(honest["metrics"]["force_rmse"], rel=1e-6)


@pytest.mark.parametrize("name,payload", [
    ("protected.json", "{}"),
    ("scorecard.yaml", "constraints: []"),
    ("ledger.jsonl", '{"trial": 1, "verdict": "accepted", "composite": -1}\\n'),
    ("holdout.xyz", "1\\nProperties=species:S:1:pos:R:3 REF_energy=0\\nCu 0 0 0\\n"),
    ("trials/forged.json", "{}"),
])
def test_store_cannot_be_rewritten(arena, name, payload):
    r = arena.attack(f"open({str(arena.store / name)!r}, 'w').write({payload!r})")
    assert r["verdict"] == "failed"
    assert "Read-only file system" in r["reason"] or "No such file or directory" in r["reason"], r["reason"]


@pytest.mark.parametrize("target", ["git_hook", "run_data", "pth", "user_site"])
def test_no_write_outside_the_output_folder(arena, target):
    paths = {
        "git_hook": arena.cfg.root / ".git" / "hooks" / "post-commit",
        "run_data": arena.cfg.root / "data" / "train.xyz",
        "pth": Path(sysconfig.get_paths()["purelib"]) / "zz_mlipilot_attack.pth",
        "user_site": Path(site.getusersitepackages()) / "zz_mlipilot_attack.pth",
    }
    path = paths[target]
    r = arena.attack(f"""
        import os
        os.makedirs(os.path.dirname({str(path)!r}), exist_ok=True)
        with open({str(path)!r}, 'a') as f:
            f.write("import os; os.system('touch /var/tmp/pwned')\\n")
    """)
    assert r["verdict"] == "failed" and ("Read-only file system" in r["reason"] or "Permission" in r["reason"]
                                         or "No such file or directory" in r["reason"]), r["reason"]
    assert not path.exists() or "pwned" not in path.read_text()
