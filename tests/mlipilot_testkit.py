"""Test helpers shared by tests/ and tests/attacks/ (a module, not a conftest, so both can import it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def copy_trainer(src: Path | str, sleep: float = 0) -> str:
    """A train/train.py that 'trains' by writing a known model (after an optional sleep): how tests
    drive the harness fast. The model's bytes are in the file itself — the sandbox shows the job
    nothing outside its trial. Real training is exercised by the tests marked slow."""
    import base64
    import zlib

    blob = base64.b64encode(zlib.compress(Path(src).read_bytes(), 9)).decode()
    return ("import argparse, base64, os, time, zlib\n"
            "seed = os.environ.get('MLIPILOT_SEED')  # init requires train.py to read it; a copied model has none to set\n"
            "p = argparse.ArgumentParser(); p.add_argument('--out-dir'); "
            f"p.add_argument('--model-out')\ntime.sleep({sleep})\nMODEL = {blob!r}\n"
            "open(p.parse_args().model_out, 'wb').write(zlib.decompress(base64.b64decode(MODEL)))\n")


def surrogate_trainer(good: Path | str, bad: Path | str) -> str:
    """A train/train.py standing in for training: `energy_weight >= 100` in train/config.yaml (the known
    fix) writes the `good` model, anything else the `bad` one; both carried in the file (the sandbox shows
    nothing of the host). It reads MLIPILOT_SEED, as init requires, though a copied model has none to set."""
    import base64
    import zlib

    blobs = {k: base64.b64encode(zlib.compress(Path(p).read_bytes(), 9)).decode() for k, p in (("good", good), ("bad", bad))}
    return ("import argparse, base64, os, zlib, yaml\nseed = os.environ.get('MLIPILOT_SEED')\n"
            "p = argparse.ArgumentParser(); p.add_argument('--out-dir'); p.add_argument('--model-out'); a = p.parse_args()\n"
            "cfg = yaml.safe_load(open('train/config.yaml'))\n"
            f"GOOD, BAD = {blobs['good']!r}, {blobs['bad']!r}\n"
            "blob = GOOD if float(cfg.get('energy_weight', 1)) >= 100 else BAD\n"
            "open(a.model_out, 'wb').write(zlib.decompress(base64.b64decode(blob)))\n")


def commit_trainer(root: Path, text: str, message: str = "test trainer") -> None:
    """Make `text` the run's train/train.py *as shipped*: committed, so the harness's own baseline
    (which refuses uncommitted edits) trains with it."""
    import git

    (Path(root) / "train" / "train.py").write_text(text)
    repo = git.Repo(root)
    repo.git.add("-A", "train")
    repo.git.execute(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message])


def untrained_mace(path: Path, atomic_numbers: list[int], atomic_energies: list[float], r_max: float = 4.5,
                   avg_num_neighbors: float = 12.0) -> Path:
    """A MACE model with random weights (the template's architecture family), saved like a trained one."""
    import mace  # noqa: F401  -- before e3nn
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(0)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.ScaleShiftMACE(
        r_max=r_max, num_bessel=8, num_polynomial_cutoff=5, max_ell=2, interaction_cls=block,
        interaction_cls_first=block, num_interactions=2, num_elements=len(atomic_numbers),
        hidden_irreps=o3.Irreps("32x0e"), MLP_irreps=o3.Irreps("16x0e"), gate=torch.nn.functional.silu,
        atomic_energies=np.array(atomic_energies), avg_num_neighbors=avg_num_neighbors,
        atomic_numbers=atomic_numbers, correlation=2, radial_type="bessel", atomic_inter_scale=1.0,
        atomic_inter_shift=0.0)
    torch.save(model, path)
    return path


def exported(model: Path) -> Path:
    """The scorer's view of a model file: the description the training job's export step writes."""
    from mlipilot.model_export import export

    out = Path(str(model) + ".export")
    if not (out / "model.json").is_file():
        export(Path(model), out)
    return out


def train_with_template(workdir: Path, data: dict[str, Path], **config_updates) -> Path:
    """Train for real with the shipped workspace's train.py; returns the model path."""
    shutil.copytree(ROOT / "workspace_template" / "cu_emt" / "train", workdir / "train")
    (workdir / "data").mkdir()
    for split in ("train", "valid"):
        shutil.copy(data[split], workdir / "data" / f"{split}.xyz")
    cfg_path = workdir / "train" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.update(config_updates)
    cfg_path.write_text(yaml.safe_dump(cfg))
    model = workdir / "model.model"
    subprocess.run([sys.executable, "train/train.py", "--out-dir", str(workdir / "out"), "--model-out", str(model)],
                   cwd=workdir, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return model


FIX = {"energy_weight": 100.0, "forces_weight": 10.0, "max_num_epochs": 10}  # the benchmark's known fix
SHIPPED_MODEL = ROOT / "tests" / "data" / "cu_fix.model"  # made by tests/data/make_models.py


FAST_SCORECARD = {
    "name": "cu_emt_fast", "element": "Cu", "lattice_a": 3.59,
    "constraints": [
        {"metric": "energy_rmse", "max": 30.0, "unit": "meV/atom"},
        {"metric": "force_rmse", "max": 100.0, "unit": "meV/Å"},
        {"metric": "md_failed_runs", "max": 0, "scale": 1, "unit": "count"},
    ],
    "composite": {"terms": [{"metric": "energy_rmse", "weight": 1.0, "scale": 30.0},
                            {"metric": "force_rmse", "weight": 1.0, "scale": 100.0}]},
    "noise_margin": 0.02,
    "stability": {"runs": [{"name": "nvt1000_32", "supercell": 2, "temperature_K": 1000, "steps": 40},
                           {"name": "ramp_32", "supercell": 2, "temperature_K": [300, 3000], "steps": 60}],
                  "min_distance_A": 1.8, "max_temperature_factor": 2.0, "reference": "emt",
                  "reference_force_rmse_meV_A": 400, "sample_every": 20},
    "throughput": {"supercell": 2, "steps": 5, "warmup_steps": 2, "repeats": 3},
}


# A validation spec small enough for the unmarked tests (~15 s per model). Measured on the shipped trained
# Cu model (tests/data/cu_fix.model, the expert's fix): a 0.24 % off EMT, B 31 %, phonons 6.6 % (X) and
# 12.3 % (L), 32-atom 1000 K MD complete; a random-weight MACE has no energy minimum within ±12 % of a and
# its MD collapses (atoms < 1.8 Å apart) within tens of steps. Bounds sit well outside both.
TINY_VALIDATION = {
    "name": "cu_tiny_validation",
    "reference": {"name": "emt"},
    "checks": [
        {"name": "md_short", "kind": "long_md", "min": 1.0,
         "params": {"supercell": 2, "temperatures_K": [1000.0], "steps": 60}},
        {"name": "lattice_constant", "kind": "lattice_constant", "max": 2.0},
        {"name": "bulk_modulus", "kind": "bulk_modulus", "max": 45.0},
        {"name": "phonons", "kind": "phonons", "max": 25.0, "params": {"supercell": 2}},
    ],
}


def with_validation(bench: Path, spec: dict = TINY_VALIDATION) -> Path:
    """Give a benchmark folder a private validation spec (validation.yaml, named in benchmark.yaml)."""
    (bench / "validation.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    meta = yaml.safe_load((bench / "benchmark.yaml").read_text())
    (bench / "benchmark.yaml").write_text(yaml.safe_dump({**meta, "validation": "validation.yaml"}))
    return bench


def assert_figures_render_in_chromium(report: Path, profile: Path) -> tuple[str, list[str]]:
    """Every figure embedded in report.html decodes and renders in headless Debian chromium (the test
    is skipped where it is absent; .ci/run installs it). Returns chromium and its flags, for a screenshot."""
    import pytest

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
    dom = subprocess.run([chromium, *flags, "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    n = report.read_text().count("<figure><img")
    assert f'data-figures-rendered="{n}"' in dom and f'data-figures-total="{n}"' in dom
    return chromium, flags


def user_benchmark(d: Path, data: dict[str, Path], name: str) -> Path:
    """A user-style benchmark folder: own data files, a fast scorecard, the shipped workspace."""
    d.mkdir(exist_ok=True)
    for split in ("train", "valid", "holdout"):
        shutil.copy(data[split], d / f"{split}.xyz")
    (d / "scorecard.yaml").write_text(yaml.safe_dump(FAST_SCORECARD, allow_unicode=True))
    shutil.copytree(ROOT / "workspace_template" / "cu_emt", d / "workspace")
    (d / "benchmark.yaml").write_text(yaml.safe_dump({
        "name": name, "scorecard": "scorecard.yaml", "workspace": "workspace",
        "data": {"train": "train.xyz", "valid": "valid.xyz", "holdout": "holdout.xyz"}}))
    return d


UNPRIVILEGED_UID = 65534  # nobody


def unprivileged_prefix() -> list[str] | None:
    """The command prefix that runs a program as an unprivileged user: none needed when this process is
    not root; `setpriv` to nobody when it is, if nobody can run this interpreter with MLIPilot (CI lets
    it: .ci/run makes $HOME traversable); None where nobody cannot."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}", "--clear-groups", "--"]
    if not shutil.which("setpriv"):
        return None
    p = subprocess.run([*prefix, sys.executable, "-c", "import mlipilot, ase"], capture_output=True, cwd="/",
                       env={**os.environ, "HOME": "/tmp"})
    return prefix if p.returncode == 0 else None


def launchers() -> list:
    """pytest params: the test's own user, and an unprivileged one (skipped, with the reason, where
    this machine cannot start a process as one)."""
    import pytest

    return [pytest.param("self", id="self"),
            pytest.param("unprivileged", id="unprivileged")]


def as_launcher(launcher: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
    """Run argv as the given launcher ("self" or "unprivileged"); skips when unprivileged is impossible."""
    import pytest

    prefix = [] if launcher == "self" else unprivileged_prefix()
    if prefix is None:
        pytest.skip("cannot run as an unprivileged user here: nobody cannot reach this Python "
                    "(as root: chmod o+x $HOME, as .ci/run does)")
    env = {**os.environ, **({"HOME": "/tmp"} if prefix else {}), **kw.pop("env", {})}
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, env=env, **kw)


def give_to_unprivileged(*paths: Path) -> None:
    """chown -R the paths to the unprivileged user (and make their parents traversable) when root."""
    if os.geteuid() != 0:
        return
    for p in paths:
        for q in [p, *Path(p).parents]:
            if q == Path("/"):
                break
            os.chmod(q, os.stat(q).st_mode | 0o011)
        subprocess.run(["chown", "-R", f"{UNPRIVILEGED_UID}:{UNPRIVILEGED_UID}", str(p)], check=True)
