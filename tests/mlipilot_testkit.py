"""Test helpers shared by tests/ and tests/attacks/ (a module, not a conftest, so both can import it)."""

from __future__ import annotations

from pathlib import Path


def copy_trainer(src: Path | str, sleep: float = 0) -> str:
    """A train/train.py that 'trains' by copying a known model (after an optional sleep): how tests
    drive the harness fast. Real training is exercised by the tests marked slow."""
    return ("import argparse, shutil, time\np = argparse.ArgumentParser(); p.add_argument('--out-dir'); "
            f"p.add_argument('--model-out')\ntime.sleep({sleep})\nshutil.copy({str(src)!r}, p.parse_args().model_out)\n")


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
