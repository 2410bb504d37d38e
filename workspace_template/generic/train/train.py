"""Train a MACE model with mace-torch on data/train.xyz and data/valid.xyz.

The harness runs:  python train/train.py --out-dir DIR --model-out PATH
and scores whatever model file ends up at PATH. Options come from train/config.yaml; the training
seed comes from the harness (MLIPILOT_SEED), so repeated trials measure noise honestly.
"""

import argparse
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
    cmd = [
        sys.executable, "-m", "mace.cli.run_train",
        "--config", str(HERE / "config.yaml"),
        "--name", "model",
        "--train_file", str(DATA / "train.xyz"),
        "--valid_file", str(DATA / "valid.xyz"),
        "--energy_key", "REF_energy",
        "--forces_key", "REF_forces",
        "--stress_key", "REF_stress",
        "--device", "cpu",
        "--model_dir", str(out),
        "--checkpoints_dir", str(out / "checkpoints"),
        "--results_dir", str(out / "results"),
        "--log_dir", str(out / "logs"),
    ]
    if os.environ.get("MLIPILOT_SEED"):
        cmd += ["--seed", os.environ["MLIPILOT_SEED"]]  # overrides seed: in config.yaml
    subprocess.run(cmd, check=True)
    # mace-torch writes model_stagetwo.model when stage two (swa) ran; prefer it.
    name = "model_stagetwo.model" if config.get("swa") else "model.model"
    shutil.copy(out / name, args.model_out)


if __name__ == "__main__":
    main()
