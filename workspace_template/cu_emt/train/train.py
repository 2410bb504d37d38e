"""Train a MACE model with mace-torch on data/train.xyz (+ data/added/*.xyz) and data/valid.xyz (+ data/added/valid/*.xyz).

The harness runs:  python train/train.py --out-dir DIR --model-out PATH
and scores whatever model file ends up at PATH. Options come from train/config.yaml; the training
seed comes from the harness (MLIPILOT_SEED), so repeated trials measure noise honestly.
`foundation_model: NAME` fine-tunes from one of the run's foundation models: the harness shows them
read-only and names their paths in MLIPILOT_FOUNDATION_MODELS (nothing is downloaded).
The device comes from the harness (MLIPILOT_DEVICE: cpu or cuda, from mlipilot.toml's [executor] device);
on cuda, cuEquivariance's kernels are used where the package is installed.
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--model-out", type=Path, required=True)
    args = p.parse_args()

    config = yaml.safe_load((HERE / "config.yaml").read_text())
    out = args.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config_file = HERE / "config.yaml"
    name = config.get("foundation_model")
    if name in (None, "none", False):
        config.pop("foundation_model", None)
    else:  # a name of the run's foundation models -> its file; offline: no replay data unless pt_train_file
        models = json.loads(os.environ.get("MLIPILOT_FOUNDATION_MODELS") or "{}")
        if name not in models:
            sys.exit(f"train/config.yaml: foundation_model {name!r} is not one of this run's foundation models "
                     f"({', '.join(['none', *models])})")
        config["foundation_model"] = models[name]
        config.setdefault("multiheads_finetuning", bool(config.get("pt_train_file")))
    train_file = DATA / "train.xyz"
    added = sorted((DATA / "added").glob("*.xyz"), key=lambda f: int(f.stem) if f.stem.isdigit() else 1 << 30)
    if added:  # frames the harness's data actions added (data/added/<n>.xyz): train on the union
        train_file = out / "train_union.xyz"
        train_file.write_text("".join(f.read_text().rstrip("\n") + "\n" for f in [DATA / "train.xyz", *added]))
    valid_file = DATA / "valid.xyz"
    added_valid = sorted((DATA / "added" / "valid").glob("*.xyz"), key=lambda f: int(f.stem) if f.stem.isdigit() else 1 << 30)
    if added_valid:  # validation frames the data actions added (data/added/valid/<n>.xyz): they pick the checkpoint
        valid_file = out / "valid_union.xyz"
        valid_file.write_text("".join(f.read_text().rstrip("\n") + "\n" for f in [DATA / "valid.xyz", *added_valid]))
    if config != yaml.safe_load(config_file.read_text()):
        config_file = out / "config.resolved.yaml"
        config_file.write_text(yaml.safe_dump(config))
    device = os.environ.get("MLIPILOT_DEVICE") or "cpu"
    cmd = [
        sys.executable, "-m", "mace.cli.run_train",
        "--config", str(config_file),
        "--name", "model",
        "--train_file", str(train_file),
        "--valid_file", str(valid_file),
        "--energy_key", "REF_energy",
        "--forces_key", "REF_forces",
        "--stress_key", "REF_stress",
        "--device", device,
        "--model_dir", str(out),
        "--checkpoints_dir", str(out / "checkpoints"),
        "--results_dir", str(out / "results"),
        "--log_dir", str(out / "logs"),
    ]
    if device == "cuda" and importlib.util.find_spec("cuequivariance_torch"):
        cmd += ["--enable_cueq", "True"]
    if os.environ.get("MLIPILOT_SEED"):
        cmd += ["--seed", os.environ["MLIPILOT_SEED"]]  # overrides seed: in config.yaml
    subprocess.run(cmd, check=True)
    # mace-torch writes model_stagetwo.model when stage two (swa) ran; prefer it.
    name = "model_stagetwo.model" if config.get("swa") else "model.model"
    shutil.copy(out / name, args.model_out)


if __name__ == "__main__":
    main()
